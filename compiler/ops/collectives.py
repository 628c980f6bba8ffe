"""Collective ops across data-parallel replicas (PopXL's `ops.collectives`).

Every collective has attrs `group = (stride, size)` (the replicas it spans, PopXL's ReplicaGrouping:
replica r is member (r // stride) % size of group (r % stride) + (r // (stride*size)) * stride) and
`replicas` (the Ir's replication factor when the op was built). Their semantics need every replica's
input at once, so `reduce_over_replicas` below is the reference over all replicas; the runtimes
(interpreter, compiled code, MPI) gather the replicas' inputs and call it, or do the same reduction
in place with MPI. A reduction combines replicas in ascending replica order, in the tensor's dtype.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from compiler.ir import Op, TensorSpec

from .registry import OpDef, OpError, register

REDUCE_OPS = ("add", "mean", "mul", "min", "max", "and", "or", "square_add")
ALL_REDUCE = ("ReplicatedAllReduce", "ReplicatedAllReduceInplace")
KINDS = ALL_REDUCE + ("ReplicatedReduceScatter", "ReplicatedAllGather", "ReplicaShardedSlice",
                      "ReplicatedSlice")


def groups_of(replicas: int, stride: int, size: int) -> list[list[int]]:
    """The replica groups, each in member order: [[0, stride, 2*stride, ...], ...]."""
    if replicas % (stride * size):
        raise OpError(f"replica grouping (stride={stride}, group_size={size}) does not tile {replicas} replicas")
    out: dict[int, list[int]] = {}
    for r in range(replicas):
        out.setdefault(group_index(r, stride, size), []).append(r)
    return [out[k] for k in sorted(out)]


def group_index(r: int, stride: int, size: int) -> int:
    return r % stride + (r // (stride * size)) * stride


def member_index(r: int, stride: int, size: int) -> int:
    return (r // stride) % size


def _check_group(a: dict[str, Any]) -> int:
    stride, size = a["group"]
    n = a["replicas"]
    if size < 1 or stride < 1 or n % (size * stride):
        raise OpError(f"replica group (stride={stride}, size={size}) does not tile the replication factor {n}")
    return size


def _infer_same(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    _check_group(a)
    if a.get("op") not in REDUCE_OPS:
        raise OpError(f"collective op {a.get('op')!r} is not one of {', '.join(REDUCE_OPS)}")
    if a["op"] in ("and", "or") and s["t"].dtype.name != "bool":
        raise OpError(f"collective op {a['op']!r} needs a bool tensor, got {s['t'].dtype.name}")
    return [s["t"]]


def shard_size(spec: TensorSpec, size: int) -> int:
    return math.ceil(spec.nelms / size)


def _infer_scatter(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    size = _check_group(a)
    if a.get("op") not in REDUCE_OPS:
        raise OpError(f"collective op {a.get('op')!r} is not one of {', '.join(REDUCE_OPS)}")
    return [TensorSpec((shard_size(s["t"], size),), s["t"].dtype)]


def _infer_gather(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    _check_group(a)
    return [TensorSpec(tuple(a["out_shape"]), s["t"].dtype)]


def _infer_sharded_slice(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [TensorSpec((shard_size(s["t"], _check_group(a)),), s["t"].dtype)]


def _infer_slice(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    size = _check_group(a)
    shape = list(s["t"].shape)
    ax = a["axis"]
    if not -len(shape) <= ax < len(shape) or shape[ax] % size:
        raise OpError(f"replicated_slice: axis {ax} of shape {tuple(shape)} does not split into {size} equal parts")
    shape[ax] //= size
    return [TensorSpec(tuple(shape), s["t"].dtype)]


# ------------------------------------------------------------------ reference over all replicas
def _combine(op: str, xs: list[np.ndarray]) -> np.ndarray:
    """Reduce the members' arrays in member order, in their dtype."""
    dt = xs[0].dtype
    if op == "square_add":
        xs = [x * x for x in xs]
    acc = np.array(xs[0], copy=True)
    for x in xs[1:]:
        if op in ("add", "mean", "square_add"):
            acc = (acc + x).astype(dt, copy=False)
        elif op == "mul":
            acc = (acc * x).astype(dt, copy=False)
        elif op == "min":
            acc = np.minimum(acc, x)
        elif op == "max":
            acc = np.maximum(acc, x)
        elif op == "and":
            acc = np.logical_and(acc, x)
        elif op == "or":
            acc = np.logical_or(acc, x)
    if op == "mean":
        acc = (acc // len(xs) if dt.kind in "iu" else acc / np.array(len(xs), dt)).astype(dt, copy=False)
    return acc


def combine(op: str, xs: list[np.ndarray]) -> np.ndarray:
    """The members' arrays reduced in member order, in their dtype (what every collective here computes)."""
    return _combine(op, xs)


def _padded_flat(x: np.ndarray, size: int) -> np.ndarray:
    n = math.ceil(x.size / size) * size
    flat = np.zeros(n, x.dtype)
    flat[:x.size] = x.reshape(-1)
    return flat


def reduce_one_group(kind: str, attrs: dict[str, Any], xs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of one replica group's members, given their inputs in member order."""
    size = len(xs)
    if kind in ALL_REDUCE:
        r = _combine(attrs["op"], xs)
        return [r.copy() for _ in xs]
    if kind == "ReplicatedReduceScatter":
        r = _padded_flat(_combine(attrs["op"], xs), size)
        return list(np.split(r, size))
    if kind == "ReplicatedAllGather":
        axis = attrs["axis"]
        mode = attrs["mode"]
        if mode == "new_axis":
            g = np.stack(xs)
        elif mode == "concat":
            g = np.concatenate(xs, axis=axis)
        else:  # meta_shape: flat shards laid end to end, padding dropped
            g = np.concatenate([x.reshape(-1) for x in xs])[:math.prod(attrs["out_shape"])]
        g = g.reshape(attrs["out_shape"])
        return [g.copy() for _ in xs]
    if kind == "ReplicaShardedSlice":
        return [np.split(_padded_flat(x, size), size)[m].copy() for m, x in enumerate(xs)]
    if kind == "ReplicatedSlice":
        return [np.split(x, size, axis=attrs["axis"])[m].copy() for m, x in enumerate(xs)]
    raise KeyError(f"{kind} is not a collective")


def reduce_over_replicas(kind: str, attrs: dict[str, Any], inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The reference: every replica's output, given every replica's input (index = replica)."""
    stride, size = attrs["group"]
    outs: list[np.ndarray | None] = [None] * len(inputs)
    for members in groups_of(len(inputs), stride, size):
        for r, o in zip(members, reduce_one_group(kind, attrs, [inputs[r] for r in members])):
            outs[r] = o
    return outs  # type: ignore[return-value]


def _single_replica(kind: str):
    """With one replica per group a collective is local; anything else needs the replicas runtime."""
    def ref(x: dict[str, np.ndarray], a: dict[str, Any], op: Op) -> list[np.ndarray]:
        if a["group"][1] != 1:
            raise RuntimeError(f"{op.label} spans {a['group'][1]} replicas; run it through a replicated Session "
                               "(runtime/replicas.py), not the single-replica reference")
        return reduce_one_group(kind, a, [x["t"]])
    return ref


# ------------------------------------------------------------------ gradients (as PopXL defines them)
def _grad_all_reduce(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    # y_r = reduce_i x_i over the group: for add, dL/dx_i = sum_r dL/dy_r; for mean, the mean of them
    if op.attrs["op"] not in ("add", "mean"):
        raise NotImplementedError(f"PopXL defines no gradient for replicated_all_reduce(op={op.attrs['op']!r})")
    return [c.one("ReplicatedAllReduce", {"t": dys[0]}, dict(op.attrs))]


def _grad_reduce_scatter(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    if op.attrs["op"] not in ("add", "mean"):
        raise NotImplementedError(f"PopXL defines no gradient for replicated_reduce_scatter(op={op.attrs['op']!r})")
    x = op.inputs[0]
    size = op.attrs["group"][1]
    gathered = c.one("ReplicatedAllGather", {"t": dys[0]},
                     {"group": op.attrs["group"], "replicas": op.attrs["replicas"], "axis": 0,
                      "mode": "meta_shape", "out_shape": x.shape})
    if op.attrs["op"] == "mean":
        gathered = c.div(gathered, c.const(float(size), x.dtype))
    return [gathered]


def _grad_all_gather(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    # PopXL: the gradient of a gather is this replica's slice of the (replica-identical) gradient
    a = op.attrs
    x = op.inputs[0]
    base = {"group": a["group"], "replicas": a["replicas"]}
    if a["mode"] == "concat":
        return [c.one("ReplicatedSlice", {"t": dys[0]}, {**base, "axis": a["axis"]})]
    flat = c.one("Reshape", {"x": dys[0]}, {"shape": (math.prod(dys[0].shape),)})
    shard = c.one("ReplicaShardedSlice", {"t": flat}, base)
    if a["mode"] == "new_axis":
        return [c.one("Reshape", {"x": shard}, {"shape": x.shape})]
    return [shard]


def _grad_sharded_slice(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    x = op.inputs[0]
    return [c.one("ReplicatedAllGather", {"t": dys[0]},
                  {"group": op.attrs["group"], "replicas": op.attrs["replicas"], "axis": 0, "mode": "meta_shape",
                   "out_shape": x.shape})]


def _grad_slice(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    x = op.inputs[0]
    return [c.one("ReplicatedAllGather", {"t": dys[0]},
                  {"group": op.attrs["group"], "replicas": op.attrs["replicas"], "axis": op.attrs["axis"],
                   "mode": "concat", "out_shape": x.shape})]


register(OpDef(kind="ReplicatedAllReduce", formula="out_r = reduce(op, t over the group), every member r",
               infer=_infer_same, reference=_single_replica("ReplicatedAllReduce"), grad=_grad_all_reduce,
               pure=False))
register(OpDef(kind="ReplicatedAllReduceInplace", formula="t <- reduce(op, t over the group), in place on t",
               infer=_infer_same, modifies=("t",), aliases={0: "t"},
               reference=_single_replica("ReplicatedAllReduceInplace"), pure=False))
register(OpDef(kind="ReplicatedReduceScatter",
               formula="out_m = slice m of pad(flatten(reduce(op, t over the group)), ceil(n/size))",
               infer=_infer_scatter, reference=_single_replica("ReplicatedReduceScatter"), grad=_grad_reduce_scatter,
               pure=False))
register(OpDef(kind="ReplicatedAllGather", formula="out = members' t stacked / concatenated / unsharded",
               infer=_infer_gather, reference=_single_replica("ReplicatedAllGather"), grad=_grad_all_gather,
               pure=False))
register(OpDef(kind="ReplicaShardedSlice", formula="out_m = slice m of pad(flatten(t), ceil(n/size))",
               infer=_infer_sharded_slice, reference=_single_replica("ReplicaShardedSlice"), grad=_grad_sharded_slice,
               pure=False))
register(OpDef(kind="ReplicatedSlice", formula="out_m = part m of t split along axis",
               infer=_infer_slice, reference=_single_replica("ReplicatedSlice"), grad=_grad_slice, pure=False))
