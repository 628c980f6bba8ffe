"""Graph edits shared by the rewriting passes, each keeping SSA versions and constraints consistent."""
from __future__ import annotations

from compiler.ir import Graph, Op, Value

from .schedule import topological_order


def retarget(g: Graph, old: Value, new: Value) -> None:
    """Readers of `old` read `new`; later versions of old's storage become later versions of new's.

    before: old = s@k, later in-place writers make s@k+1, s@k+2 ...
    after:  they make t@j+1, t@j+2 ... where new = t@j (t may equal s: the versions shift).
    Keeps every storage's versions contiguous, which the hazard checks rely on.
    """
    if old is new:
        return
    shift = new.version - old.version
    later = [v for v in _all_values(g) if v.storage == old.storage and v.version > old.version and v is not old]
    for v in later:
        v.storage = new.storage
        v.version += shift
    g.replace_all_uses(old, new)
    for op in g.ops:
        if op.handles is not None:
            op.handles = tuple(new if h is old else h for h in op.handles)


def _all_values(g: Graph) -> list[Value]:
    seen: dict[int, Value] = {v.id: v for v in g.inputs}
    for op in g.ops:
        for v in op.results:
            seen[v.id] = v
    return list(seen.values())


def substitute_ops(g: Graph, old: list[Op], new: list[Op]) -> None:
    """Constraints and unordered groups naming any op of `old` name every op of `new` instead.

    before: (a, m) for m in old  ->  after: (a, n) for every n in new (likewise (m, b)); pairs inside `old`
    become pairs inside `new` only when `new` is one op, where they vanish.
    """
    olds = set(old)
    pairs: list[tuple[Op, Op]] = []
    for a, b in g.constraints:
        if a in olds and b in olds:
            continue
        for x in (new if a in olds else [a]):
            for y in (new if b in olds else [b]):
                if x is not y and (x, y) not in pairs:
                    pairs.append((x, y))
    g.constraints = pairs
    groups = []
    for grp in g.unordered_groups:
        out: list[Op] = []
        for o in grp:
            for x in (new if o in olds else [o]):
                if x not in out:
                    out.append(x)
        groups.append(out)
    g.unordered_groups = groups


def drop_ops(g: Graph, ops: list[Op]) -> None:
    """Remove ops (already replaced) from the op list and their results from the value table."""
    dead = set(ops)
    g.ops = [op for op in g.ops if op not in dead]
    g.constraints = [(a, b) for a, b in g.constraints if a not in dead and b not in dead]
    g.unordered_groups = [[o for o in grp if o not in dead] for grp in g.unordered_groups]
    live = {v.id for v in g.inputs} | {v.id for op in g.ops for v in op.results}
    for op in ops:
        for v in op.results:
            if v.id not in live:
                g.values.pop(v.id, None)


def replace_group(g: Graph, members: list[Op], op: Op, pairs: list[tuple[Value, Value]]) -> None:
    """Replace `members` by the one op `op` (made with append=False), placed where the first member was.

    pairs: (old value, new value) retargets: a member's result or later version -> op's result or input.
    The caller re-sorts the graph (topological_order) once after all its replacements.
    """
    for old, new in pairs:
        retarget(g, old, new)
    g.ops.insert(g.ops.index(members[0]), op)
    substitute_ops(g, members, [op])
    drop_ops(g, members)


class Retargeter:
    """Many retargets over one graph at linear cost: `retarget` one by one rescans the whole graph, this
    indexes values by storage once, moves versions through the index and substitutes readers in one
    sweep (`finish`). Substitution keeps the order of the calls: a reader moved to `b` by the k-th call
    follows `b` only to a later call's target."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.by_storage: dict[int, list[Value]] = {}
        self.add_values(_all_values(g))
        self.subst: dict[Value, tuple[Value, int]] = {}

    def add_values(self, values: list[Value]) -> None:
        for v in values:
            self.by_storage.setdefault(v.storage, []).append(v)

    def retarget(self, old: Value, new: Value) -> None:
        """As `retarget(g, old, new)`, readers substituted at `finish`."""
        if old is new:
            return
        shift = new.version - old.version
        src = self.by_storage.get(old.storage, [])
        later = [v for v in src if v.storage == old.storage and v.version > old.version and v is not old]
        if later and new.storage != old.storage:
            moved = set(map(id, later))
            self.by_storage[old.storage] = [v for v in src if id(v) not in moved]
            self.add_values(later)
        for v in later:
            v.storage = new.storage
            v.version += shift
        self.subst[old] = (new, len(self.subst))

    def resolve(self, v: Value) -> Value:
        step = -1
        while v in self.subst and self.subst[v][1] > step:
            v, step = self.subst[v]
        return v

    def finish(self) -> None:
        if not self.subst:
            return
        r = self.resolve
        for op in self.g.ops:
            op.inputs = [r(x) for x in op.inputs]
            if op.handles is not None:
                op.handles = tuple(r(h) for h in op.handles)
        self.g.outputs = [r(x) for x in self.g.outputs]


def replace_groups(g: Graph, edits: list[tuple[list[Op], Op, list[tuple[Value, Value]]]]) -> None:
    """`replace_group` for many disjoint groups at once, in one sweep over the graph (the same result as
    replacing them one by one in list order, at linear instead of quadratic cost)."""
    if not edits:
        return
    rt = Retargeter(g)
    for _members, op, _pairs in edits:  # every kernel's values first: an earlier group's retarget may
        rt.add_values(op.results)       # shift the versions a later kernel writes
    for _members, _op, pairs in edits:
        for old, new in pairs:
            rt.retarget(old, new)
    first = {members[0]: op for members, op, _ in edits}
    group_of = {m: op for members, op, _ in edits for m in members}
    g.ops = [first.get(o, o) for o in g.ops if o not in group_of or o in first]
    pairs_out: list[tuple[Op, Op]] = []
    seen: set[tuple[Op, Op]] = set()
    for a, b in g.constraints:
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is not None and ga is gb:
            continue
        pair = (ga or a, gb or b)
        if pair[0] is not pair[1] and pair not in seen:
            seen.add(pair)
            pairs_out.append(pair)
    g.constraints = pairs_out
    groups = []
    for grp in g.unordered_groups:
        out: list[Op] = []
        for o in grp:
            x = group_of.get(o, o)
            if x not in out:
                out.append(x)
        groups.append(out)
    g.unordered_groups = groups
    live = {v.id for v in g.inputs} | {v.id for op in g.ops for v in op.results}
    for o in group_of:
        for v in o.results:
            if v.id not in live:
                g.values.pop(v.id, None)
    rt.finish()


def replace_groups_in_order(g: Graph, edits: list[tuple[list[Op], Op, list[tuple[Value, Value]]]]) -> bool:
    """`replace_groups`, then the graph's ops put back in a dependency order (a fused op stands where its
    first member stood, which may precede a producer of a later member); True when anything changed."""
    replace_groups(g, edits)
    if edits:
        g.ops = topological_order(g)
    return bool(edits)
