"""Reductions (ReduceSum/Mean/Max/Min/SumSquare, LambSquare) and Softmax.

Floats accumulate in float32 (float64 for float64), then round once to the output dtype, as the
reference does for float16; integer sums accumulate in their own type (wrapping, which gives numpy's
result after its cast back), integer means in 64 bits, truncated like numpy's float mean cast back.
"""
from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

import numpy as np
from llvmlite import ir

from compiler.ir import DType, Op
from compiler.ops.nn import norm_axes
from compiler.ops.primitives import Node, Prim

from .loops import Space, broadcast_strides, c64, for_range, nest
from .mathf import exp_f32
from .rules import Ctx, lower_node
from .special import kernel, load, special, store, typed
from .types import F32, PTR, compute_type, const, round_to

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering


def acc_type(dt: DType) -> DType:
    return DType.float64 if dt is DType.float64 else DType.float32 if dt.is_float else dt


def _identity(kind: str, dt: DType) -> float | int:
    if kind in ("sum", "sumsq", "mean"):
        return 0
    if dt.is_float:
        return float("-inf") if kind == "max" else float("inf")
    if dt is DType.bool:
        return 0 if kind == "max" else 1
    info = np.iinfo(dt.numpy)
    return int(info.min) if kind == "max" else int(info.max)


def _reduction(m: "ModuleLowering", gl: "GraphLowering", op: Op, kind: str, axes: tuple[int, ...]) -> None:
    """y[o] = fold(x[i] for every i that maps to o): one pass over x in memory order, accumulating
    into y (or a float32 scratch row for narrow outputs)."""
    x, y = op.inputs[0], op.outputs[0]
    adt = acc_type(x.dtype)
    if kind == "mean" and not adt.is_float:  # numpy averages integers exactly (in float64), never wrapping
        adt = DType.int64 if adt.is_signed and adt is not DType.bool else DType.uint64
    at = compute_type(adt)
    n_out = max(y.spec.nelms, 1)
    direct = y.dtype == adt
    tmp = None if direct else gl.slot(n_out * adt.itemsize)
    fn, b = kernel(m, 3)
    X, Y = typed(b, fn.args[0], x.dtype), typed(b, fn.args[1], y.dtype)
    ACC = Y if direct else typed(b, fn.args[2], adt)
    ctx = Ctx(b, m.module)
    with for_range(b, n_out, "o0") as o:
        b.store(const(adt, _identity(kind, adt)), b.gep(ACC, [o]))
    out_strides = tuple(0 if d in axes else s for d, s in enumerate(
        broadcast_strides(tuple(1 if d in axes else n for d, n in enumerate(x.shape)), x.shape)))
    space = Space.make(x.shape, [broadcast_strides(x.shape, x.shape), out_strides])
    if x.spec.nelms:
        with nest(b, space) as (i, o):
            xv = load(b, X, i, x.dtype)
            if x.dtype != adt:
                xv = lower_node(ctx, Node(Prim.cast, (0,), adt), [x.dtype], [xv])
            p = b.gep(ACC, [o])
            cur = b.load(p)
            if kind in ("sum", "mean", "sumsq"):
                if kind == "sumsq":
                    xv = b.fmul(xv, xv) if adt.is_float else b.mul(xv, xv)
                r = b.fadd(cur, xv, flags=("reassoc",)) if adt.is_float else b.add(cur, xv)
            else:
                r = lower_node(ctx, Node(Prim.max if kind == "max" else Prim.min, (0, 1), adt), [adt, adt], [cur, xv])
            b.store(r, p)
    count = x.spec.nelms // n_out if n_out else 1
    if kind == "mean" or not direct:
        with for_range(b, n_out, "o1") as o:
            v = b.load(b.gep(ACC, [o]))
            if kind == "mean":  # numpy: float mean in the accumulator type; integer mean truncated
                if adt.is_float:
                    v = b.fdiv(v, ir.Constant(at, float(count)))
                elif count:
                    v = (b.sdiv if adt.is_signed else b.udiv)(v, ir.Constant(at, count))
            if not direct:
                v = lower_node(ctx, Node(Prim.cast, (0,), y.dtype), [adt], [v])
                v = round_to(b, v, y.dtype)
            store(b, v, Y, o, y.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.p(y), tmp if tmp is not None else ir.Constant(PTR, None)])


_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceSumSquare": "sumsq"}


@special(*_REDUCE)
def _reduce(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x = op.inputs[0]
    _reduction(m, gl, op, _REDUCE[op.kind], norm_axes(op.kind, len(x.shape), op.attrs.get("axes")))


@special("LambSquare")
def _lamb_square(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    _reduction(m, gl, op, "sumsq", tuple(range(len(op.inputs[0].shape))))


def split_axis(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(elements before axis, axis length, elements after axis)."""
    axis %= max(len(shape), 1)
    return prod(shape[:axis]), shape[axis] if shape else 1, prod(shape[axis + 1:])


@special("Softmax")
def _softmax(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """y = exp(x - max) / sum(exp(x - max)) per row: max, then exp and sum (exp kept in y when y holds
    the compute type), then the division."""
    x, y = op.inputs[0], op.outputs[0]
    pre, n, post = split_axis(x.shape, op.attrs.get("axis", -1))
    cdt = acc_type(x.dtype)
    ct = compute_type(cdt)
    fn, b = kernel(m, 2)
    X, Y = typed(b, fn.args[0], x.dtype), typed(b, fn.args[1], y.dtype)
    ctx = Ctx(b, m.module)
    keep = y.dtype == cdt

    def exp(v: ir.Value) -> ir.Value:
        return exp_f32(b, m.module, v) if ct == F32 else b.call(ctx.libm("exp", ct), [v])

    mx_slot, s_slot = b.alloca(ct), b.alloca(ct)
    with for_range(b, pre, "p") as p:
        with for_range(b, post, "q") as q:
            base = b.add(b.mul(p, c64(n * post)), q)

            def at(i: ir.Value) -> ir.Value:
                return b.add(base, b.mul(i, c64(post)))

            b.store(ir.Constant(ct, float("-inf")), mx_slot)
            with for_range(b, n, "i0") as i:
                v = load(b, X, at(i), x.dtype)
                b.store(lower_node(ctx, Node(Prim.max, (0, 1), cdt), [cdt, cdt], [b.load(mx_slot), v]), mx_slot)
            b.store(ir.Constant(ct, 0.0), s_slot)
            mx = b.load(mx_slot)
            with for_range(b, n, "i1") as i:
                e = exp(b.fsub(load(b, X, at(i), x.dtype), mx))
                if keep:
                    store(b, e, Y, at(i), y.dtype)
                b.store(b.fadd(b.load(s_slot), e, flags=("reassoc",)), s_slot)
            s = b.load(s_slot)
            with for_range(b, n, "i2") as i:
                e = load(b, Y, at(i), y.dtype) if keep else exp(b.fsub(load(b, X, at(i), x.dtype), mx))
                store(b, round_to(b, b.fdiv(e, s), y.dtype), Y, at(i), y.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.p(y)])
