"""Finding the weight updates `shard_weight_update` can run on 1/N shards, or why not.

An update is the set S of elementwise ops reachable from the result R of a gradient all-reduce
(`ReplicatedAllReduce[Inplace]`, op add or mean, over every replica) through non-scalar values. It can
be sharded when every element of its output depends only on the same element of its inputs:

  - every op of S is elementwise, and every non-scalar tensor it touches has R's shape (no broadcast);
  - a non-scalar value S produces is read outside S only if it is the final version of a variable S
    writes (the weight: all-gathered back into the variable); anything else read outside S, like LAMB's
    norm of the update (LambSquare) or a gradient-clipping sum, needs the whole tensor: refused;
  - at least one variable is written (otherwise it is not an optimizer update).

Single-element values (hyper-parameters, Adam's step counter) are left as they are: every replica
computes them alike. Variables S alone touches become sharded state; variables read elsewhere too (the
weight, read by the forward pass) stay whole and S reads this replica's slice of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import get
from compiler.ops.collectives import ALL_REDUCE

from ..alias_analysis import AliasInfo


def is_elementwise(op: Op) -> bool:
    d = get(op.kind)
    return d.decompose is not None and d.elementwise and op.called is None


def scalar(v: Value) -> bool:
    return v.spec.nelms == 1


@dataclass
class Update:
    """One shardable update: its all-reduces, its ops (graph order) and how it touches storage."""

    reduces: list[Op]
    ops: list[Op]
    shape: tuple[int, ...]  # the iteration shape (the gradient's)
    state: list[int] = field(default_factory=list)  # storages of variables kept as shards
    whole: list[int] = field(default_factory=list)  # storages of variables S writes that stay whole
    sliced: list[Value] = field(default_factory=list)  # non-scalar values from outside S (sliced)
    notes: list[str] = field(default_factory=list)  # what changes that a user could observe

    @property
    def nbytes(self) -> int:
        return sum(a.inputs[0].spec.nbytes for a in self.reduces)


def reduce_refusal(ir: Ir, a: Op) -> str | None:
    """Why all-reduce `a` cannot become a reduce-scatter, or None."""
    n = ir.replication_factor
    if a.attrs.get("op") not in ("add", "mean"):
        return f"{a.label} reduces with op={a.attrs.get('op')!r}, not a gradient sum or mean"
    if tuple(a.attrs["group"]) != (1, n):
        return f"{a.label} spans replica group {tuple(a.attrs['group'])}, not all {n} replicas"
    if scalar(a.inputs[0]):
        return f"{a.label} reduces a single element (nothing to shard)"
    return None


class Finder:
    """The updates of one graph (the main graph: variables live there)."""

    def __init__(self, ir: Ir, g: Graph) -> None:
        self.ir, self.g = ir, g
        self.info = AliasInfo(g)
        self.pos = self.info.position
        self.readers: dict[int, list[Op]] = {}
        for op in g.ops:
            for v in op.inputs:
                self.readers.setdefault(v.id, []).append(op)
        self.refusals: list[str] = []

    def cone(self, r: Value) -> tuple[set[Op], str | None]:
        """The elementwise ops reachable from `r` through non-scalar values; or why it cannot be sharded."""
        shape = r.shape
        members: set[Op] = set()
        todo = [r]
        seen = {r.id}
        while todo:
            v = todo.pop()
            for op in self.readers.get(v.id, []):
                if op in members:
                    continue
                if not is_elementwise(op):
                    continue  # judged below: only a weight's final version may be read outside
                odd = [x for x in op.inputs + op.results if not scalar(x) and x.shape != shape]
                if odd:
                    return members, (f"{op.label} combines {odd[0].name!r} {odd[0].spec} with the {shape} gradient "
                                     "(a broadcast: elements of different shards meet)")
                members.add(op)
                for x in op.results:
                    if not scalar(x) and x.id not in seen:
                        seen.add(x.id)
                        todo.append(x)
        return members, None

    def classify(self, reduces: list[Op], members: set[Op]) -> Update | str:
        """The Update for these ops, or why they cannot be sharded."""
        info = self.info
        ops = sorted(members, key=self.pos.__getitem__)
        reduced = {a.outputs[0].id for a in reduces}
        shape = reduces[0].outputs[0].shape
        produced = {v.id: v for op in ops for v in op.results}
        upd = Update(list(reduces), ops, shape)
        groups = self.ir.meta.get("replica_groups", {})
        # storages of variables S touches, split into state (only S touches them) and whole
        touched: dict[int, Value] = {}
        for op in ops:
            for v in op.inputs + op.results:
                if scalar(v) or v.id in reduced:
                    continue
                root = info.values_of(v.storage)[0]
                if root.kind == "variable":
                    touched.setdefault(v.storage, root)
        # values S produces that others read: only the final version of a whole variable
        final: dict[int, Value] = {}  # storage -> the last version the update makes of it
        for v in produced.values():
            if v.storage not in final or final[v.storage].version < v.version:
                final[v.storage] = v
        for v in produced.values():
            outside = [op for op in self.readers.get(v.id, []) if op not in members]
            if scalar(v) or not outside:
                continue
            root = info.values_of(v.storage)[0]
            if root.kind == "variable" and final[v.storage] is v:
                continue  # a weight's new value: gathered whole
            return (f"{outside[0].label} reads {v.name!r} {v.spec}, which the update computes: it needs the whole "
                    "tensor (a reduction across shards), which shard_weight_update does not implement")
        for a in reduces:  # the reduced gradient itself, read by something other than an elementwise op
            outside = [op for op in self.readers.get(a.outputs[0].id, []) if op not in members]
            if outside:
                return (f"{outside[0].label} reads the reduced gradient {a.outputs[0].name!r} whole (a reduction "
                        "across shards, e.g. a norm), which shard_weight_update does not implement")
        grad_storages = {a.outputs[0].storage for a in reduces}
        for s, root in touched.items():
            if root.id in groups:
                return f"variable {root.name!r} has one value per replica group"
            accesses = info.accesses.get(s, [])
            writes = [acc for acc in accesses if acc.op in members and acc.write]
            if all(acc.op in members for acc in accesses):
                upd.state.append(s)
                continue
            if not writes:
                continue  # read-only here and read elsewhere: S reads this replica's slice
            if s in grad_storages:
                return f"the update overwrites the reduced gradient variable {root.name!r} in place"
            first = min(self.pos[acc.op] for acc in accesses if acc.op in members)
            last = max(self.pos[acc.op] for acc in writes)
            # reads of the old value may go on until the new one is copied back; writes may not
            late = [acc for acc in accesses if acc.op not in members and acc.write and first < acc.position < last]
            if late:
                return (f"{late[0].op.label} touches variable {root.name!r} in the middle of its update "
                        f"({writes[0].op.label} .. {writes[-1].op.label})")
            upd.whole.append(s)
        if not any(acc.write and acc.op in members for s in upd.state + upd.whole
                   for acc in info.accesses.get(s, [])):
            return "the all-reduced gradient updates no variable"
        for a in reduces:
            root = info.values_of(a.outputs[0].storage)[0]
            if root.kind == "variable":
                upd.notes.append(f"variable {root.name!r} keeps this replica's own gradient after the step, not "
                                 f"the {a.attrs['op']} over replicas (the reduced gradient exists only as shards)")
        # values S reads from outside: the reduced gradient, single elements, or slices of whole tensors
        for op in ops:
            for v in op.inputs:
                if v.id in produced or v.id in reduced or scalar(v) or v.storage in upd.state:
                    continue
                if v not in upd.sliced:
                    upd.sliced.append(v)
        return upd

    def find(self) -> list[Update]:
        reduces = [op for op in self.g.ops if op.kind in ALL_REDUCE]
        cones: list[tuple[list[Op], set[Op]]] = []
        for a in reduces:
            why = reduce_refusal(self.ir, a)
            if why is None:
                members, why = self.cone(a.outputs[0])
                if why is None and not members:
                    why = f"nothing elementwise reads {a.label}'s result"
            if why is not None:
                self.refusals.append(f"{a.label} ({a.inputs[0].name!r} {a.inputs[0].spec}) left whole: {why}")
                continue
            for k, (rs, ms) in enumerate(cones):  # updates that read two reduced gradients become one
                if ms & members:
                    cones[k] = (rs + [a], ms | members)
                    break
            else:
                cones.append(([a], members))
        out = []
        for rs, ms in cones:
            got = self.classify(rs, ms)
            if isinstance(got, str):
                names = ", ".join(f"{a.label} ({a.inputs[0].name!r} {a.inputs[0].spec})" for a in rs)
                self.refusals.append(f"{names} left whole: {got}")
            else:
                out.append(got)
        return out
