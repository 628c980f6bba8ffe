"""Common-subexpression elimination.

before -> after: two pure ops of the same kind, roles, attributes and inputs (the same SSA values) ->
the first one; readers of the second read the first's results.
Only when no result of either op is later written in place: an in-place writer of one copy must not
see readers of the other.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op
from compiler.ir.hashing import canon
from compiler.ops import get

from .alias_analysis import AliasInfo
from .registry import in_every_graph, register
from .rewrite import drop_ops, retarget

NEVER = ("Init", "HostLoad", "HostStore", "Call", "MultiKernel")


def _key(op: Op) -> tuple:
    attrs = canon({k: v for k, v in op.attrs.items() if k not in ("kernel_listing", "members")})
    return op.kind, op.roles, tuple(v.id for v in op.inputs), attrs


def cse_graph(g: Graph) -> bool:
    info = AliasInfo(g)
    seen: dict[tuple, Op] = {}
    dead: list[Op] = []
    for op in g.ops:
        if op.kind in NEVER or op.modifies or op.called is not None or not get(op.kind).pure:
            continue
        if any(info.is_written(v.storage) for v in op.results):
            continue
        first = seen.setdefault(_key(op), op)
        if first is op:
            continue
        for old, new in zip(op.results, first.results):
            retarget(g, old, new)
        dead.append(op)
    drop_ops(g, dead)
    return bool(dead)


@register("cse")
def run(ir: Ir) -> bool:
    """Merge pure ops computing the same thing from the same values."""
    return in_every_graph(ir, cse_graph)
