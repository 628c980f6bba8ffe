"""Elementwise math: unary and binary ops, cast, where, comparisons. Binary ops broadcast numpy-style."""
from __future__ import annotations

import math
from typing import Any, Callable

from compiler.ir import DType, Op, TensorSpec

from .primitives import COMPARE, Expr, Prim
from .registry import OpDef, OpError, register
from .rules import broadcast_shapes, float_only, same_dtype

Dec = Callable[[Expr, int], int]
# Gradient rules: (ctx, op, [dy]) -> [dx per input]; ctx is compiler.autodiff.GradContext (fwd, mul, ...).
Grad = Callable[[Any, Op, list[Any]], list[Any]]


def _unary(kind: str, formula: str, body: Dec, floats: bool = True, grad: Grad | None = None) -> None:
    def infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
        if floats:
            float_only(kind, s, "x")
        return [s["x"]]

    register(OpDef(kind=kind, formula=formula, infer=infer, elementwise=True, grad=grad,
                   decompose=lambda e, n, s, a: [body(e, n["x"])]))


def _x(c: Any, op: Op) -> Any:
    return c.fwd(op.inputs[0])


def _y(c: Any, op: Op) -> Any:
    return c.fwd(op.outputs[0])


def _via(kind: str, role: str, value: Callable[[Any, Op], Any]) -> Grad:
    """dx = kind(dy, role=value): the rules whose derivative is its own elementwise op (GeluGrad, ...)."""
    return lambda c, op, dys: [c.one(kind, {"dy": dys[0], role: value(c, op)})]


def _gelu_tanh(e: Expr, x: int) -> int:
    c = e.c(math.sqrt(2.0 / math.pi), x)
    inner = e.mul(c, e.add(x, e.mul(e.c(0.044715, x), e.mul(x, e.mul(x, x)))))
    return e.mul(e.mul(e.c(0.5, x), x), e.add(e.c(1.0, x), e.tanh(inner)))


def _gelu_erf(e: Expr, x: int) -> int:
    return e.mul(e.mul(e.c(0.5, x), x), e.add(e.c(1.0, x), e.erf(e.mul(x, e.c(1.0 / math.sqrt(2.0), x)))))


def _zero_grad(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    return [None]  # piecewise constant: no gradient flows back


_unary("Neg", "out = -x", lambda e, x: e.neg(x), floats=False, grad=lambda c, op, dys: [c.neg(dys[0])])
_unary("Sqrt", "out = sqrt(x)", lambda e, x: e.sqrt(x),  # dx = dy / (2y)
       grad=lambda c, op, dys: [c.div(dys[0], c.mul(_y(c, op), c.const(2.0, op.outputs[0].dtype)))])
_unary("Exp", "out = exp(x)", lambda e, x: e.exp(x), grad=lambda c, op, dys: [c.mul(dys[0], _y(c, op))])
_unary("Log", "out = log(x)", lambda e, x: e.log(x), grad=lambda c, op, dys: [c.div(dys[0], _x(c, op))])
_unary("Tanh", "out = tanh(x)", lambda e, x: e.tanh(x), grad=_via("TanhGrad", "y", _y))
_unary("Abs", "out = |x|", lambda e, x: e.abs(x), floats=False,
       grad=lambda c, op, dys: [c.mul(dys[0], c.one("Sign", {"x": _x(c, op)}))])
_unary("Sign", "out = sign(x)", lambda e, x: e.unary(Prim.sign, x), floats=False, grad=_zero_grad)
_unary("Floor", "out = floor(x)", lambda e, x: e.unary(Prim.floor, x), grad=_zero_grad)
_unary("Relu", "out = max(x, 0)", lambda e, x: e.max(x, e.c(0, x)), grad=_via("ReluGrad", "x", _x))
_unary("Gelu", "out = 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))", _gelu_tanh, grad=_via("GeluGrad", "x", _x))
_unary("GeluErf", "out = 0.5x(1 + erf(x/sqrt(2)))", _gelu_erf, grad=_via("GeluErfGrad", "x", _x))
_unary("Sigmoid", "out = 1/(1+exp(-x))", lambda e, x: e.div(e.c(1.0, x), e.add(e.c(1.0, x), e.exp(e.neg(x)))),
       grad=_via("SigmoidGrad", "y", _y))
_unary("Reciprocal", "out = 1/x", lambda e, x: e.div(e.c(1.0, x), x),  # dx = -dy * y^2
       grad=lambda c, op, dys: [c.neg(c.mul(dys[0], c.mul(_y(c, op), _y(c, op))))])
_unary("Square", "out = x*x", lambda e, x: e.mul(x, x), floats=False,  # dx = dy * 2x
       grad=lambda c, op, dys: [c.mul(dys[0], c.mul(_x(c, op), c.const(2.0, op.inputs[0].dtype)))])
# attr detach=True (ops.detach): the value passes, its gradient does not
_unary("Identity", "out = x", lambda e, x: x, floats=False,
       grad=lambda c, op, dys: [None if op.attrs.get("detach") else dys[0]])


def _binary(kind: str, formula: str, body: Callable[[Expr, int, int], int], out_bool: bool = False,
            grad: Grad | None = None) -> None:
    def infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
        dt = same_dtype(kind, s, "a", "b")
        shape = broadcast_shapes(kind, s["a"].shape, s["b"].shape)
        return [TensorSpec(shape, DType.bool if out_bool else dt)]

    register(OpDef(kind=kind, formula=formula, infer=infer, elementwise=True, grad=grad,
                   decompose=lambda e, n, s, a: [body(e, n["a"], n["b"])]))


def _per_input(*fns: Callable[[Any, Op, Any], Any]) -> Grad:
    """One gradient per input, each `fn(ctx, op, dy)` at the output's (broadcast) shape, then summed back
    to that input's shape; inputs whose gradient nobody needs are skipped."""
    def rule(c: Any, op: Op, dys: list[Any]) -> list[Any]:
        return [c.reduce_to(fn(c, op, dys[0]), v.shape) if fn is not None and c.needs(v) else None
                for fn, v in zip(fns, op.inputs)]
    return rule


def _in(i: int) -> Callable[[Any, Op], Any]:
    return lambda c, op: c.fwd(op.inputs[i])


def _pick(cmp: str, i: int) -> Callable[[Any, Op, Any], Any]:
    """dy where `a cmp b` holds (i = 0) or fails (i = 1), else 0: Max/Min split ties to a."""
    def fn(c: Any, op: Op, dy: Any) -> Any:
        cond = c.one(cmp, {"a": _in(0)(c, op), "b": _in(1)(c, op)})
        zero = c.const(0.0, dy.dtype)
        return c.where(cond, dy, zero) if i == 0 else c.where(cond, zero, dy)
    return fn


_binary("Add", "out = a + b", lambda e, a, b: e.add(a, b), grad=_per_input(lambda c, op, dy: dy, lambda c, op, dy: dy))
_binary("Sub", "out = a - b", lambda e, a, b: e.sub(a, b),
        grad=_per_input(lambda c, op, dy: dy, lambda c, op, dy: c.neg(dy)))
_binary("Mul", "out = a * b", lambda e, a, b: e.mul(a, b),
        grad=_per_input(lambda c, op, dy: c.mul(dy, _in(1)(c, op)), lambda c, op, dy: c.mul(dy, _in(0)(c, op))))
_binary("Div", "out = a / b", lambda e, a, b: e.div(a, b),  # da = dy / b, db = -dy * a / b^2
        grad=_per_input(lambda c, op, dy: c.div(dy, _in(1)(c, op)),
                        lambda c, op, dy: c.neg(c.div(c.mul(dy, _in(0)(c, op)), c.mul(_in(1)(c, op), _in(1)(c, op))))))
_binary("Pow", "out = a ** b", lambda e, a, b: e.pow(a, b),  # da = dy * b * a^(b-1), db = dy * out * log(a)
        grad=_per_input(
            lambda c, op, dy: c.mul(dy, c.mul(_in(1)(c, op), c.one("Pow", {"a": _in(0)(c, op), "b": c.sub(
                _in(1)(c, op), c.const(1.0, dy.dtype))}))),
            lambda c, op, dy: c.mul(dy, c.mul(c.fwd(op.outputs[0]), c.one("Log", {"x": _in(0)(c, op)})))))
_binary("Max", "out = max(a, b)", lambda e, a, b: e.max(a, b),
        grad=_per_input(_pick("GreaterOrEqual", 0), _pick("GreaterOrEqual", 1)))
_binary("Min", "out = min(a, b)", lambda e, a, b: e.min(a, b),
        grad=_per_input(_pick("LessOrEqual", 0), _pick("LessOrEqual", 1)))
for _k, _p in (("Less", Prim.lt), ("LessOrEqual", Prim.le), ("Greater", Prim.gt),
               ("GreaterOrEqual", Prim.ge), ("Equal", Prim.eq), ("NotEqual", Prim.ne)):
    assert _p in COMPARE
    _binary(_k, f"out = a {_p.value} b", lambda e, a, b, p=_p: e.compare(p, a, b), out_bool=True)


def _infer_cast(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [TensorSpec(s["x"].shape, a["to"])]


def _cast_grad(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    x = op.inputs[0]
    return [c.one("Cast", {"x": dys[0]}, {"to": x.dtype}) if x.dtype.is_float else None]


register(OpDef(kind="Cast", formula="out = (to) x", infer=_infer_cast, elementwise=True, grad=_cast_grad,
               decompose=lambda e, n, s, a: [e.cast(n["x"], a["to"])]))


def _infer_where(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    if s["cond"].dtype != DType.bool:
        raise OpError(f"Where: condition must be bool, got {s['cond']}")
    dt = same_dtype("Where", s, "a", "b")
    return [TensorSpec(broadcast_shapes("Where", s["cond"].shape, s["a"].shape, s["b"].shape), dt)]


def _where_branch(i: int) -> Callable[[Any, Op, Any], Any]:
    def fn(c: Any, op: Op, dy: Any) -> Any:
        cond, zero = c.fwd(op.inputs[0]), c.const(0.0, dy.dtype)
        return c.where(cond, dy, zero) if i == 1 else c.where(cond, zero, dy)
    return fn


register(OpDef(kind="Where", formula="out = cond ? a : b", infer=_infer_where, elementwise=True,
               grad=_per_input(None, _where_branch(1), _where_branch(2)),  # type: ignore[arg-type]
               decompose=lambda e, n, s, a: [e.select(n["cond"], n["a"], n["b"])]))


def _infer_clip(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [s["x"]]


def _clip_grad(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """dx = dy where min <= x <= max, else 0."""
    x, dy = _x(c, op), dys[0]
    zero = c.const(0.0, dy.dtype)
    inside = c.where(c.one("Less", {"a": x, "b": c.const(op.attrs["min"], x.dtype)}), zero, dy)
    return [c.where(c.one("Greater", {"a": x, "b": c.const(op.attrs["max"], x.dtype)}), zero, inside)]


register(OpDef(kind="Clip", formula="out = min(max(x, lo), hi)", infer=_infer_clip, elementwise=True,
               grad=_clip_grad,
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
               grad=_per_input(lambda c, op, dy: c.mul(dy, _in(1)(c, op)), lambda c, op, dy: c.mul(dy, _in(0)(c, op)),
                               lambda c, op, dy: dy),
               decompose=lambda e, n, s, a: [e.fma(n["a"], n["b"], n["c"])]))
