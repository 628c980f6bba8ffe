"""Vertical elementwise fusion: DAGs of elementwise ops over one iteration shape become one loop.

before -> after: connected elementwise ops (data producer/consumer, in_sequence neighbours, or readers of a
common tensor), including the composite var-update ops and ops on single-element tensors (hyper-parameters,
Adam's step) -> one FusedKernel (compiler/ops/fused.py) whose expression chains the members' primitive
decompositions. It reads every external tensor once and writes each storage once, its newest version;
intermediates get no buffer unless an op outside the kernel reads them.

Fusion is refused, and the reason appended to graph.info["fusion_refusals"], when
  - the iteration shapes differ (a (3, 4) loop cannot also run a (4,) one);
  - a storage the loop writes is also read with another index pattern (broadcast) in the loop;
  - a result does not cover the loop (an in-place write into a broadcast operand);
  - an op outside the group (non-elementwise, e.g. a MatMul or a Call) depends on one member and feeds
    another: the kernel would have to run both before and after it.
Two loops are never joined through a single-element tensor alone (a shared hyper-parameter or step
count): that saves no memory traffic and made an optimizer's per-parameter updates one kernel growing
with the model. Single-element ops join the loop that reads them, or, left over, a neighbouring loop.
Groups are formed greedily in schedule order; legality is checked on the graph of groups, so the
result is always schedulable (see contraction.py). The kernel is created with Graph.make_op and explicit
modifies/aliases; SSA versions of every storage stay contiguous (rewrite.retarget).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import expr_for, get
from compiler.ops.fused import inline_expr
from compiler.ops.primitives import Expr

from .refusals import format_recorded
from .contraction import Contraction
from .registry import in_every_graph, register
from .rewrite import replace_groups_in_order
from .schedule import dependency_graph


def is_fusible(op: Op) -> bool:
    d = get(op.kind)
    return d.decompose is not None and d.elementwise and op.called is None


def iteration_shape(op: Op) -> tuple[int, ...] | None:
    """The loop an op runs; None when every operand is a single element (it fits any loop)."""
    if op.kind == "FusedKernel":
        shape = tuple(op.attrs["shape"])
        return None if int(np.prod(shape)) == 1 else shape
    vals = list(op.inputs) + op.results
    if all(v.spec.nelms == 1 for v in vals):
        return None
    return tuple(np.broadcast_shapes(*(v.shape for v in vals)))


@dataclass
class Footprint:
    """What a group of ops does to memory: its loop, and the shapes it reads / writes each storage with.
    `ok`: the group alone passes `pair_refusal`'s broadcast rule (then a merge only needs the cross terms)."""

    shape: tuple[int, ...] | None
    reads: dict[int, set[tuple[int, ...]]] = field(default_factory=dict)
    writes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    ok: bool = False

    @staticmethod
    def of(op: Op) -> "Footprint":
        f = Footprint(iteration_shape(op))
        for v in op.inputs:
            f.reads.setdefault(v.storage, set()).add(v.shape)
        for i in op.modifies:
            f.writes[op.inputs[i].storage] = op.inputs[i].shape
        f.ok = _broadcast_refusal(f) is None
        return f

    def union(self, o: "Footprint") -> "Footprint":
        reads = {s: set(x) for s, x in self.reads.items()}
        for s, x in o.reads.items():
            reads.setdefault(s, set()).update(x)
        return Footprint(self.shape or o.shape, reads, {**self.writes, **o.writes})

    def absorb(self, o: "Footprint") -> "Footprint":
        """`self.union(o)` built in place in the larger of the two (both are consumed): merging a group of
        k ops into one of n costs O(k), not O(n + k), so a group that grows op by op stays linear."""
        mine = len(self.reads) + len(self.writes) >= len(o.reads) + len(o.writes)
        big, small = (self, o) if mine else (o, self)
        for s, x in small.reads.items():
            big.reads.setdefault(s, set()).update(x)
        if mine:
            self.writes.update(o.writes)
        else:
            for s, w in self.writes.items():
                o.writes.setdefault(s, w)  # o's write shape wins, as in union
        big.shape = self.shape or o.shape
        big.ok = True  # absorbed only after pair_refusal passed
        return big


def own_refusal(op: Op) -> str | None:
    shape = iteration_shape(op)
    for v in op.results:
        if shape is not None and v.spec.nelms != 1 and v.shape != shape:
            return f"its result {v.name!r} {v.shape} does not cover its loop {shape}"
    return None


def _broadcast_refusal(u: Footprint) -> str | None:
    for s, wshape in u.writes.items():
        if prod(wshape) == 1:
            continue  # single elements are loaded before the loop and stored after it
        for rshape in u.reads.get(s, ()):
            if rshape != wshape or (u.shape is not None and rshape != u.shape):
                return (f"a tensor written in place with shape {wshape} would also be read with shape {rshape} "
                        "(broadcast) in the same loop")
    return None


def _cross_ok(w: Footprint, r: Footprint, shape: tuple[int, ...] | None, skip: dict) -> bool:
    """No storage that `w` writes (and `skip` does not) is read by `r` with another shape; walks the
    smaller of w.writes and r.reads."""
    keys = w.writes if len(w.writes) <= len(r.reads) else r.reads
    for s in keys:
        if s not in w.writes or s not in r.reads or s in skip or prod(w.writes[s]) == 1:
            continue
        wshape = w.writes[s]
        if any(x != wshape or (shape is not None and x != shape) for x in r.reads[s]):
            return False
    return True


def pair_refusal(a: Footprint, b: Footprint) -> str | None:
    if a.shape is not None and b.shape is not None and a.shape != b.shape:
        return f"iteration shape {b.shape} differs from the kernel's {a.shape}"
    # each side alone is fine, so only one side's writes against the other's reads can break the rule
    # (b's write shape governs a storage both write); the full check names the offending tensor
    shape = a.shape or b.shape
    if a.ok and b.ok and _cross_ok(b, a, shape, {}) and _cross_ok(a, b, shape, b.writes):
        return None
    return _broadcast_refusal(a.union(b))


def _label(ops: list[Op]) -> str:
    names = [op.label for op in ops]
    return "[" + ", ".join(names if len(names) <= 6 else names[:5] + [f"... {len(names) - 5} more"]) + "]"


class Fuser:
    def __init__(self, g: Graph) -> None:
        self.g = g
        self.deps = dependency_graph(g)
        self.pos = {op: k for k, op in enumerate(g.ops)}
        forward = all(self.pos[a] < self.pos[b] for a, b in self.deps.edges)  # the schedule is topological
        self.c = Contraction(self.deps, self.pos if forward else None)
        self.foot: dict[Op, Footprint] = {}
        self.refusals: list[str] = []

    def _try(self, rep: Op, other: Op, op: Op, report: bool) -> Op:
        why = pair_refusal(self.foot[other], self.foot[rep])
        if why is None:
            blocker = self.c.blocker([rep, other])
            if blocker is not None:
                why = f"{blocker.label} depends on one of them and feeds the other"
        if why is not None:
            if report:
                members = sorted(self.c.members[other], key=self.pos.__getitem__)
                self.refusals.append(f"{op.label} not fused with {_label(members)}: {why}")
            return rep
        foot = self.foot.pop(rep).absorb(self.foot.pop(other))
        rep = self.c.merge([rep, other])
        self.foot[rep] = foot
        return rep

    def _apart(self, b: Op, link: Value | None) -> bool:
        """The group being grown and group `b` stay apart, for now, when `b` is a loop and the only thing
        linking them is a single-element tensor (a hyper-parameter, Adam's step): one
        loop would save no memory traffic, and following such links chained every parameter's update
        of an optimizer into one kernel that grew with the model, as did LLVM's superlinear cost on it
        (docs/compile_time.md). A group without a loop still joins a loop that reads it (its consumer:
        the loop computes it first); one left over joins a neighbour at the end (`_leftovers`)."""
        return link is not None and link.spec.nelms == 1 and self.foot[b].shape is not None

    def _link_candidates(self, op: Op, readers: dict[int, list[Op]]) -> list[tuple[Op, Value | None]]:
        """(op of a group to try, the tensor linking it to op, None for an ordering dependency), in the
        order they are tried: data producers, other dependencies, readers of a common tensor."""
        producers = [(v.producer, v) for v in op.inputs
                     if v.producer in self.pos and self.c.find(v.producer) in self.foot]
        data = {p for p, _ in producers}
        ordered = producers + [(p, None) for p in sorted(self.deps.pred[op], key=self.pos.__getitem__)
                               if p not in data]
        return ordered + [(r, v) for v in op.inputs for r in readers.get(v.id, [])]

    def _grow(self, op: Op, rep: Op, candidates: list[tuple[Op, Value | None]], respect_links: bool) -> Op:
        tried: set[Op] = set()
        for other, link in candidates:
            o = self.c.find(other)
            if o is rep or o not in self.foot or o in tried or (respect_links and self._apart(o, link)):
                continue
            tried.add(o)
            rep = self._try(rep, o, op, report=link is not None and link.producer is other)
        return rep

    def _leftovers(self, readers: dict[int, list[Op]]) -> None:
        """Each group still without a loop joins the loop of a producer or a reader of its tensors if it
        can (a step counter's write-back after the loop that computed it), once, so none of them grows."""
        for rep in [r for r, f in self.foot.items() if f.shape is None]:
            if rep not in self.foot or self.foot[rep].shape is not None:
                continue
            members = sorted(self.c.members[rep], key=self.pos.__getitem__)
            cands: list[tuple[Op, Value | None]] = []
            for m in members:
                cands += [(c, None) for c, _ in self._link_candidates(m, readers)]
                cands += [(r, None) for v in m.results for r in readers.get(v.id, [])]
            for other, _ in cands:
                o = self.c.find(other)
                if o is not rep and o in self.foot and self.foot[o].shape is not None \
                        and self._try(rep, o, members[0], False) is not rep:
                    break

    def groups(self) -> list[list[Op]]:
        readers: dict[int, list[Op]] = {}
        for op in self.g.ops:
            if not is_fusible(op):
                continue
            why = own_refusal(op)
            if why is not None:
                self.refusals.append(f"{op.label} not fused: {why}")
                continue
            self.foot[op] = Footprint.of(op)
            self._grow(op, op, self._link_candidates(op, readers), respect_links=True)
            for v in op.inputs:
                readers.setdefault(v.id, []).append(op)
        self._leftovers(readers)
        return [sorted(m, key=self.pos.__getitem__) for m in self.c.groups() if len(m) > 1]


def _members(op: Op) -> tuple[str, ...]:
    return tuple(op.attrs["members"]) if op.kind == "FusedKernel" else (op.label,)


def readers_of(g: Graph) -> dict[int, list[Op]]:
    """value id -> the ops that read it (None stands for a graph output)."""
    readers: dict[int, list[Op]] = {}
    for op in g.ops:
        for v in op.inputs:
            readers.setdefault(v.id, []).append(op)
    for v in g.outputs:
        readers.setdefault(v.id, []).append(None)  # type: ignore[arg-type]
    return readers


def build_kernel(g: Graph, members: list[Op], readers: dict[int, list[Op]] | None = None
                 ) -> tuple[Op, list[tuple[Value, Value]]]:
    """The FusedKernel for `members` (in schedule order) and (old value, kernel result) pairs to retarget.
    `readers` (readers_of(g), taken before any group was replaced) saves a scan of the graph per group."""
    mset = set(members)
    readers = readers_of(g) if readers is None else readers
    outside = {v.id for op in members for v in op.results if any(r not in mset for r in readers.get(v.id, ()))}
    inputs: list[Value] = []
    e, node = Expr(), {}
    for op in members:
        args = []
        for v in op.inputs:
            if v.id not in node:
                node[v.id] = e.input(len(inputs), v.dtype)
                inputs.append(v)
            args.append(node[v.id])
        for v, n in zip(op.results, inline_expr(e, expr_for(op), args)):
            node[v.id] = n
    source = {x.storage: i for i, x in enumerate(inputs)}
    if len(source) != len(inputs):
        raise AssertionError(f"fusion of {_label(members)} would read two versions of one storage")
    newest: dict[int, Value] = {}
    for op in members:
        for v in op.results:
            if v.storage not in newest or newest[v.storage].version < v.version:
                newest[v.storage] = v
    results = [v for op in members for v in op.results
               if newest[v.storage] is v and (v.id in outside or (v.version > 0 and v.storage in source))]
    for op in members:
        for v in op.results:
            if v.id in outside and newest[v.storage] is not v:
                raise AssertionError(f"fusion of {_label(members)}: {v.name!r} is read outside but overwritten inside")
    e.outputs = [node[v.id] for v in results]
    aliases = {j: source[r.storage] for j, r in enumerate(results) if r.version > 0 and r.storage in source}
    shape = next((s for s in map(iteration_shape, members) if s is not None), ())
    kernel = g.make_op(
        "FusedKernel", inputs, [r.spec for r in results], roles=tuple(f"in{i}" for i in range(len(inputs))),
        attrs={"expr": e, "shape": shape, "out_specs": tuple((r.shape, r.dtype) for r in results),
               "members": tuple(m for op in members for m in _members(op)), "kernel_listing": e.listing()},
        modifies=tuple(sorted(aliases.values())), aliases=aliases, name="fused",
        out_names=[r.name for r in results], append=False)
    return kernel, list(zip(results, kernel.outputs))


def fuse_graph(g: Graph) -> bool:
    fuser = Fuser(g)
    groups = fuser.groups()
    g.info["fusion_refusals"] = fuser.refusals
    readers = readers_of(g)
    return replace_groups_in_order(g, [(members, *build_kernel(g, members, readers)) for members in groups])


def format_refusals(ir: Ir) -> str:
    """Every recorded fusion refusal, one per line, by graph."""
    return format_recorded(ir, "fusion_refusals")


@register("fuse_elementwise")
def run(ir: Ir) -> bool:
    """Fuse connected elementwise ops over one iteration shape into FusedKernel loops."""
    return in_every_graph(ir, fuse_graph)
