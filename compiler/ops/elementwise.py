"""Elementwise math: unary and binary ops, cast, where, comparisons. Binary ops broadcast numpy-style."""
from __future__ import annotations

import math
from typing import Any, Callable

from compiler.ir import DType, TensorSpec

from .primitives import COMPARE, Expr, Prim
from .registry import OpDef, OpError, register
from .rules import broadcast_shapes, float_only, same_dtype

Dec = Callable[[Expr, int], int]


def _unary(kind: str, formula: str, body: Dec, floats: bool = True) -> None:
    def infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
        if floats:
            float_only(kind, s, "x")
        return [s["x"]]

    register(OpDef(kind=kind, formula=formula, infer=infer, elementwise=True,
                   decompose=lambda e, n, s, a: [body(e, n["x"])]))


def _gelu_tanh(e: Expr, x: int) -> int:
    c = e.c(math.sqrt(2.0 / math.pi), x)
    inner = e.mul(c, e.add(x, e.mul(e.c(0.044715, x), e.mul(x, e.mul(x, x)))))
    return e.mul(e.mul(e.c(0.5, x), x), e.add(e.c(1.0, x), e.tanh(inner)))


def _gelu_erf(e: Expr, x: int) -> int:
    return e.mul(e.mul(e.c(0.5, x), x), e.add(e.c(1.0, x), e.erf(e.mul(x, e.c(1.0 / math.sqrt(2.0), x)))))


_unary("Neg", "out = -x", lambda e, x: e.neg(x), floats=False)
_unary("Sqrt", "out = sqrt(x)", lambda e, x: e.sqrt(x))
_unary("Exp", "out = exp(x)", lambda e, x: e.exp(x))
_unary("Log", "out = log(x)", lambda e, x: e.log(x))
_unary("Tanh", "out = tanh(x)", lambda e, x: e.tanh(x))
_unary("Abs", "out = |x|", lambda e, x: e.abs(x), floats=False)
_unary("Sign", "out = sign(x)", lambda e, x: e.unary(Prim.sign, x), floats=False)
_unary("Floor", "out = floor(x)", lambda e, x: e.unary(Prim.floor, x))
_unary("Relu", "out = max(x, 0)", lambda e, x: e.max(x, e.c(0, x)))
_unary("Gelu", "out = 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))", _gelu_tanh)
_unary("GeluErf", "out = 0.5x(1 + erf(x/sqrt(2)))", _gelu_erf)
_unary("Sigmoid", "out = 1/(1+exp(-x))", lambda e, x: e.div(e.c(1.0, x), e.add(e.c(1.0, x), e.exp(e.neg(x)))))
_unary("Reciprocal", "out = 1/x", lambda e, x: e.div(e.c(1.0, x), x))
_unary("Square", "out = x*x", lambda e, x: e.mul(x, x), floats=False)
_unary("Identity", "out = x", lambda e, x: x, floats=False)


def _binary(kind: str, formula: str, body: Callable[[Expr, int, int], int], out_bool: bool = False) -> None:
    def infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
        dt = same_dtype(kind, s, "a", "b")
        shape = broadcast_shapes(kind, s["a"].shape, s["b"].shape)
        return [TensorSpec(shape, DType.bool if out_bool else dt)]

    register(OpDef(kind=kind, formula=formula, infer=infer, elementwise=True,
                   decompose=lambda e, n, s, a: [body(e, n["a"], n["b"])]))


_binary("Add", "out = a + b", lambda e, a, b: e.add(a, b))
_binary("Sub", "out = a - b", lambda e, a, b: e.sub(a, b))
_binary("Mul", "out = a * b", lambda e, a, b: e.mul(a, b))
_binary("Div", "out = a / b", lambda e, a, b: e.div(a, b))
_binary("Pow", "out = a ** b", lambda e, a, b: e.pow(a, b))
_binary("Max", "out = max(a, b)", lambda e, a, b: e.max(a, b))
_binary("Min", "out = min(a, b)", lambda e, a, b: e.min(a, b))
for _k, _p in (("Less", Prim.lt), ("LessOrEqual", Prim.le), ("Greater", Prim.gt),
               ("GreaterOrEqual", Prim.ge), ("Equal", Prim.eq), ("NotEqual", Prim.ne)):
    assert _p in COMPARE
    _binary(_k, f"out = a {_p.value} b", lambda e, a, b, p=_p: e.compare(p, a, b), out_bool=True)


def _infer_cast(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [TensorSpec(s["x"].shape, a["to"])]


register(OpDef(kind="Cast", formula="out = (to) x", infer=_infer_cast, elementwise=True,
               decompose=lambda e, n, s, a: [e.cast(n["x"], a["to"])]))


def _infer_where(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    if s["cond"].dtype != DType.bool:
        raise OpError(f"Where: condition must be bool, got {s['cond']}")
    dt = same_dtype("Where", s, "a", "b")
    return [TensorSpec(broadcast_shapes("Where", s["cond"].shape, s["a"].shape, s["b"].shape), dt)]


register(OpDef(kind="Where", formula="out = cond ? a : b", infer=_infer_where, elementwise=True,
               decompose=lambda e, n, s, a: [e.select(n["cond"], n["a"], n["b"])]))


def _infer_clip(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [s["x"]]


register(OpDef(kind="Clip", formula="out = min(max(x, lo), hi)", infer=_infer_clip, elementwise=True,
               decompose=lambda e, n, s, a: [e.min(e.max(n["x"], e.c(a["min"], n["x"])), e.c(a["max"], n["x"]))]))


# ------------------------------------------------------------------ gradient ops
def _grad_op(kind: str, formula: str, body: Callable[[Expr, int, int], int], other: str = "x") -> None:
    def infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
        same_dtype(kind, s, "dy", other)
        return [TensorSpec(broadcast_shapes(kind, s["dy"].shape, s[other].shape), s["dy"].dtype)]

    register(OpDef(kind=kind, formula=formula, infer=infer, elementwise=True,
                   decompose=lambda e, n, s, a: [body(e, n["dy"], n[other])]))


def _gelu_grad(e: Expr, dy: int, x: int) -> int:
    c = e.c(math.sqrt(2.0 / math.pi), x)
    k = e.c(0.044715, x)
    x2 = e.mul(x, x)
    t = e.tanh(e.mul(c, e.add(x, e.mul(k, e.mul(x2, x)))))
    one, half = e.c(1.0, x), e.c(0.5, x)
    left = e.mul(half, e.add(one, t))
    du = e.mul(c, e.add(one, e.mul(e.c(3 * 0.044715, x), x2)))
    right = e.mul(e.mul(e.mul(half, x), e.sub(one, e.mul(t, t))), du)
    return e.mul(dy, e.add(left, right))


def _gelu_erf_grad(e: Expr, dy: int, x: int) -> int:
    cdf = e.mul(e.c(0.5, x), e.add(e.c(1.0, x), e.erf(e.mul(x, e.c(1.0 / math.sqrt(2.0), x)))))
    pdf = e.mul(e.c(1.0 / math.sqrt(2.0 * math.pi), x), e.exp(e.mul(e.c(-0.5, x), e.mul(x, x))))
    return e.mul(dy, e.add(cdf, e.mul(x, pdf)))


_grad_op("GeluGrad", "dx = dy * d/dx gelu_tanh(x)", _gelu_grad)
_grad_op("GeluErfGrad", "dx = dy * (Phi(x) + x*phi(x))", _gelu_erf_grad)
_grad_op("ReluGrad", "dx = x > 0 ? dy : 0", lambda e, dy, x: e.select(e.compare(Prim.gt, x, e.c(0, x)), dy, e.c(0, dy)))
_grad_op("TanhGrad", "dx = dy * (1 - y*y)", lambda e, dy, y: e.mul(dy, e.sub(e.c(1.0, y), e.mul(y, y))), "y")
_grad_op("SigmoidGrad", "dx = dy * y * (1 - y)", lambda e, dy, y: e.mul(dy, e.mul(y, e.sub(e.c(1.0, y), y))), "y")


def _infer_fma(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    dt = same_dtype("Fma", s, "a", "b", "c")
    return [TensorSpec(broadcast_shapes("Fma", s["a"].shape, s["b"].shape, s["c"].shape), dt)]


register(OpDef(kind="Fma", formula="out = a*b + c, rounded once", infer=_infer_fma, elementwise=True,
               decompose=lambda e, n, s, a: [e.fma(n["a"], n["b"], n["c"])]))
