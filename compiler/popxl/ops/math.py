"""Elementwise math ops."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import DType, as_dtype

from ..tensor import Tensor
from ._emit import emit_op, out


def _t(x: Any, like: Tensor) -> Tensor:
    return like._other(x)


def _un(kind: str, name: str):
    def f(t: Tensor) -> Tensor:
        return out(emit_op(kind, {"x": t}, name=name, out_names=[f"{name}_out"]))
    f.__name__ = name
    return f


def _bin(kind: str, name: str):
    def f(lhs: Any, rhs: Any) -> Tensor:
        if not isinstance(lhs, Tensor):
            lhs = _t(lhs, rhs)
        rhs = _t(rhs, lhs)
        return out(emit_op(kind, {"a": lhs, "b": rhs}, name=name, out_names=[f"{name}_out"]))
    f.__name__ = name
    return f


negate = _un("Neg", "negate")
sqrt = _un("Sqrt", "sqrt")
exp = _un("Exp", "exp")
log = _un("Log", "log")
tanh = _un("Tanh", "tanh")
abs = _un("Abs", "abs")
sign = _un("Sign", "sign")
floor = _un("Floor", "floor")
relu = _un("Relu", "relu")
gelu = _un("Gelu", "gelu")
geluerf = _un("GeluErf", "geluerf")
sigmoid = _un("Sigmoid", "sigmoid")


def identity(t: Tensor, output_name: str | None = None) -> Tensor:
    """out = t (a copy)."""
    return out(emit_op("Identity", {"x": t}, name="identity", out_names=[output_name or "identity_out"]))


def rename(t: Tensor, output_name: str) -> Tensor:
    return identity(t, output_name)

ceil = _un("Ceil", "ceil")
swish = _un("Swish", "swish")
isnan = _un("IsNaN", "isnan")
isinf = _un("IsInf", "isinf")
sin = _un("Sin", "sin")
cos = _un("Cos", "cos")
fmod = _bin("Fmod", "fmod")
_not, _and, _or = _un("Not", "logical_not"), _bin("And", "logical_and"), _bin("Or", "logical_or")


def _as_bool(x: Any, like: Any = None) -> Tensor:
    """PopXL's logical ops cast non-bool tensors (and host values) to bool first."""
    if not isinstance(x, Tensor):
        x = like._ensure_tensor(np.asarray(x), DType.bool)
    return x if x.dtype == DType.bool else cast(x, DType.bool)


def logical_not(t: Tensor) -> Tensor:
    """out = !t (t cast to bool first)."""
    return _not(_as_bool(t))


def logical_and(lhs: Any, rhs: Any) -> Tensor:
    """out = lhs && rhs (both cast to bool first)."""
    lt = lhs if isinstance(lhs, Tensor) else rhs
    return _and(_as_bool(lhs, lt), _as_bool(rhs, lt))


def logical_or(lhs: Any, rhs: Any) -> Tensor:
    """out = lhs || rhs (both cast to bool first)."""
    lt = lhs if isinstance(lhs, Tensor) else rhs
    return _or(_as_bool(lhs, lt), _as_bool(rhs, lt))


def log2(t: Tensor) -> Tensor:
    """out = log(t) / log(2), built as PopXL builds it (Log of t and of a constant 2, then Div)."""
    from ..creation import constant

    return div(log(t), log(constant(2, t.dtype)))


def isfinite(t: Tensor) -> Tensor:
    """out = !isinf(t) && !isnan(t), built as PopXL builds it (two Nots and an And)."""
    return logical_and(logical_not(isinf(t)), logical_not(isnan(t)))


add = _bin("Add", "add")
sub = _bin("Sub", "sub")
mul = _bin("Mul", "mul")
div = _bin("Div", "div")
pow = _bin("Pow", "pow")
maximum = _bin("Max", "maximum")
minimum = _bin("Min", "minimum")
greater = _bin("Greater", "greater")
less = _bin("Less", "less")
equal = _bin("Equal", "equal")


def detach(t: Tensor) -> Tensor:
    """out = t, and autodiff passes no gradient back through it."""
    return out(emit_op("Detach", {"x": t}, name="detach", out_names=["detach_out"]))


def add_(lhs: Tensor, rhs: Any) -> Tensor:
    """lhs <- lhs + rhs, in place on lhs (PopXL's AddLhsInplace)."""
    return out(emit_op("AddLhsInplace", {"a": lhs, "b": _t(rhs, lhs)}, name="add_", out_names=[f"add__{lhs.name}"]))


def cast(t: Tensor, data_type: Any) -> Tensor:
    """out = t as data_type; the output is named after t, as PopXL names it."""
    return out(emit_op("Cast", {"x": t}, {"to": as_dtype(data_type)}, name="cast", out_names=[f"{t.name}_cast"]))


def where(condition: Tensor, lhs: Any, rhs: Any) -> Tensor:
    """out = condition ? lhs : rhs; a non-bool condition is cast to bool first (as PopXL)."""
    if isinstance(condition, Tensor) and condition.dtype != DType.bool:
        condition = cast(condition, DType.bool)
    if not isinstance(lhs, Tensor):
        lhs = _t(lhs, rhs)
    rhs = _t(rhs, lhs)
    return out(emit_op("Where", {"cond": condition, "a": lhs, "b": rhs}, name="where", out_names=["where_out"]))


def clip(t: Tensor, min: float = float(np.finfo(np.float32).min), max: float = float(np.finfo(np.float32).max)) -> Tensor:
    return out(emit_op("Clip", {"x": t}, {"min": float(min), "max": float(max)}, name="clip", out_names=["clip_out"]))


clamp = clip
