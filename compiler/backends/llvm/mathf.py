"""Inline float32 math (exp, tanh) written as plain IR so that loops calling it still vectorise.

libm's expf/tanhf are opaque calls that stop the loop vectoriser; these are within 1.0 (exp) and 1.4 (tanh)
ulp (tests/backends/llvm/test_transcendental_ulp.py), and keep
IEEE behaviour at the edges (NaN passes through, overflow gives inf, gradual underflow to 0).
The polynomials' Horner steps are fused multiply-adds where the target ISA has them (isa.py), a
multiply and an add elsewhere; both variants are held to the same bounds.
"""
from __future__ import annotations

from llvmlite import ir

from .isa import of as isa_of
from .types import F32, I32


def _f(v: float) -> ir.Constant:
    return ir.Constant(F32, v)


def _horner(b: ir.IRBuilder, module: ir.Module, p: ir.Value, x: ir.Value, coef: float) -> ir.Value:
    """p * x + coef: one rounding with the ISA's FMA (fewer instructions, no less accurate), two without."""
    if isa_of(module).fma:
        fma = module.declare_intrinsic("llvm.fma", [F32], ir.FunctionType(F32, [F32, F32, F32]))
        return b.call(fma, [p, x, _f(coef)])
    return b.fadd(b.fmul(p, x), _f(coef))


def exp_f32(b: ir.IRBuilder, module: ir.Module, x: ir.Value) -> ir.Value:
    """expf: Cody-Waite reduction x = n ln2 + r, a Cephes polynomial for e^r, then 2^n applied in two
    steps (2^(n/2) twice) so that results near the overflow and underflow limits stay exact."""
    floor = module.declare_intrinsic("llvm.floor", [F32])
    xc = b.select(b.fcmp_ordered(">", x, _f(88.8)), _f(88.8), x)
    xc = b.select(b.fcmp_ordered("<", xc, _f(-104.0)), _f(-104.0), xc)
    n = b.call(floor, [b.fadd(b.fmul(xc, _f(1.44269504088896341)), _f(0.5))])
    r = b.fsub(b.fsub(xc, b.fmul(n, _f(0.693359375))), b.fmul(n, _f(-2.12194440e-4)))
    p = _f(1.9875691500e-4)
    for coef in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        p = _horner(b, module, p, r, coef)
    y = b.fadd(b.fadd(b.fmul(p, b.fmul(r, r)), r), _f(1.0))
    ni = b.fptosi(n, I32)
    n1 = b.ashr(ni, ir.Constant(I32, 1))
    n2 = b.sub(ni, n1)

    def pow2(k: ir.Value) -> ir.Value:
        return b.bitcast(b.shl(b.add(k, ir.Constant(I32, 127)), ir.Constant(I32, 23)), F32)

    out = b.fmul(b.fmul(y, pow2(n1)), pow2(n2))
    return b.select(b.fcmp_unordered("uno", x, x), x, out)


def tanh_f32(b: ir.IRBuilder, module: ir.Module, x: ir.Value) -> ir.Value:
    """tanhf: an odd polynomial for |x| < 0.625 (Cephes), 1 - 2/(exp(2|x|) + 1) with x's sign beyond."""
    fabs = module.declare_intrinsic("llvm.fabs", [F32])
    copysign = module.declare_intrinsic("llvm.copysign", [F32], ir.FunctionType(F32, [F32, F32]))
    ax = b.call(fabs, [x])
    z = b.fmul(x, x)
    p = _f(-5.70498872745e-3)
    for coef in (2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1):
        p = _horner(b, module, p, z, coef)
    small = b.fadd(b.fmul(b.fmul(p, z), x), x)
    e = exp_f32(b, module, b.fmul(ax, _f(2.0)))
    big = b.call(copysign, [b.fsub(_f(1.0), b.fdiv(_f(2.0), b.fadd(e, _f(1.0)))), x])
    return b.select(b.fcmp_ordered("<", ax, _f(0.625)), small, big)
