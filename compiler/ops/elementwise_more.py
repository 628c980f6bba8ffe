"""More elementwise ops PopXL offers, each a composition of the existing primitives:
ceil, fmod, logical and/or/not, isnan/isinf, swish, sin, cos."""
from __future__ import annotations

import math
from typing import Any

from compiler.ir import DType, Op, TensorSpec

from .primitives import Expr, Prim
from .registry import OpDef, OpError, register
from .rules import broadcast_shapes, float_only, same_dtype

S = dict[str, TensorSpec]


def _unary(kind: str, formula: str, body: Any, out_bool: bool = False, floats: bool = True,
           grad: Any = None, bool_in: bool = False) -> None:
    def infer(s: S, a: dict[str, Any]) -> list[TensorSpec]:
        if floats:
            float_only(kind, s, "x")
        if bool_in and s["x"].dtype != DType.bool:
            raise OpError(f"{kind}: x must be a bool tensor, got {s['x']}")
        return [TensorSpec(s["x"].shape, DType.bool) if out_bool else s["x"]]

    register(OpDef(kind=kind, formula=formula, infer=infer, elementwise=True, grad=grad,
                   decompose=lambda e, n, s, a: [body(e, n["x"])]))


def _binary(kind: str, formula: str, body: Any, bools: bool = False) -> None:
    def infer(s: S, a: dict[str, Any]) -> list[TensorSpec]:
        dt = same_dtype(kind, s, "a", "b")
        if bools and dt != DType.bool:
            raise OpError(f"{kind}: a and b must be bool tensors, got {s['a']} and {s['b']}")
        return [TensorSpec(broadcast_shapes(kind, s["a"].shape, s["b"].shape), dt)]

    register(OpDef(kind=kind, formula=formula, infer=infer, elementwise=True,
                   decompose=lambda e, n, s, a: [body(e, n["a"], n["b"])]))


def _trunc(e: Expr, q: int) -> int:
    return e.mul(e.unary(Prim.sign, q), e.unary(Prim.floor, e.abs(q)))


def _fmod(e: Expr, a: int, b: int) -> int:
    """a - b*trunc(a/b): the remainder with a's sign (C fmod); integer division already truncates."""
    q = e.div(a, b)
    return e.sub(a, e.mul(b, _trunc(e, q) if e.dtype(a).is_float else q))


def _swish(e: Expr, x: int) -> int:
    one = e.c(1.0, x)
    return e.mul(x, e.div(one, e.add(one, e.exp(e.neg(x)))))


def _swish_grad(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """d/dx x*s(x) = s + x*s*(1-s), s = sigmoid(x)."""
    x = c.fwd(op.inputs[0])
    s = c.one("Sigmoid", {"x": x})
    one = c.const(1.0, x.dtype)
    return [c.mul(dys[0], c.one("Add", {"a": s, "b": c.mul(x, c.mul(s, c.one("Sub", {"a": one, "b": s})))}))]


_unary("Ceil", "out = ceil(x) = -floor(-x)", lambda e, x: e.neg(e.unary(Prim.floor, e.neg(x))),
       grad=lambda c, op, dys: [None])
_unary("IsNaN", "out = x != x", lambda e, x: e.compare(Prim.ne, x, x), out_bool=True)
_unary("IsInf", "out = |x| == inf", lambda e, x: e.compare(Prim.eq, e.abs(x), e.c(math.inf, x)), out_bool=True)
_unary("Swish", "out = x * sigmoid(x)", _swish, grad=_swish_grad)
_unary("Not", "out = !x", lambda e, x: e.compare(Prim.eq, x, e.const(False, DType.bool)), floats=False,
       bool_in=True)
_binary("Fmod", "out = a - b*trunc(a/b) (sign of a)", _fmod)
_binary("And", "out = a && b", lambda e, a, b: e.select(a, b, e.const(False, DType.bool)), bools=True)
_binary("Or", "out = a || b", lambda e, a, b: e.select(a, e.const(True, DType.bool), b), bools=True)
_unary("Sin", "out = sin(x)", lambda e, x: e.sin(x),  # dx = dy * cos(x)
       grad=lambda c, op, dys: [c.mul(dys[0], c.one("Cos", {"x": c.fwd(op.inputs[0])}))])
_unary("Cos", "out = cos(x)", lambda e, x: e.cos(x),  # dx = -dy * sin(x)
       grad=lambda c, op, dys: [c.neg(c.mul(dys[0], c.one("Sin", {"x": c.fwd(op.inputs[0])})))])
