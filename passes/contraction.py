"""Grouping ops into single ops (fusion) without creating cycles.

Merging a set of ops into one node is legal iff no dependency path leaves the set and re-enters it:
the op outside on such a path would have to run both after and before the merged op. Groups are
checked and merged in the *quotient* graph (groups already merged count as single nodes), which stays
acyclic after every legal merge, so any number of merges can be applied together.
"""
from __future__ import annotations

from typing import Iterable

from compiler.ir import Op

from .depgraph import DepGraph


class Contraction:
    def __init__(self, deps: DepGraph[Op], position: dict[Op, int] | None = None) -> None:
        """position: a topological numbering of deps (the schedule); with it, `blocker` searches only
        groups that start before the last member of the groups it checks."""
        self.deps = deps
        self.parent: dict[Op, Op] = {op: op for op in deps.nodes}
        self.members: dict[Op, list[Op]] = {op: [op] for op in deps.nodes}
        self._succ: dict[Op, set[Op]] = {}  # rep -> successor ops of its members (see successors)
        self.first: dict[Op, int] | None = None if position is None else {op: position[op] for op in deps.nodes}
        self.last: dict[Op, int] | None = None if position is None else dict(self.first)  # type: ignore[arg-type]

    def find(self, op: Op) -> Op:
        while self.parent[op] is not op:
            self.parent[op] = self.parent[self.parent[op]]
            op = self.parent[op]
        return op

    def successors(self, rep: Op) -> set[Op]:
        """Groups that rep's group feeds. The raw successor ops of a group are kept per group (merged
        smaller into larger) and ops that have joined the group itself are dropped as they are met,
        so a group that grows to n ops is not rescanned member by member on every query."""
        raw = self._succ.get(rep)
        if raw is None:
            raw = self._succ[rep] = {s for m in self.members[rep] for s in self.deps.succ[m]}
        out: set[Op] = set()
        inner = []
        for s in raw:
            f = self.find(s)
            if f is rep:
                inner.append(s)
            else:
                out.add(f)
        raw.difference_update(inner)
        return out

    def predecessors(self, rep: Op) -> set[Op]:
        return {self.find(p) for m in self.members[rep] for p in self.deps.pred[m]} - {rep}

    def blocker(self, reps: Iterable[Op]) -> Op | None:
        """An op outside the groups `reps` on a path from one of them to another, or None if merging is legal."""
        inside = {self.find(r) for r in reps}
        # every dependency edge goes forward in a topological numbering, so a group whose first member
        # comes after the last member inside cannot lead back inside: the search stops there
        limit = None if self.last is None else max(self.last[r] for r in inside)
        stack: list[tuple[Op, Op]] = []
        for r in inside:
            stack += [(s, s) for s in self.successors(r) if s not in inside]
        seen: set[Op] = set()
        while stack:
            node, first = stack.pop()
            if node in seen or (limit is not None and self.first[node] > limit):  # type: ignore[index]
                continue
            seen.add(node)
            for s in self.successors(node):
                if s in inside:
                    return self.members[first][0]
                if s not in seen:
                    stack.append((s, first))
        return None

    def merge(self, reps: Iterable[Op]) -> Op:
        """Merge groups (call `blocker` first); returns the representative of the union."""
        rs = sorted({self.find(r) for r in reps}, key=lambda r: len(self.members[r]), reverse=True)
        root = rs[0]
        for r in rs[1:]:
            self.parent[r] = root
            self.members[root] += self.members.pop(r)
            a, b = self._succ.pop(root, None), self._succ.pop(r, None)
            if a is not None and b is not None:
                big, small = (a, b) if len(a) >= len(b) else (b, a)
                big.update(small)
                self._succ[root] = big
            if self.first is not None and self.last is not None:
                self.first[root] = min(self.first[root], self.first.pop(r))
                self.last[root] = max(self.last[root], self.last.pop(r))
        return root

    def groups(self) -> list[list[Op]]:
        return [m for r, m in self.members.items() if self.parent[r] is r]

    def order(self, position: dict[Op, int]) -> list[Op]:
        """Representatives in a topological order of the quotient graph; ties by earliest member position."""
        q: DepGraph[Op] = DepGraph()
        reps = [r for r in self.members if self.parent[r] is r]
        q.add_nodes_from(reps)
        for r in reps:
            for s in self.successors(r):
                q.add_edge(r, s)
        first = {r: min(position[m] for m in self.members[r]) for r in reps}
        return q.topological_sort(key=first.__getitem__)
