"""Reductions (ReduceSum/Mean/Max/Min/SumSquare/L1/L2/LogSum/LogSumExp/Prod, LambSquare) and Softmax.

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
from .parallel import block_of, parallel, share
from .rules import Ctx, lower_node
from .special import kernel, load, special, store, typed
from .thresholds import MAX_PARTIALS, PARALLEL_MIN_ELEMENTS
from .types import F32, PTR, compute_type, const, round_to

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering


def acc_type(dt: DType) -> DType:
    return DType.float64 if dt is DType.float64 else DType.float32 if dt.is_float else dt


# kinds that fold by addition (l1 adds |x|, l2 and sumsq add x*x; l2, logsum and mean finish the sum)
_SUMS = ("sum", "sumsq", "mean", "l1", "l2", "logsum")
_FINISH = {"l2": Prim.sqrt, "logsum": Prim.log}


def _identity(kind: str, dt: DType) -> float | int:
    if kind in _SUMS:
        return 0
    if kind == "prod":
        return 1
    if dt.is_float:
        return float("-inf") if kind == "max" else float("inf")
    if dt is DType.bool:
        return 0 if kind == "max" else 1
    info = np.iinfo(dt.numpy)
    return int(info.min) if kind == "max" else int(info.max)


def _reduction(m: "ModuleLowering", gl: "GraphLowering", op: Op, kind: str, axes: tuple[int, ...]) -> None:
    """y[o] = fold(x[i] for every i that maps to o), accumulating into y (or a float32 scratch row for
    narrow outputs). Large reductions run in parallel over the outermost dimension of the iteration
    space: when it is kept, each block of it owns its outputs; when it is reduced, blocks of it fold
    into their own partial rows, combined in block order afterwards. Block bounds depend only on the
    shape, so results do not depend on the thread count."""
    x, y = op.inputs[0], op.outputs[0]
    r = _Reduction(m, op, kind, axes)
    tmp = None if r.direct else gl.slot(r.n_out * r.adt.itemsize)
    acc = tmp if tmp is not None else gl.p(y)
    space = r.space
    d0 = space.dims[0] if space.dims else 1
    if x.spec.nelms < PARALLEL_MIN_ELEMENTS or d0 < 2:
        fn, b = kernel(m, 3)
        r.init(b, fn.args[1], c64(0), c64(r.n_out))
        r.accumulate(b, fn.args[0], fn.args[1], None, None)
        r.finish(b, fn.args[1], r.out(fn.args), c64(0), c64(r.n_out))
        b.ret_void()
        gl.b.call(fn, [gl.p(x), acc, r.out_arg(gl)])
        return
    inner = x.spec.nelms // d0
    s0 = space.strides[1][0]
    if s0:  # outermost dim kept: block [lo, hi) of it owns outputs [lo * s0, hi * s0)
        blk = block_of(d0, inner)
        nblocks = -(-d0 // blk)

        def rows(b: ir.IRBuilder, cap: list[ir.Value], tid: ir.Value, nt: ir.Value) -> None:
            lo, hi = share(b, nblocks, tid, nt)
            lo, hi = b.mul(lo, c64(blk)), _min(b, b.mul(hi, c64(blk)), c64(d0))
            with b.if_then(b.icmp_signed("<", lo, hi)):
                o_lo, o_hi = b.mul(lo, c64(s0)), b.mul(hi, c64(s0))
                r.init(b, cap[1], o_lo, o_hi)
                r.accumulate(b, cap[0], cap[1], lo, hi)
                r.finish(b, cap[1], r.out(cap), o_lo, o_hi)

        parallel(m.module, gl.b, gl.threads(), [gl.p(x), acc, r.out_arg(gl)], rows, m.kernel_name() + ".rows")
        return
    # outermost dim reduced: at most MAX_PARTIALS blocks, each folding into its own partial row
    blk = max(block_of(d0, inner), -(-d0 // MAX_PARTIALS))
    if inner == 1:
        blk = -(-blk // 64) * 64
    nblocks = -(-d0 // blk)
    row_bytes = r.n_out * r.adt.itemsize
    partials = gl.slot(nblocks * row_bytes)

    def blocks(b: ir.IRBuilder, cap: list[ir.Value], tid: ir.Value, nt: ir.Value) -> None:
        lo_b, hi_b = share(b, nblocks, tid, nt)
        with for_range(b, hi_b, "blk", start=lo_b) as k:
            part = b.gep(cap[1], [b.mul(k, c64(row_bytes))])
            lo = b.mul(k, c64(blk))
            r.init(b, part, c64(0), c64(r.n_out))
            r.accumulate(b, cap[0], part, lo, _min(b, b.add(lo, c64(blk)), c64(d0)))

    parallel(m.module, gl.b, gl.threads(), [gl.p(x), partials], blocks, m.kernel_name() + ".blocks")
    fn, b = kernel(m, 3)
    r.combine(b, fn.args[0], nblocks, row_bytes, fn.args[1])
    r.finish(b, fn.args[1], r.out(fn.args), c64(0), c64(r.n_out))
    b.ret_void()
    gl.b.call(fn, [partials, acc, r.out_arg(gl)])


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


class _Reduction:
    """The pieces of one reduction, each emitted into whatever function needs it: initialise
    accumulators, fold a range of the outermost dimension, combine partial rows, finish (mean, cast)."""

    def __init__(self, m: "ModuleLowering", op: Op, kind: str, axes: tuple[int, ...]) -> None:
        x, y = op.inputs[0], op.outputs[0]
        self.m, self.x, self.y, self.kind = m, x, y, kind
        adt = acc_type(x.dtype)
        if kind == "mean" and not adt.is_float:  # numpy averages integers exactly (in float64), never wrapping
            adt = DType.int64 if adt.is_signed and adt is not DType.bool else DType.uint64
        self.adt = adt
        self.n_out = max(y.spec.nelms, 1)
        self.direct = y.dtype == adt
        out_strides = tuple(0 if d in axes else s for d, s in enumerate(
            broadcast_strides(tuple(1 if d in axes else n for d, n in enumerate(x.shape)), x.shape)))
        self.space = Space.make(x.shape, [broadcast_strides(x.shape, x.shape), out_strides])
        self.count = x.spec.nelms // self.n_out if self.n_out else 1

    def out(self, args: list[ir.Value]) -> ir.Value:
        """The output pointer among (x, acc, y): acc itself when y is the accumulator (the third,
        noalias, parameter is then NULL and never touched)."""
        return args[1] if self.direct else args[2]

    def out_arg(self, gl: "GraphLowering") -> ir.Value:
        return ir.Constant(PTR, None) if self.direct else gl.p(self.y)

    def init(self, b: ir.IRBuilder, acc: ir.Value, lo: ir.Value, hi: ir.Value) -> None:
        ACC = typed(b, acc, self.adt)
        with for_range(b, hi, "o0", start=lo) as o:
            b.store(const(self.adt, _identity(self.kind, self.adt)), b.gep(ACC, [o]))

    def _fold(self, b: ir.IRBuilder, cur: ir.Value, xv: ir.Value) -> ir.Value:
        adt = self.adt
        if self.kind in _SUMS:
            return b.fadd(cur, xv, flags=("reassoc",)) if adt.is_float else b.add(cur, xv)
        if self.kind == "prod":  # in order: numpy's prod does not reassociate either
            return b.fmul(cur, xv) if adt.is_float else b.mul(cur, xv)
        return lower_node(Ctx(b, self.m.module), Node(Prim.max if self.kind == "max" else Prim.min, (0, 1), adt),
                          [adt, adt], [cur, xv])

    def accumulate(self, b: ir.IRBuilder, xp: ir.Value, acc: ir.Value, lo: ir.Value | None, hi: ir.Value | None
                   ) -> None:
        """Fold x over the outermost space index range [lo, hi) (all when None) into acc."""
        x, adt = self.x, self.adt
        if not x.spec.nelms:
            return
        X, ACC = typed(b, xp, x.dtype), typed(b, acc, adt)
        ctx = Ctx(b, self.m.module)
        with nest(b, self.space, lo, hi) as (i, o):
            xv = load(b, X, i, x.dtype)
            if x.dtype != adt:
                xv = lower_node(ctx, Node(Prim.cast, (0,), adt), [x.dtype], [xv])
            if self.kind in ("sumsq", "l2"):
                xv = b.fmul(xv, xv) if adt.is_float else b.mul(xv, xv)
            elif self.kind == "l1":
                xv = lower_node(ctx, Node(Prim.abs, (0,), adt), [adt], [xv])
            p = b.gep(ACC, [o])
            b.store(self._fold(b, b.load(p), xv), p)

    def combine(self, b: ir.IRBuilder, partials: ir.Value, nblocks: int, row_bytes: int, acc: ir.Value) -> None:
        """acc[o] = partial row 0 [o], then each next row folded in, in row order (no reassociation)."""
        ACC = typed(b, acc, self.adt)
        rows = [typed(b, b.gep(partials, [c64(k * row_bytes)]), self.adt) for k in range(nblocks)]
        with for_range(b, self.n_out, "oc") as o:
            v = b.load(b.gep(rows[0], [o]))
            for row in rows[1:]:
                w = b.load(b.gep(row, [o]))
                v = self._fold(b, v, w)
            b.store(v, b.gep(ACC, [o]))

    def finish(self, b: ir.IRBuilder, acc: ir.Value, yp: ir.Value, lo: ir.Value, hi: ir.Value) -> None:
        """Outputs [lo, hi): the mean's division and the cast to a narrower output type."""
        kind, adt, y = self.kind, self.adt, self.y
        if kind not in ("mean", *_FINISH) and self.direct:
            return
        at = compute_type(adt)
        ACC, Y = typed(b, acc, adt), typed(b, yp, y.dtype)
        ctx = Ctx(b, self.m.module)
        with for_range(b, hi, "o1", start=lo) as o:
            v = b.load(b.gep(ACC, [o]))
            if kind == "mean":  # numpy: float mean in the accumulator type; integer mean truncated
                if adt.is_float:
                    v = b.fdiv(v, ir.Constant(at, float(self.count)))
                elif self.count:
                    v = (b.sdiv if adt.is_signed else b.udiv)(v, ir.Constant(at, self.count))
            if kind in _FINISH:
                v = lower_node(ctx, Node(_FINISH[kind], (0,), adt), [adt], [v])
            if not self.direct:
                v = lower_node(ctx, Node(Prim.cast, (0,), y.dtype), [adt], [v])
                v = round_to(b, v, y.dtype)
            store(b, v, Y, o, y.dtype)


_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceSumSquare": "sumsq", "ReduceL1": "l1", "ReduceL2": "l2", "ReduceLogSum": "logsum",
           "ReduceProd": "prod"}


@special(*_REDUCE)
def _reduce(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x = op.inputs[0]
    _reduction(m, gl, op, _REDUCE[op.kind], norm_axes(op.kind, len(x.shape), op.attrs.get("axes")))


@special("ReduceLogSumExp")
def _logsumexp(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """y = log(sum(exp(x - m))) + m, m = the max over the axes (0 where not finite), in two serial passes
    over x: the max folds into one scratch row, the exponentials' sum into another."""
    x, y = op.inputs[0], op.outputs[0]
    r = _Reduction(m, op, "max", norm_axes(op.kind, len(x.shape), op.attrs.get("axes")))
    adt, n = r.adt, r.n_out
    fn, b = kernel(m, 3)
    mx, sm = fn.args[1], b.gep(fn.args[1], [c64(n * adt.itemsize)])
    r.init(b, mx, c64(0), c64(n))
    r.accumulate(b, fn.args[0], mx, None, None)
    ctx = Ctx(b, m.module)
    MX, SM, X, Y = typed(b, mx, adt), typed(b, sm, adt), typed(b, fn.args[0], x.dtype), typed(b, fn.args[2], y.dtype)
    zero = ir.Constant(compute_type(adt), 0.0)
    with for_range(b, n, "o0") as o:
        p = b.gep(MX, [o])
        v = b.load(p)
        finite = b.fcmp_ordered("<", b.call(ctx.intrinsic("llvm.fabs", v.type), [v]), ir.Constant(v.type, float("inf")))
        b.store(b.select(finite, v, zero), p)
        b.store(zero, b.gep(SM, [o]))
    if x.spec.nelms:
        with nest(b, r.space) as (i, o):
            xv = load(b, X, i, x.dtype)
            if x.dtype != adt:
                xv = lower_node(ctx, Node(Prim.cast, (0,), adt), [x.dtype], [xv])
            e = lower_node(ctx, Node(Prim.exp, (0,), adt), [adt], [b.fsub(xv, b.load(b.gep(MX, [o])))])
            p = b.gep(SM, [o])
            b.store(b.fadd(b.load(p), e, flags=("reassoc",)), p)
    with for_range(b, n, "o1") as o:
        v = b.fadd(lower_node(ctx, Node(Prim.log, (0,), adt), [adt], [b.load(b.gep(SM, [o]))]),
                   b.load(b.gep(MX, [o])))
        if y.dtype != adt:
            v = round_to(b, lower_node(ctx, Node(Prim.cast, (0,), y.dtype), [adt], [v]), y.dtype)
        store(b, v, Y, o, y.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.slot(2 * n * adt.itemsize), gl.p(y)])


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
