"""Lowering rules: one function per scalar primitive, registered in one table.

A rule gets the builder, the node, the node's argument dtypes and the argument values (in
compute types) and returns the result in the node's compute type, unrounded; the kernel
emitter rounds float16/bfloat16 results afterwards.
"""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from compiler.ir import DType
from compiler.ops.primitives import Node, Prim

from ..rules import RuleTable
from .mathf import exp_f32, tanh_f32
from .types import F32, F64, compute_type, const, f16_to_f32, f64_to_f16_exact

Rule = Callable[["Ctx", Node, list[DType], list[ir.Value]], ir.Value]
RULES: RuleTable[Prim, Rule] = RuleTable("LLVM", "compiler/backends/llvm/rules.py")
RULES.walk(Prim.input, Prim.const)  # lower_node reads kernel inputs and constants itself


class Ctx:
    """What a rule may use: the builder and the module (for intrinsics and libm declarations)."""

    def __init__(self, b: ir.IRBuilder, module: ir.Module) -> None:
        self.b = b
        self.module = module

    def intrinsic(self, name: str, t: ir.Type, nargs: int = 1) -> ir.Function:
        return self.module.declare_intrinsic(name, [t])

    def libm(self, name: str, t: ir.Type, nargs: int = 1) -> ir.Function:
        fname = name + ("f" if t == F32 else "")
        fn = self.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(t, [t] * nargs), fname)
        return fn


rule = RULES.rule


def _isf(dt: DType) -> bool:
    return dt.is_float


@rule(Prim.add)
def _add(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    return c.b.fadd(a[0], a[1]) if _isf(n.dtype) else c.b.add(a[0], a[1])


@rule(Prim.sub)
def _sub(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    return c.b.fsub(a[0], a[1]) if _isf(n.dtype) else c.b.sub(a[0], a[1])


@rule(Prim.mul)
def _mul(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    return c.b.fmul(a[0], a[1]) if _isf(n.dtype) else c.b.mul(a[0], a[1])


@rule(Prim.div)
def _div(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    """Floats: IEEE division. Integers: truncating, x/0 -> 0 and MIN/-1 -> MIN (wrapping), as the
    reference; neither may reach the hardware divide, which traps on both."""
    b = c.b
    if _isf(n.dtype):
        return b.fdiv(a[0], a[1])
    t = compute_type(n.dtype)
    zero, one = ir.Constant(t, 0), ir.Constant(t, 1)
    is_zero = b.icmp_unsigned("==", a[1], zero)
    if not n.dtype.is_signed or n.dtype is DType.bool:
        return b.select(is_zero, zero, b.udiv(a[0], b.select(is_zero, one, a[1])))
    is_m1 = b.icmp_signed("==", a[1], ir.Constant(t, -1))
    q = b.sdiv(a[0], b.select(b.or_(is_zero, is_m1), one, a[1]))
    return b.select(is_zero, zero, b.select(is_m1, b.neg(a[0]), q))


@rule(Prim.neg)
def _neg(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    return c.b.fneg(a[0]) if _isf(n.dtype) else c.b.neg(a[0])


def _unary_math(name: str, intrinsic: bool) -> Rule:
    def f(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
        t = compute_type(n.dtype)
        fn = c.intrinsic(f"llvm.{name}", t) if intrinsic else c.libm(name, t)
        return c.b.call(fn, [a[0]])
    return f


RULES[Prim.sqrt] = _unary_math("sqrt", True)
RULES[Prim.floor] = _unary_math("floor", True)


def _fast_or_libm(name: str, fast) -> Rule:
    libm = _unary_math(name, False)

    def f(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
        if compute_type(n.dtype) == F32:
            return fast(c.b, c.module, a[0])
        return libm(c, n, dts, a)
    return f


RULES[Prim.exp] = _fast_or_libm("exp", exp_f32)
RULES[Prim.log] = _unary_math("log", False)
RULES[Prim.tanh] = _fast_or_libm("tanh", tanh_f32)
RULES[Prim.erf] = _unary_math("erf", False)
RULES[Prim.sin] = _unary_math("sin", False)  # libm, as log: correctly rounded enough to match numpy's to ~1 ulp
RULES[Prim.cos] = _unary_math("cos", False)


@rule(Prim.abs)
def _abs(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    if _isf(n.dtype):
        return c.b.call(c.intrinsic("llvm.fabs", compute_type(n.dtype)), [a[0]])
    if not n.dtype.is_signed:
        return a[0]
    neg = c.b.icmp_signed("<", a[0], ir.Constant(a[0].type, 0))
    return c.b.select(neg, c.b.neg(a[0]), a[0])


@rule(Prim.sign)
def _sign(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    b, x, t = c.b, a[0], compute_type(n.dtype)
    one, zero, mone = const(n.dtype, 1), const(n.dtype, 0), const(n.dtype, -1 if n.dtype.is_signed else 0)
    if _isf(n.dtype):
        r = b.select(b.fcmp_ordered(">", x, zero), one, b.select(b.fcmp_ordered("<", x, zero), mone, zero))
        return b.select(b.fcmp_unordered("uno", x, x), x, r)  # sign(NaN) = NaN
    del t
    if not n.dtype.is_signed:
        return b.select(b.icmp_unsigned("!=", x, zero), one, zero)
    return b.select(b.icmp_signed(">", x, zero), one, b.select(b.icmp_signed("<", x, zero), mone, zero))


def _minmax(is_max: bool) -> Rule:
    def f(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
        b, x, y = c.b, a[0], a[1]
        if _isf(n.dtype):  # numpy's maximum/minimum propagate NaN from either side
            r = b.select(b.fcmp_ordered(">" if is_max else "<", x, y), x, y)
            r = b.select(b.fcmp_unordered("uno", y, y), y, r)
            return b.select(b.fcmp_unordered("uno", x, x), x, r)
        if n.dtype is DType.bool:
            return b.or_(x, y) if is_max else b.and_(x, y)
        cmp = b.icmp_signed if n.dtype.is_signed else b.icmp_unsigned
        return b.select(cmp(">" if is_max else "<", x, y), x, y)
    return f


RULES[Prim.max] = _minmax(True)
RULES[Prim.min] = _minmax(False)


@rule(Prim.pow)
def _pow(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    if _isf(n.dtype):
        t = compute_type(n.dtype)
        return c.b.call(c.libm("pow", t, 2), [a[0], a[1]])
    raise NotImplementedError("integer pow is not supported by the LLVM backend; cast to float first")


@rule(Prim.fma)
def _fma(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    """a*b + c bit for bit as the reference computes it: the sum in float64, then rounded to the node's
    dtype (no hardware fma: its single rounding would differ from the reference in the last bit)."""
    b = c.b
    if not _isf(n.dtype):
        return b.add(b.mul(a[0], a[1]), a[2])
    if compute_type(n.dtype) == F64:
        return b.fadd(b.fmul(a[0], a[1]), a[2])
    x, y, z = (b.fpext(v, F64) for v in a)
    r = b.fadd(b.fmul(x, y), z)
    if n.dtype is DType.float16:
        return f16_to_f32(b, f64_to_f16_exact(b, r))
    return b.fptrunc(r, F32)  # bfloat16 is then rounded from float32, as ml_dtypes converts


@rule(Prim.select)
def _select(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    return c.b.select(a[0], a[1], a[2])


_FCMP = {Prim.lt: "<", Prim.le: "<=", Prim.gt: ">", Prim.ge: ">=", Prim.eq: "=="}


@rule(Prim.lt, Prim.le, Prim.gt, Prim.ge, Prim.eq, Prim.ne)
def _cmp(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    b, dt = c.b, dts[0]
    if dt.is_float:  # ordered compares are false on NaN, and != is true on NaN: numpy's rules
        return b.fcmp_unordered("!=", a[0], a[1]) if n.prim is Prim.ne else b.fcmp_ordered(_FCMP[n.prim], a[0], a[1])
    op = "!=" if n.prim is Prim.ne else _FCMP[n.prim]
    if dt is DType.bool or not dt.is_signed:
        return b.icmp_unsigned(op, a[0], a[1])
    return b.icmp_signed(op, a[0], a[1])


@rule(Prim.cast)
def _cast(c: Ctx, n: Node, dts: list[DType], a: list[ir.Value]) -> ir.Value:
    b, x, src, dst = c.b, a[0], dts[0], n.dtype
    st, dt_ = compute_type(src), compute_type(dst)
    if src.is_float and dst.is_float:
        if st == dt_:
            return x
        if dst is DType.float16:  # numpy rounds float64 to float16 once; via float32 would round twice
            return f16_to_f32(b, f64_to_f16_exact(b, x))
        return b.fpext(x, dt_) if dt_ == F64 else b.fptrunc(x, dt_)
    if src.is_float and dst is DType.bool:
        return b.fcmp_unordered("!=", x, ir.Constant(st, 0.0))
    if src.is_float:  # saturating conversion: no poison on NaN or out-of-range values
        name = "llvm.fptosi.sat" if dst.is_signed else "llvm.fptoui.sat"
        fn = c.module.declare_intrinsic(name, [dt_, st], ir.FunctionType(dt_, [st]))
        return b.call(fn, [x])
    if dst.is_float:
        if src is DType.bool or not src.is_signed:
            return b.uitofp(x, dt_)
        return b.sitofp(x, dt_)
    if dst is DType.bool:
        return b.icmp_unsigned("!=", x, ir.Constant(st, 0))
    sw, dw = st.width, dt_.width
    if sw == dw:
        return x
    if sw > dw:
        return b.trunc(x, dt_)
    return b.sext(x, dt_) if (src.is_signed and src is not DType.bool) else b.zext(x, dt_)


def lower_node(c: Ctx, n: Node, dts: list[DType], args: list[ir.Value]) -> ir.Value:
    try:
        r = RULES[n.prim]
    except KeyError:
        raise NotImplementedError(f"no LLVM lowering rule for primitive {n.prim.value!r}") from None
    return r(c, n, dts, args)


__all__ = ["RULES", "Ctx", "lower_node", "F32", "F64"]
