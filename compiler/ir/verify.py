"""The verifier: checks every IR invariant and reports all broken ones at once."""
from __future__ import annotations

from .graph import Graph
from .ir import Ir
from .value import DEFINED_KINDS
from .verify_program import program_problems


class VerificationError(Exception):
    def __init__(self, problems: list[str], context: str = "") -> None:
        self.problems = problems
        head = f"IR verification failed{' ' + context if context else ''} ({len(problems)} problem(s)):"
        super().__init__("\n  - ".join([head, *problems]))


def graph_problems(g: Graph) -> list[str]:
    where = f"graph {g.id!r}" if g.id else "main graph"
    problems: list[str] = []
    defined: set[int] = {v.id for v in g.inputs}
    defined |= {v.id for v in g.values.values() if v.kind in DEFINED_KINDS}
    position = {op: i for i, op in enumerate(g.ops)}
    if len(position) != len(g.ops):
        problems.append(f"{where}: an op appears twice in the op list")
    # the op that writes version k+1 of each storage
    writer_of: dict[tuple[int, int], object] = {}
    for op in g.ops:
        for v in op.results:
            if v.version > 0:
                writer_of[(v.storage, v.version)] = op
    for op in g.ops:
        if len(op.roles) != len(op.inputs):
            problems.append(f"{where}: {op.label} has {len(op.inputs)} inputs but {len(op.roles)} roles")
        for v in op.inputs:
            if v.graph is not g:
                problems.append(f"{where}: {op.label} reads {v.name!r} from another graph {v.graph.id!r}")
            elif v.id not in defined:
                problems.append(f"{where}: {op.label} reads {v.name!r} (%{v.id}) before it is defined")
            w = writer_of.get((v.storage, v.version + 1))
            if w is not None and w is not op and w in position and position[w] < position[op]:
                problems.append(
                    f"{where}: {op.label} reads {v.name!r} version {v.version} after "
                    f"{w.label} overwrote that storage"  # type: ignore[attr-defined]
                )
        for i in op.modifies:
            if i >= len(op.inputs):
                problems.append(f"{where}: {op.label} modifies input {i}, which does not exist")
        for o, i in op.aliases.items():
            if o >= len(op.outputs) or i >= len(op.inputs):
                problems.append(f"{where}: {op.label} alias {o}->{i} is out of range")
            elif op.outputs[o].storage != op.inputs[i].storage:
                problems.append(f"{where}: {op.label} output {o} aliases input {i} but has another storage")
        for v in op.results:
            if v.id in defined:
                problems.append(f"{where}: {op.label} redefines %{v.id} ({v.name!r}); SSA needs one producer")
            defined.add(v.id)
            if v.producer is not op:
                problems.append(f"{where}: %{v.id} ({v.name!r}) names another producer than {op.label}")
        if (op.kind == "Call") != (op.called is not None):
            problems.append(f"{where}: {op.label} " + ("calls no graph" if op.called is None else
                                                       f"names a called graph {op.called.id!r}; only a Call does"))
        if op.called is not None:
            c = op.called
            if c.id not in g.ir.graphs or g.ir.graphs[c.id] is not c:
                problems.append(f"{where}: {op.label} calls {c.id!r}, which is not in the Ir")
            if len(op.inputs) != len(c.inputs):
                problems.append(f"{where}: {op.label} passes {len(op.inputs)} inputs to {c.id!r}, which takes {len(c.inputs)}")
            else:
                for k, (a, b) in enumerate(zip(op.inputs, c.inputs)):
                    if a.spec != b.spec:
                        problems.append(f"{where}: {op.label} input {k} is {a.spec}, {c.id!r} expects {b.spec}")
            if len(op.outputs) != len(c.outputs):
                problems.append(f"{where}: {op.label} has {len(op.outputs)} outputs, {c.id!r} returns {len(c.outputs)}")
            if set(op.modifies) != c.by_ref:
                problems.append(f"{where}: {op.label} modifies inputs {sorted(op.modifies)} "
                                f"but {c.id!r} has by-ref inputs {sorted(c.by_ref)}")
    for v in g.outputs:
        if v.id not in defined:
            problems.append(f"{where}: output {v.name!r} (%{v.id}) is not defined in the graph")
    for a, b in g.constraints:
        if a not in position or b not in position:
            problems.append(f"{where}: constraint {getattr(a, 'label', a)} -> {getattr(b, 'label', b)} "
                            "names an op not in the graph")
        elif a is b:
            problems.append(f"{where}: constraint {a.label} before itself; an op cannot come before itself")
        elif position[a] > position[b]:
            problems.append(f"{where}: constraint {a.label} before {b.label} is not respected by the op order")
    return problems


def verify(ir: Ir, context: str = "") -> None:
    problems: list[str] = []
    for gid, g in ir.graphs.items():
        if g.id != gid:
            problems.append(f"graph registered as {gid!r} calls itself {g.id!r}")
        problems += graph_problems(g)
    for vid in ir.buffer_ids():
        if vid not in ir.main.values:
            problems.append(f"variable %{vid} is not a value of the main graph")
    problems += program_problems(ir)
    if problems:
        raise VerificationError(problems, context)
