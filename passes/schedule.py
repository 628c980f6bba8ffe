"""Scheduling: a deterministic topological order of each graph's ops.

before -> after: any op list -> the list sorted so that
  - producers precede consumers (data),
  - `graph.constraints` hold (in_sequence, and constraints other passes add),
  - every reader of version k of a storage precedes the op writing version k+1 (read before overwrite;
    this covers in-place ops and by-reference call inputs alike).
Ties keep the current order, so an already valid schedule is left unchanged and the result does not
depend on anything but the graph. Constraints that contradict the data flow or each other raise
ScheduleError naming every op on the cycle and why each edge exists.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op

from .alias_analysis import AliasInfo
from .depgraph import CycleError, DepGraph
from .registry import in_every_graph, register


class ScheduleError(ValueError):
    pass


def dependency_graph(g: Graph) -> DepGraph[Op]:
    """Ops as nodes; an edge a -> b (attribute `why`) when a must run before b."""
    dg: DepGraph[Op] = DepGraph()
    dg.add_nodes_from(g.ops)
    present = set(g.ops)
    for op in g.ops:
        for v in op.inputs:
            p = v.producer
            if p is not None and p is not op and p in present:
                dg.add_edge(p, op, why=f"{p.label} produces {v.name!r}")
    for reader, writer in AliasInfo(g).hazards():
        if not dg.has_edge(reader, writer):
            dg.add_edge(reader, writer, why=f"{reader.label} reads a tensor before {writer.label} overwrites it")
    for a, b in g.constraints:
        if a in present and b in present and not dg.has_edge(a, b):
            dg.add_edge(a, b, why=f"in_sequence: {a.label} before {b.label}")
    return dg


def cycle_message(g: Graph, dg: DepGraph[Op]) -> str:
    cycle = dg.find_cycle()
    ops = " -> ".join([a.label for a, _ in cycle] + [cycle[0][0].label])
    why = "; ".join(dg.why(a, b) for a, b in cycle)
    return (f"graph {g.id or 'main'!r}: the ordering constraints form a cycle {ops} ({why}); "
            "remove one of the in_sequence constraints or the in-place update that needs it")


def topological_order(g: Graph, dg: DepGraph[Op] | None = None) -> list[Op]:
    dg = dg if dg is not None else dependency_graph(g)
    pos = {op: i for i, op in enumerate(g.ops)}
    try:
        return dg.topological_sort(key=pos.__getitem__)
    except CycleError:
        raise ScheduleError(cycle_message(g, dg)) from None


def schedule_graph(g: Graph) -> bool:
    order = topological_order(g)
    changed = order != g.ops
    g.ops = order
    return changed


@register("schedule")
def run(ir: Ir) -> bool:
    """Order every graph's ops by data, in_sequence constraints and read-before-overwrite hazards."""
    return in_every_graph(ir, schedule_graph)
