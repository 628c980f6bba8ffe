"""Collectives in compiled code: calls through the runtime's hook table (the C ABI in abi.py).

The entry point's last argument is `const optc_runtime *rt` (runtime/native_runtime.py);
`rt->collective_hooks` points at

  typedef struct {
    int32_t (*all_reduce)(void *ctx, const void *in, void *out, int64_t count, int32_t dtype, int32_t op,
                          int32_t stride, int32_t group_size);      /* out may equal in */
    int32_t (*reduce_scatter)(...same...);  /* out: ceil(count / group_size) elements, zero padded */
    int32_t (*all_gather)(...same...);      /* out: group_size * count elements, members end to end */
    int32_t (*replica_index)(void *ctx);    /* this replica's index in 0 .. replication_factor - 1 */
  } optc_collective_hooks;

called with `rt->collective_ctx`. `dtype` is the DType's position in compiler/ir/dtypes.py, `op` the
position in compiler.ops.collectives.REDUCE_OPS. A hook returns 0, or non-zero to stop the run with
status COLLECTIVE_FAILED (the caller's hook knows why); with rt or its hooks NULL the run stops with
NO_COLLECTIVE_HOOKS instead of calling through NULL. The replicated slices need no communication: they copy this
replica's part, found from replica_index.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from compiler.ir import DType, Op
from compiler.ops.collectives import REDUCE_OPS, shard_size
from runtime.native_runtime import COLLECTIVE_FAILED, NO_COLLECTIVE_HOOKS

from .loops import c64, for_range
from .special import special
from .types import CTX_RUNTIME, CTX_STATUS, I32, I64, PTR, RT_COLLECTIVE_CTX, RT_COLLECTIVE_HOOKS, RUNTIME

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

HOOK = ir.FunctionType(I32, [PTR, PTR, PTR, I64, I32, I32, I32, I32])
INDEX = ir.FunctionType(I32, [PTR])
HOOKS = ir.LiteralStructType([HOOK.as_pointer()] * 3 + [INDEX.as_pointer()])
ALL_REDUCE, REDUCE_SCATTER, ALL_GATHER, REPLICA_INDEX = range(4)
DTYPE_CODES = {dt: k for k, dt in enumerate(DType)}


def _hook(gl: "GraphLowering", which: int, call: "Callable[[ir.Value, ir.Value], ir.Value]") -> None:
    """rc = call(collective_ctx, hook `which`) when rt and its hook table exist, else status
    NO_COLLECTIVE_HOOKS; a non-zero rc sets status COLLECTIVE_FAILED (the run stops after this
    iteration; its later hooks return at once, so the replicas' calls stay matched)."""
    b = gl.b
    zero = ir.Constant(I32, 0)
    rt = b.bitcast(gl.ctx_field(CTX_RUNTIME), RUNTIME.as_pointer())
    null = ir.Constant(PTR, None)
    entry = b.block
    with b.if_then(b.icmp_unsigned("!=", rt, ir.Constant(rt.type, None))):
        loaded = b.load(b.gep(rt, [zero, ir.Constant(I32, RT_COLLECTIVE_HOOKS)]))
        got = b.block
    hooks_raw = b.phi(PTR)
    hooks_raw.add_incoming(null, entry)
    hooks_raw.add_incoming(loaded, got)
    with b.if_else(b.icmp_unsigned("!=", hooks_raw, null)) as (have, missing):
        with have:
            hooks = b.bitcast(hooks_raw, HOOKS.as_pointer())
            fn = b.load(b.gep(hooks, [zero, ir.Constant(I32, which)]))
            ctx = b.load(b.gep(rt, [zero, ir.Constant(I32, RT_COLLECTIVE_CTX)]))
            rc = call(ctx, fn)
            with b.if_then(b.icmp_signed("!=", rc, zero)):
                b.store(ir.Constant(I32, COLLECTIVE_FAILED), gl.ctx_field(CTX_STATUS))
        with missing:
            b.store(ir.Constant(I32, NO_COLLECTIVE_HOOKS), gl.ctx_field(CTX_STATUS))


def _call(gl: "GraphLowering", which: int, op: Op, src: ir.Value, dst: ir.Value, count: int | None = None
          ) -> None:
    x = op.inputs[0]
    stride, size = op.attrs["group"]
    args = [src, dst, c64(x.spec.nelms if count is None else count), ir.Constant(I32, DTYPE_CODES[x.dtype]),
            ir.Constant(I32, REDUCE_OPS.index(op.attrs.get("op", "add"))), ir.Constant(I32, stride),
            ir.Constant(I32, size)]
    _hook(gl, which, lambda ctx, fn: gl.b.call(fn, [ctx, *args]))


@special("ReplicatedAllReduce", "ReplicatedAllReduceInplace")
def _all_reduce(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    _call(gl, ALL_REDUCE, op, gl.p(op.inputs[0]), gl.p(op.outputs[0]))


@special("ReplicatedReduceScatter")
def _reduce_scatter(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    _call(gl, REDUCE_SCATTER, op, gl.p(op.inputs[0]), gl.p(op.outputs[0]))


@special("ReplicatedAllGather")
def _all_gather(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x, y = op.inputs[0], op.outputs[0]
    size = op.attrs["group"][1]
    mode, axis = op.attrs["mode"], op.attrs["axis"] % max(len(x.shape), 1)
    # members end to end is the result (for meta_shape: when the shards carry no padding)
    if mode == "new_axis" or (mode == "concat" and axis == 0) or (mode == "meta_shape" and
                                                                  size * x.spec.nelms == y.spec.nelms):
        _call(gl, ALL_GATHER, op, gl.p(x), gl.p(y))
        return
    b = gl.b
    scratch = gl.slot(size * x.spec.nbytes)
    _call(gl, ALL_GATHER, op, gl.p(x), scratch)
    if mode == "meta_shape":  # the shards' padding is dropped
        m.copy(b, gl.p(y), scratch, y.spec.nbytes)
        return
    # concat along axis > 0: out[o, m, :] = member m's x[o, :] with x viewed as (outer, inner)
    outer = math.prod(x.shape[:axis])
    inner = x.spec.nbytes // max(outer, 1)
    with for_range(b, outer, "o") as o:
        with for_range(b, size, "mb") as mb:
            src = b.gep(scratch, [b.add(b.mul(mb, c64(x.spec.nbytes)), b.mul(o, c64(inner)))])
            dst = b.gep(gl.p(y), [b.mul(b.add(b.mul(o, c64(size)), mb), c64(inner))])
            m.copy(b, dst, src, inner)


def _member(gl: "GraphLowering", op: Op) -> ir.Value:
    """This replica's position in its group: (replica // stride) % size, as an i64 (0 without hooks,
    which stops the run)."""
    stride, size = op.attrs["group"]
    b = gl.b
    index = b.alloca(I32)
    b.store(ir.Constant(I32, 0), index)

    def call(ctx: ir.Value, fn: ir.Value) -> ir.Value:
        b.store(b.call(b.bitcast(fn, INDEX.as_pointer()), [ctx]), index)
        return ir.Constant(I32, 0)

    _hook(gl, REPLICA_INDEX, call)
    r = b.sext(b.load(index), I64)
    return b.srem(b.sdiv(r, c64(stride)), c64(size))


@special("ReplicaShardedSlice")
def _sharded_slice(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x, y = op.inputs[0], op.outputs[0]
    b = gl.b
    size = op.attrs["group"][1]
    n, shard, item = x.spec.nelms, shard_size(x.spec, size), x.dtype.itemsize
    m.zero(b, gl.p(y), y.spec.nbytes)  # the tail shard's padding
    start = b.mul(_member(gl, op), c64(shard))
    left = b.sub(c64(n), start)
    valid = b.select(b.icmp_signed("<", left, c64(shard)), left, c64(shard))
    valid = b.select(b.icmp_signed("<", valid, c64(0)), c64(0), valid)
    m.copy(b, gl.p(y), b.gep(gl.p(x), [b.mul(start, c64(item))]), b.mul(valid, c64(item)))


@special("ReplicatedSlice")
def _replicated_slice(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x, y = op.inputs[0], op.outputs[0]
    b = gl.b
    size = op.attrs["group"][1]
    axis = op.attrs["axis"] % len(x.shape)
    outer = math.prod(x.shape[:axis])
    part = y.spec.nbytes // max(outer, 1)  # this replica's bytes per outer index
    member = _member(gl, op)
    with for_range(b, outer, "o") as o:
        src = b.gep(gl.p(x), [b.mul(b.add(b.mul(o, c64(size)), member), c64(part))])
        m.copy(b, b.gep(gl.p(y), [b.mul(o, c64(part))]), src, part)


# ------------------------------------------------------------------ bucketing small all-reduces
BUCKET_BYTES = 64 * 1024  # in-place all-reduces of smaller tensors share one hook call


def all_reduce_run(ops: list[Op], k: int) -> int:
    """How many ops from ops[k] on are in-place all-reduces of distinct storages: nothing between them
    reads what they write, so they may be issued in any order (and packed together)."""
    seen: set[int] = set()
    n = 0
    while k + n < len(ops) and ops[k + n].kind == "ReplicatedAllReduceInplace":
        s = ops[k + n].inputs[0].storage
        if s in seen:
            break
        seen.add(s)
        n += 1
    return n


def emit_all_reduce_run(m: "ModuleLowering", gl: "GraphLowering", ops: list[Op]) -> None:
    """all_reduce_(a); all_reduce_(b); ... -> one hook call per (op, group, dtype) over the small tensors
    packed end to end in a scratch buffer (copied in and out), and one in-place call per large tensor.
    Every collective here is elementwise across replicas, so packing does not change any result."""
    buckets: dict[tuple, list[Op]] = {}
    for op in ops:
        x = op.inputs[0]
        if x.spec.nbytes >= BUCKET_BYTES:
            _all_reduce(m, gl, op)
        else:
            buckets.setdefault((op.attrs["op"], op.attrs["group"], x.dtype), []).append(op)
    b = gl.b
    for members in buckets.values():
        if len(members) == 1:
            _all_reduce(m, gl, members[0])
            continue
        sizes = [op.inputs[0].spec.nbytes for op in members]
        scratch = gl.slot(sum(sizes))
        offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        for op, off, n in zip(members, offsets, sizes):
            m.copy(b, b.gep(scratch, [c64(off)]), gl.p(op.inputs[0]), n)
        count = sum(op.inputs[0].spec.nelms for op in members)
        _call(gl, ALL_REDUCE, members[0], scratch, scratch, count)
        for op, off, n in zip(members, offsets, sizes):
            m.copy(b, gl.p(op.outputs[0]), b.gep(scratch, [c64(off)]), n)
