"""Scheduling: a deterministic topological order of each graph's ops.

before -> after: any valid op list -> the list sorted so that producers precede consumers,
`graph.constraints` (in_sequence) hold, and every reader of version k of a storage precedes
the op that writes version k+1 (read-before-overwrite). Ties keep program order.
"""
from __future__ import annotations

import networkx as nx

from compiler.ir import Graph, Ir, Op

from .registry import register


class ScheduleError(ValueError):
    pass


def dependency_graph(g: Graph) -> nx.DiGraph:
    dg = nx.DiGraph()
    pos = {op: i for i, op in enumerate(g.ops)}
    dg.add_nodes_from(pos)
    writer: dict[tuple[int, int], Op] = {}
    for op in g.ops:
        for v in op.results:
            if v.version > 0:
                writer[(v.storage, v.version)] = op
    for op in g.ops:
        for v in op.inputs:
            if v.producer is not None and v.producer in pos and v.producer is not op:
                dg.add_edge(v.producer, op, why="data")
            w = writer.get((v.storage, v.version + 1))
            if w is not None and w is not op:
                dg.add_edge(op, w, why="read before overwrite")
    for a, b in g.constraints:
        if a in pos and b in pos:
            dg.add_edge(a, b, why="in_sequence")
    return dg


def schedule_graph(g: Graph) -> bool:
    dg = dependency_graph(g)
    pos = {op: i for i, op in enumerate(g.ops)}
    try:
        order = list(nx.lexicographical_topological_sort(dg, key=lambda op: pos[op]))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(dg)
        desc = " -> ".join(f"{a.label} ({dg.edges[a, b]['why']})" for a, b in cycle)
        raise ScheduleError(f"graph {g.id or 'main'!r}: ordering constraints form a cycle: {desc}; remove one "
                            "of the in_sequence constraints") from None
    changed = order != g.ops
    g.ops = order
    return changed


@register("schedule")
def run(ir: Ir) -> bool:
    changed = False
    for g in ir.graphs.values():
        changed |= schedule_graph(g)
    return changed
