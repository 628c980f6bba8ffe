"""Memory planning: one workspace per graph with liveness-based reuse.

before -> after: every temporary storage owning its own buffer -> byte offsets into one workspace, where
storages whose lifetimes do not overlap share bytes. A storage lives from the op that creates it (version
0) to the last op touching any of its versions, inclusive (to the end when a graph output reads it), so an
op never writes a buffer it is still reading unless it does so in place. Storages are placed largest
first, each at the lowest offset that clears every placed storage it overlaps in time.

Sets graph.memory_plan = MemoryPlan(offsets {storage: byte offset}, peak_bytes: workspace size,
naive_bytes: the sum of all temporaries) (compiler/ir/memory.py). Storage ids are the ids of the values that own a buffer
(version 0); every later in-place version lives at the same offset. Inputs, variables and constants are
not planned (they live outside the workspace). The LLVM backend allocates from this plan.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, MemoryPlan

from .alias_analysis import AliasInfo
from .registry import register

ALIGN = 64


def _align(n: int) -> int:
    return (max(n, 1) + ALIGN - 1) // ALIGN * ALIGN


def plan_graph(g: Graph) -> MemoryPlan:
    info = AliasInfo(g)
    start: dict[int, int] = {}
    size: dict[int, int] = {}
    for k, op in enumerate(g.ops):
        for v in op.results:
            if v.version == 0 and not info.is_protected(v.storage):
                start[v.storage] = k
                size[v.storage] = _align(v.spec.nbytes)
    end = {s: max(info.last_access(s), start[s]) for s in start}
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first op, last op)
    offsets: dict[int, int] = {}
    for s in sorted(start, key=lambda s: (-size[s], start[s], s)):
        lo, hi = start[s], end[s]
        busy = sorted((o, o + n) for o, n, a, b in placed if not (b < lo or hi < a))
        at = 0
        for o0, o1 in busy:
            if at + size[s] <= o0:
                break
            at = max(at, o1)
        offsets[s] = at
        placed.append((at, size[s], lo, hi))
    peak = max((o + n for o, n, _, _ in placed), default=0)
    return MemoryPlan(dict(sorted(offsets.items())), peak, sum(size.values()))


@register("memory_plan")
def run(ir: Ir) -> bool:
    """Assign every temporary a workspace offset, sharing bytes between storages not live together."""
    for g in ir.graphs.values():
        g.memory_plan = plan_graph(g)
    return False
