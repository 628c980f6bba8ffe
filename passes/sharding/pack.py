"""Packing small updates' collectives: one reduce-scatter and one all-gather for many small tensors.

A reduce-scatter hands replica m the m-th contiguous piece of its input, so tensors cannot simply be
laid end to end (replica m would get whole tensors, not a piece of each). Each gradient is padded to
N*k_i elements and viewed as (N, k_i); the views are concatenated along axis 1 into (N, K), whose row
m is [piece m of g_1, piece m of g_2, ...]:

    before -> after
    rs_i = ReduceScatter(g_i)            for i in bucket
    -> p = ReduceScatter(Concat([Reshape(pad(g_i), (N, k_i)) ...], axis=1))          (K,)
       rs_i = Slice(p, off_i .. off_i + k_i)
    full_i = AllGather(s_i)              for i in bucket
    -> a = AllGather(Concat([s_i ...]), new_axis)                                    (N, K)
       full_i = Reshape(Slice(Reshape(Slice(a, cols off_i .. off_i + k_i), (N*k_i,)), 0 .. n_i), shape_i)

Reduction is elementwise across replicas in the same order, and the padding is zeros in both forms,
so every element is bit for bit what the unpacked collectives give. Updates whose gradients are under
BUCKET_BYTES (as the backend's bucketing of small all-reduces, #15) are packed, in schedule order,
while every packed all-reduce comes before every packed update op; a packed all-gather is placed after
the bucket's last update op when no other op touches those weights in between.
"""
from __future__ import annotations

import numpy as np

from compiler.ir import Graph, Ir, Op, Value

from ..alias_analysis import AliasInfo
from .analysis import Update
from .rewrite import Collectives, Edit, emit, group_attrs

BUCKET_BYTES = 64 * 1024  # gradients of an update smaller than this share collectives


class PackedCollectives(Collectives):
    def __init__(self, ir: Ir, g: Graph, edit: Edit) -> None:
        super().__init__(ir, g, edit)
        self.info = AliasInfo(g)
        self.pos = self.info.position
        self.buckets: list[list[Update]] = []

    # ------------------------------------------------------------ which updates share collectives
    def _fits(self, bucket: list[Update], u: Update) -> bool:
        if not bucket:
            return True
        if (u.reduces[0].attrs["op"], u.reduces[0].inputs[0].dtype) != \
                (bucket[0].reduces[0].attrs["op"], bucket[0].reduces[0].inputs[0].dtype):
            return False
        members = bucket + [u]
        last = max(self.pos[a] for m in members for a in m.reduces)
        first_op = min(self.pos[m.ops[0]] for m in members)
        if last > first_op:
            return False
        # the packed scatter reads each gradient at `last`: nothing may overwrite one before that
        for m in members:
            for a in m.reduces:
                w = self.info.writer_of(a.inputs[0])
                if w is not None and w is not a and self.pos[w] <= last:
                    return False
        return True

    def _bucket(self, updates: list[Update]) -> list[list[Update]]:
        small = [u for u in updates if u.nbytes < BUCKET_BYTES]
        small.sort(key=lambda u: min(self.pos[a] for a in u.reduces))
        out: list[list[Update]] = []
        cur: list[Update] = []
        for u in small:
            if not self._fits(cur, u):
                out.append(cur)
                cur = []
            cur.append(u)
        if cur:
            out.append(cur)
        return [b for b in out if len(b) > 1]

    # ------------------------------------------------------------ ops
    def _op(self, kind: str, inputs: dict[str, Value], attrs: dict, name: str, into: list[Op]) -> Value:
        op = emit(self.g, kind, inputs, attrs, name)
        into.append(op)
        return op.outputs[0]

    def _reshape(self, x: Value, shape: tuple[int, ...], into: list[Op]) -> Value:
        return x if x.shape == shape else self._op("Reshape", {"x": x}, {"shape": shape}, "shard_pack_reshape", into)

    def _slice(self, x: Value, start: int, stop: int, axis: int, into: list[Op]) -> Value:
        if start == 0 and stop == x.shape[axis]:
            return x
        return self._op("Slice", {"x": x}, {"starts": (start,), "stops": (stop,), "steps": (1,), "axes": (axis,)},
                        "shard_pack_slice", into)

    def scatter(self, updates: list[Update]) -> dict[int, Value]:
        self.buckets = self._bucket(updates)
        packed = {id(u) for b in self.buckets for u in b}
        out = super().scatter([u for u in updates if id(u) not in packed])
        n = self.n
        for bucket in self.buckets:
            reduces = sorted((a for u in bucket for a in u.reduces), key=self.pos.__getitem__)
            ops: list[Op] = []
            mats, offsets, off = [], [], 0
            for a in reduces:
                x = a.inputs[0]
                k = -(-x.spec.nelms // n)
                flat = x
                if n * k > x.spec.nelms:  # zero padding to N*k elements, as a reduce-scatter pads
                    flat = self._reshape(x, (x.spec.nelms,), ops)
                    zeros = self.ir.add_constant(self.g, np.zeros(n * k - x.spec.nelms, x.dtype.numpy), "shard_pad")
                    flat = self._op("Concat", {"in0": flat, "in1": zeros}, {"axis": 0}, "shard_pack_pad", ops)
                mats.append(self._reshape(flat, (n, k), ops))
                offsets.append((off, k))
                off += k
            cat = self._op("Concat", {f"in{i}": m for i, m in enumerate(mats)}, {"axis": 1}, "shard_pack", ops)
            rs = self._op("ReplicatedReduceScatter", {"t": cat}, {"op": reduces[0].attrs["op"], **group_attrs(n)},
                          "shard_reduce_scatter", ops)
            for a, (o, k) in zip(reduces, offsets):
                out[a.id] = self._slice(rs, o, o + k, 0, ops)
                self.edit.replace[a] = None
            self.edit.before.setdefault(reduces[-1], []).extend(ops)
        return out

    def gather(self, items: list[tuple[Update, Value, tuple[int, ...]]]) -> dict[int, Value]:
        out: dict[int, Value] = {}
        rest = list(items)
        for bucket in self.buckets:
            mine = [it for it in rest if any(it[0] is u for u in bucket)]
            anchor = max((u.ops[-1] for u in bucket), key=self.pos.__getitem__)
            if len(mine) < 2 or not self._gather_fits(bucket, anchor):
                continue
            rest = [it for it in rest if not any(it is m for m in mine)]
            n = self.n
            ops: list[Op] = []
            ks = [s.spec.nelms for _, s, _ in mine]
            cat = self._op("Concat", {f"in{i}": s for i, (_, s, _) in enumerate(mine)}, {"axis": 0}, "shard_pack",
                           ops)
            total = sum(ks)
            ag = self._op("ReplicatedAllGather", {"t": cat},
                          {**group_attrs(n), "axis": 0, "mode": "new_axis", "out_shape": (n, total)},
                          "shard_all_gather", ops)
            off = 0
            for (_, s, shape), k in zip(mine, ks):
                cols = self._slice(ag, off, off + k, 1, ops)
                flat = self._reshape(cols, (n * k,), ops)
                numel = int(np.prod(shape))
                out[s.id] = self._reshape(self._slice(flat, 0, numel, 0, ops), tuple(shape), ops)
                self.anchors[s.id] = anchor
                off += k
            self.edit.after.setdefault(anchor, []).extend(ops)
        out.update(super().gather(rest))
        return out

    def _gather_fits(self, bucket: list[Update], anchor: Op) -> bool:
        """No op outside the bucket touches a bucket weight between its update's end and the anchor."""
        end = self.pos[anchor]
        members = {op for u in bucket for op in u.ops}
        for u in bucket:
            for s in u.whole:
                for acc in self.info.accesses.get(s, []):
                    if acc.op not in members and self.pos[u.ops[-1]] < acc.position <= end:
                        return False
        return True
