"""Common-subexpression elimination.

before -> after: two pure ops of the same kind, attributes and inputs (same SSA values) ->
the first one; readers of the second read the first's results.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir
from compiler.ir.hashing import canon
from compiler.ops import get

from .registry import register


def cse_graph(g: Graph) -> bool:
    seen: dict[tuple, object] = {}
    changed = False
    for op in list(g.ops):
        if not get(op.kind).pure or op.modifies or op.called is not None or op.kind in ("Init", "HostLoad"):
            continue
        key = (op.kind, op.roles, tuple(v.id for v in op.inputs),
               canon({k: v for k, v in op.attrs.items() if k != "kernel_listing"}))
        first = seen.get(key)
        if first is None:
            seen[key] = op
            continue
        for old, new in zip(op.results, first.results):  # type: ignore[attr-defined]
            g.replace_all_uses(old, new)
        g.erase(op)
        changed = True
    return changed


@register("cse")
def run(ir: Ir) -> bool:
    changed = False
    for g in ir.graphs.values():
        changed |= cse_graph(g)
    return changed
