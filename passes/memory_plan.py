"""Memory planning: one workspace per graph with liveness-based reuse.

before -> after: every temporary storage owning its own buffer -> byte offsets into one workspace, where
storages whose lifetimes do not overlap share bytes. A storage lives from the op that creates it (version
0) to the last op touching any of its versions, inclusive (to the end when a graph output reads it), so an
op never writes a buffer it is still reading unless it does so in place. Storages are placed in the
order they are created, each in the smallest free range that holds it (best fit), and return their
bytes after their last access: one sweep, n log n.

Sets graph.memory_plan = MemoryPlan(offsets {storage: byte offset}, peak_bytes: workspace size,
naive_bytes: the sum of all temporaries) (compiler/ir/memory.py). Storage ids are the ids of the values that own a buffer
(version 0); every later in-place version lives at the same offset. Inputs, variables and constants are
not planned (they live outside the workspace). The LLVM backend allocates from this plan.
"""
from __future__ import annotations

import bisect
import heapq

from compiler.ir import Graph, Ir, MemoryPlan

from .alias_analysis import AliasInfo
from .registry import register

ALIGN = 64


def _align(n: int) -> int:
    return (max(n, 1) + ALIGN - 1) // ALIGN * ALIGN


class _Holes:
    """Free byte ranges below the workspace top, coalesced; best fit = the smallest hole that fits
    (lowest offset among equals), found by bisection."""

    def __init__(self) -> None:
        self.by_size: list[tuple[int, int]] = []  # (size, offset), sorted
        self.at: dict[int, int] = {}  # offset -> size
        self.ending: dict[int, int] = {}  # offset + size -> offset
        self.top = 0  # bytes in use or in holes: the plan's peak so far

    def _add(self, off: int, size: int) -> None:
        bisect.insort(self.by_size, (size, off))
        self.at[off], self.ending[off + size] = size, off

    def _remove(self, off: int) -> int:
        size = self.at.pop(off)
        del self.ending[off + size]
        del self.by_size[bisect.bisect_left(self.by_size, (size, off))]
        return size

    def take(self, size: int) -> int:
        k = bisect.bisect_left(self.by_size, (size, -1))
        if k < len(self.by_size):
            hole, off = self.by_size[k]
            self._remove(off)
            if hole > size:
                self._add(off + size, hole - size)
            return off
        if self.top in self.ending:  # the highest hole touches the top: grow into it
            off = self.ending[self.top]
            self._remove(off)
        else:
            off = self.top
        self.top = off + size
        return off

    def give(self, off: int, size: int) -> None:
        if off in self.ending:  # merge with the hole below
            below = self.ending[off]
            size += self._remove(below)
            off = below
        if off + size in self.at:  # and with the hole above
            size += self._remove(off + size)
        self._add(off, size)


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
    # one sweep over the schedule: before op k, every buffer whose last access came before k returns
    # its bytes; then op k's new buffers take the best-fitting free range (largest first). n log n in
    # the number of buffers (a heap of ends, bisection over holes), where placing each buffer against
    # every buffer alive with it was quadratic in a deep forward pass, whose activations all live on
    born = sorted(start, key=lambda s: (start[s], -size[s], s))
    holes = _Holes()
    live: list[tuple[int, int]] = []  # (last op, storage)
    offsets: dict[int, int] = {}
    for s in born:
        while live and live[0][0] < start[s]:
            _, done = heapq.heappop(live)
            holes.give(offsets[done], size[done])
        offsets[s] = holes.take(size[s])
        heapq.heappush(live, (end[s], s))
    return MemoryPlan(dict(sorted(offsets.items())), holes.top, sum(size.values()))


@register("memory_plan")
def run(ir: Ir) -> bool:
    """Assign every temporary a workspace offset, sharing bytes between storages not live together."""
    for g in ir.graphs.values():
        g.memory_plan = plan_graph(g)
    return False
