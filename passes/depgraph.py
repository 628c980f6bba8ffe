"""A small directed graph of ops for scheduling and fusion: edges carry why they exist.

Why not networkx: importing it costs ~80 ms of CPU (measured), more than half of what compiling the
tutorial's Adam in a fresh process may take, and the passes need only these few operations. Every
walk here is iterative (no recursion limit) and costs O((V + E) log V) at most.
"""
from __future__ import annotations

import heapq
from typing import Callable, Generic, Hashable, Iterable, Iterator, TypeVar

N = TypeVar("N", bound=Hashable)


class CycleError(ValueError):
    """The graph has a cycle: no topological order exists."""


class DepGraph(Generic[N]):
    """Nodes in insertion order; succ[a][b] = pred[b][a] = why a must come before b."""

    def __init__(self) -> None:
        self.succ: dict[N, dict[N, str]] = {}
        self.pred: dict[N, dict[N, str]] = {}

    @property
    def nodes(self) -> Iterable[N]:
        return self.succ.keys()

    @property
    def edges(self) -> Iterator[tuple[N, N]]:
        return ((a, b) for a, out in self.succ.items() for b in out)

    def add_nodes_from(self, nodes: Iterable[N]) -> None:
        for n in nodes:
            self.succ.setdefault(n, {})
            self.pred.setdefault(n, {})

    def add_edge(self, a: N, b: N, why: str = "") -> None:
        self.add_nodes_from((a, b))
        self.succ[a][b] = why
        self.pred[b][a] = why

    def has_edge(self, a: N, b: N) -> bool:
        return b in self.succ.get(a, ())

    def why(self, a: N, b: N) -> str:
        return self.succ[a][b]

    def topological_sort(self, key: Callable[[N], int]) -> list[N]:
        """Kahn's algorithm taking the ready node of smallest key first; CycleError on a cycle."""
        indeg = {n: len(p) for n, p in self.pred.items()}
        ready = [(key(n), k, n) for k, n in enumerate(self.succ) if indeg[n] == 0]
        heapq.heapify(ready)
        index = {n: k for k, n in enumerate(self.succ)}  # tie-break keys never compare nodes
        out: list[N] = []
        while ready:
            _, _, n = heapq.heappop(ready)
            out.append(n)
            for s in self.succ[n]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(ready, (key(s), index[s], s))
        if len(out) != len(self.succ):
            raise CycleError("the graph has a cycle")
        return out

    def find_cycle(self) -> list[tuple[N, N]]:
        """The edges of one cycle (a depth-first search with an explicit stack), [] when acyclic."""
        state: dict[N, int] = {}  # 1 = on the current path, 2 = finished
        for root in self.succ:
            if root in state:
                continue
            path: list[N] = [root]
            its = [iter(self.succ[root])]
            state[root] = 1
            while its:
                nxt = next(its[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    its.pop()
                elif state.get(nxt) == 1:
                    cyc = path[path.index(nxt):] + [nxt]
                    return list(zip(cyc, cyc[1:]))
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    its.append(iter(self.succ[nxt]))
        return []
