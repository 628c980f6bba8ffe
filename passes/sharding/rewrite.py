"""Rewriting found updates (analysis.py) onto shards.

before -> after, per update U of weight w with gradient g and state m:

    r = ReplicatedAllReduce[Inplace](g)          rs = ReplicatedReduceScatter(g)           (k,)
                                                 ws = ReplicaShardedSlice(w)               (k,)
    m' = Accumulate(m, r) ...                    m' = Accumulate(m, rs) ...   m now (k,): sharded state
    w' = ScaledAddLhsInplace(w, u)               ws' = ScaledAddLhsInplace(ws, u)
                                                 wf = ReplicatedAllGather(ws')             w's shape
                                                 w' = CopyVarUpdate(w, wf)

k = ceil(numel / N). The elementwise ops are re-created on (k,) operands in their places; every
element is computed by the same expression from the same inputs, so the result is bit-identical.
Small tensors' collectives can be packed (pack.py) through the `Collectives` interface below.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.ir import Graph, Ir, Op, TensorSpec, Value
from compiler.ir.sharding import ShardLayout
from compiler.ops import registry

from ..rewrite import Retargeter
from .analysis import Update, scalar


@dataclass
class Edit:
    """Where new ops go in the graph's op list: before / after an existing op, or in its place."""

    before: dict[Op, list[Op]] = field(default_factory=dict)
    after: dict[Op, list[Op]] = field(default_factory=dict)
    replace: dict[Op, Op | None] = field(default_factory=dict)  # None: removed
    retarget: list[tuple[Value, Value]] = field(default_factory=list)

    def apply(self, g: Graph) -> None:
        ops: list[Op] = []
        for op in g.ops:
            ops += self.before.get(op, [])
            new = self.replace.get(op, op)
            if new is not None:
                ops.append(new)
            ops += self.after.get(op, [])
        gone = [op for op, new in self.replace.items()]
        g.ops = ops
        # in_sequence constraints follow a replaced op to its one replacement; a removed op's are dropped
        # (its data dependences keep the order that matters)
        keep = {op: new for op, new in self.replace.items()}
        g.constraints = [(keep.get(a, a), keep.get(b, b)) for a, b in g.constraints
                         if keep.get(a, a) is not None and keep.get(b, b) is not None]
        g.unordered_groups = [[keep.get(o, o) for o in grp if keep.get(o, o) is not None]
                              for grp in g.unordered_groups]
        live = {v.id for op in ops for v in op.results}
        for op in gone:
            for v in op.results:
                if v.id not in live:
                    g.values.pop(v.id, None)
        rt = Retargeter(g)
        for old, new in self.retarget:
            rt.retarget(old, new)
        rt.finish()


def emit(g: Graph, kind: str, inputs: dict[str, Value], attrs: dict, name: str) -> Op:
    return registry.emit(g, kind, inputs, attrs, name=name, out_names=[f"{name}_out"], append=False)


def group_attrs(n: int) -> dict:
    return {"group": (1, n), "replicas": n}


class Collectives:
    """One reduce-scatter per gradient and one all-gather per updated weight (pack.py packs small ones)."""

    def __init__(self, ir: Ir, g: Graph, edit: Edit) -> None:
        self.ir, self.g, self.edit, self.n = ir, g, edit, ir.replication_factor
        self.anchors: dict[int, Op] = {}  # shard value id -> the op its all-gather follows (default: update's end)

    def scatter(self, updates: list[Update]) -> dict[int, Value]:
        """reduce op id -> this replica's (k,) shard of its reduced gradient."""
        out = {}
        for u in updates:
            for a in u.reduces:
                rs = emit(self.g, "ReplicatedReduceScatter", {"t": a.inputs[0]},
                          {"op": a.attrs["op"], **group_attrs(self.n)}, "shard_reduce_scatter")
                self.edit.replace[a] = rs
                out[a.id] = rs.outputs[0]
        return out

    def gather(self, items: list[tuple[Update, Value, tuple[int, ...]]]) -> dict[int, Value]:
        """(update, final shard, full shape) -> shard value id -> the whole tensor, placed after the update."""
        out = {}
        for u, shard, shape in items:
            ag = emit(self.g, "ReplicatedAllGather", {"t": shard},
                      {**group_attrs(self.n), "axis": 0, "mode": "meta_shape", "out_shape": tuple(shape)},
                      "shard_all_gather")
            self.edit.after.setdefault(u.ops[-1], []).append(ag)
            out[shard.id] = ag.outputs[0]
        return out


def shard_state(ir: Ir, root: Value) -> ShardLayout:
    """Make variable `root` a (k,) shard: its spec, its initial data (replica 0's piece), its layout."""
    layout = ShardLayout(tuple(root.shape), ir.replication_factor)
    ir.variables[root.id] = layout.split(ir.variables[root.id])[0]
    root.spec = TensorSpec((layout.shard,), root.dtype)
    ir.sharded_variables[root.id] = layout
    return layout


def rewrite(ir: Ir, g: Graph, updates: list[Update], coll: Collectives) -> None:
    """Rewrite every update of `g` onto shards (one edit of the op list at the end)."""
    from ..alias_analysis import AliasInfo

    info = AliasInfo(g)
    edit = coll.edit
    shards = coll.scatter(updates)
    gathers: list[tuple[Update, Value, tuple[int, ...]]] = []
    copies: list[tuple[Update, Value, Value]] = []  # (update, external version written, final old version)
    clones: dict[int, Value] = {}
    for u in updates:
        m: dict[int, Value] = {a.outputs[0].id: shards[a.id] for a in u.reduces}
        for s in u.state:
            shard_state(ir, info.values_of(s)[0])
        readers = {v.id: next(op for op in u.ops if v in op.inputs) for v in u.sliced}
        for v in u.sliced:
            sl = emit(g, "ReplicaShardedSlice", {"t": v}, group_attrs(ir.replication_factor), "shard_slice")
            edit.before.setdefault(readers[v.id], []).append(sl)
            m[v.id] = sl.outputs[0]
        for op in u.ops:
            ins = []
            for v in op.inputs:
                x = m.get(v.id, v)
                if x is v and not scalar(v) and v.storage not in u.state:
                    raise AssertionError(f"shard_weight_update: {op.label} reads {v.name!r} with no shard")
                ins.append(x)
            new = registry.emit(g, op.kind, dict(zip(op.roles, ins)), dict(op.attrs), name=op.name,
                                out_names=[v.name for v in op.outputs], append=False)
            new.source = op.source
            for old_v, new_v in zip(op.outputs, new.outputs):
                m[old_v.id] = new_v
            for i, old_v in op.updates.items():
                m[old_v.id] = new.updates[i]
            edit.replace[op] = new
        produced = [v for op in u.ops for v in op.results]
        for v in produced:
            clones[v.id] = m[v.id]
            if scalar(v):
                edit.retarget.append((v, m[v.id]))
        for s in u.whole:
            mine = [v for v in produced if v.storage == s]
            final = max(mine, key=lambda v: v.version)
            first = min(mine, key=lambda v: v.version)
            before = info.versions[s][first.version - 1]  # the version the update first overwrites
            gathers.append((u, m[final.id], tuple(before.shape)))
            copies.append((u, before, final))
    whole = coll.gather(gathers)
    for u, before, final in copies:
        shard = clones[final.id]
        cp = emit(g, "CopyVarUpdate", {"t": before, "X": whole[shard.id]}, {}, "shard_copy_back")
        edit.after.setdefault(coll.anchors.get(shard.id, u.ops[-1]), []).append(cp)
        edit.retarget.append((final, cp.outputs[0]))
    edit.apply(g)
