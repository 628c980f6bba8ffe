"""Dead-code elimination.

before -> after:
  - an op none of whose results is read (by an op or a graph output), that modifies nothing -> removed;
  - the same for an in-place op whose modified storages are local temporaries (made by an op of this
    graph, not returned): nobody can observe the write -> removed;
  - a subgraph output that no call site reads -> dropped from the subgraph and from every Call;
  - a graph the main graph no longer reaches (after dedup, inlining, fusion) -> removed.
Ops that call graphs or talk to the host are never removed.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op
from compiler.ops import get

from .alias_analysis import AliasInfo
from .registry import register

KEEP = ("Call", "HostLoad", "HostStore", "MultiKernel")


def _removable(op: Op, info: AliasInfo) -> bool:
    if op.kind in KEEP or op.called is not None:
        return False
    if not op.modifies:
        return get(op.kind).pure or get(op.kind).decompose is not None
    return all(info.is_local_temporary(op.inputs[i].storage) for i in op.modifies)


def dce_graph(g: Graph) -> bool:
    changed = False
    while True:
        info = AliasInfo(g)
        used = {v.id for op in g.ops for v in op.inputs} | {v.id for v in g.outputs}
        dead = [op for op in g.ops if _removable(op, info) and not any(v.id in used for v in op.results)]
        if not dead:
            return changed
        for op in dead:
            g.erase(op)
        changed = True


def remove_dead_call_outputs(ir: Ir) -> bool:
    """before -> after: a subgraph output that no call site reads -> dropped from the subgraph and every Call
    (the ops computing it then die in the subgraph's DCE)."""
    calls: dict[str, list[Op]] = {}
    for g in ir.graphs.values():
        for op in g.ops:
            if op.called is not None:
                calls.setdefault(op.called.id, []).append(op)
    used = {v.id for g in ir.graphs.values() for op in g.ops for v in op.inputs}
    used |= {v.id for g in ir.graphs.values() for v in g.outputs}
    changed = False
    for gid, sites in calls.items():
        g = ir.graphs[gid]
        dead = [j for j in range(len(g.outputs)) if all(op.outputs[j].id not in used for op in sites)]
        if not dead:
            continue
        keep = [j for j in range(len(g.outputs)) if j not in dead]
        g.outputs = [g.outputs[j] for j in keep]
        for op in sites:
            for j in dead:
                op.graph.values.pop(op.outputs[j].id, None)
            op.outputs = [op.outputs[j] for j in keep]
            op.attrs["out_specs"] = tuple(op.attrs["out_specs"][j] for j in keep)
        changed = True
    return changed


def remove_unused_graphs(ir: Ir) -> bool:
    live = {g.id for g in ir.reachable_graphs()}
    dead = [gid for gid in ir.graphs if gid not in live]
    for gid in dead:
        for vid in ir.graphs[gid].values:
            ir.constants.pop(vid, None)  # a removed graph's constants go with it
        del ir.graphs[gid]
    return bool(dead)


@register("dce")
def run(ir: Ir) -> bool:
    """Remove unread pure ops, unobservable in-place writes, unread call outputs and unreachable graphs."""
    changed = False
    while True:
        step = remove_dead_call_outputs(ir)
        for g in ir.graphs.values():
            step |= dce_graph(g)
        step |= remove_unused_graphs(ir)
        if not step:
            return changed
        changed = True
