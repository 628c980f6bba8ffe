"""scaled_add (out = a*X + b*Y) and scaled_add_ (in place on X)."""
from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from ._emit import emit_op, out


def _args(X: Tensor, Y: Tensor, a: Any, b: Any) -> tuple[dict[str, Tensor | None], dict[str, Any]]:
    ins: dict[str, Tensor | None] = {"X": X, "Y": Y}
    attrs: dict[str, Any] = {}
    for k, v in (("a", a), ("b", b)):
        if isinstance(v, Tensor):
            ins[k] = v
            attrs[k] = 1.0
        else:
            attrs[k] = float(v)
    return ins, attrs


def scaled_add(X: Tensor, Y: Tensor, a: float | Tensor = 1.0, b: float | Tensor = 1.0) -> Tensor:
    """out = a*X + b*Y."""
    ins, attrs = _args(X, Y, a, b)
    return out(emit_op("ScaledAdd", ins, attrs, name="scaled_add", out_names=["scaled_add_out"]))


def scaled_add_(X: Tensor, Y: Tensor, a: float | Tensor = 1.0, b: float | Tensor = 1.0) -> Tensor:
    """X <- a*X + b*Y, in place on X."""
    ins, attrs = _args(X, Y, a, b)
    return out(emit_op("ScaledAddLhsInplace", ins, attrs, name="scaled_add_", out_names=[f"scaled_add__{X.name}"]))
