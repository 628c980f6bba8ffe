"""PopXL's in-place ambiguity check, for ops the user explicitly left unordered (in_sequence(False))."""
from __future__ import annotations

from .ir import Ir


class InplaceAmbiguityError(ValueError):
    pass


def check_ambiguity(ir: Ir) -> None:
    problems = []
    for g in ir.graphs.values():
        for group in g.unordered_groups:
            for i, a in enumerate(group):
                writes_a = {a.inputs[k].storage: a.inputs[k] for k in a.modifies}
                for b in group[i + 1:]:
                    writes_b = {b.inputs[k].storage: b.inputs[k] for k in b.modifies}
                    touched_b = {v.storage: v for v in b.inputs} | writes_b
                    touched_a = {v.storage: v for v in a.inputs} | writes_a
                    for s, v in writes_a.items():
                        if s in touched_b:
                            problems.append((a, b, v))
                    for s, v in writes_b.items():
                        if s in touched_a and s not in writes_a:
                            problems.append((b, a, v))
    if problems:
        lines = [
            f"Inplacing ambiguity detected. The tensor {v.name!r} (graph {a.graph.id or 'main'!r}) is modified by "
            f"{a.label} and also accessed by {b.label}, and there is no order constraint between them: both were "
            "created inside in_sequence(False). Build them under in_sequence(True) (or outside the False block) so "
            "their order is defined."
            for a, b, v in problems
        ]
        raise InplaceAmbiguityError("\n".join(lines))
