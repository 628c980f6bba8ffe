"""Dead-code elimination.

before -> after: a pure op none of whose results is read (by an op or a graph output) -> removed.
Ops that modify storage, call graphs or talk to the host are never removed.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir
from compiler.ops import get

from .registry import register


def dce_graph(g: Graph) -> bool:
    changed = False
    while True:
        used = {v.id for op in g.ops for v in op.inputs} | {v.id for v in g.outputs}
        dead = [op for op in g.ops if get(op.kind).pure and not op.modifies and not op.called
                and not any(v.id in used for v in op.results)]
        if not dead:
            return changed
        for op in dead:
            g.erase(op)
        changed = True


def remove_unused_graphs(ir: Ir) -> bool:
    live = {g.id for g in ir.reachable_graphs()}
    dead = [gid for gid in ir.graphs if gid not in live]
    for gid in dead:
        del ir.graphs[gid]
    return bool(dead)


@register("dce")
def run(ir: Ir) -> bool:
    changed = False
    for g in ir.graphs.values():
        changed |= dce_graph(g)
    return remove_unused_graphs(ir) or changed
