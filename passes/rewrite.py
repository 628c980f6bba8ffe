"""Graph edits shared by the rewriting passes, each keeping SSA versions and constraints consistent."""
from __future__ import annotations

from compiler.ir import Graph, Op, Value


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
