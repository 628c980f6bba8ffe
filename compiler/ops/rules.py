"""Shared type rules and small helpers for op definitions."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import DType, TensorSpec

from .primitives import Expr
from .registry import OpError


def broadcast_shapes(kind: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise OpError(f"{kind}: shapes {', '.join(map(str, shapes))} do not broadcast together") from None


def same_dtype(kind: str, specs: dict[str, TensorSpec], *roles: str) -> DType:
    ds = {specs[r].dtype for r in roles if r in specs}
    if len(ds) > 1:
        detail = ", ".join(f"{r} {specs[r]}" for r in roles if r in specs)
        raise OpError(f"{kind}: inputs must share one dtype, got {detail}; cast one of them with ops.cast")
    return ds.pop()


def same_shape(kind: str, specs: dict[str, TensorSpec], a: str, b: str) -> None:
    if specs[a].shape != specs[b].shape:
        raise OpError(
            f"{kind}: {a} {specs[a]} and {b} {specs[b]} must have the same shape "
            "(var-update ops do not broadcast)"
        )


def scalar(kind: str, specs: dict[str, TensorSpec], role: str) -> None:
    if role in specs and specs[role].shape not in ((), (1,)):
        raise OpError(f"{kind}: {role} must be a scalar tensor (shape ()), got {specs[role]}")


def float_only(kind: str, specs: dict[str, TensorSpec], *roles: str) -> None:
    for r in roles:
        if r in specs and not specs[r].dtype.is_float:
            raise OpError(f"{kind}: {r} must be a floating-point tensor, got {specs[r]}")


def numeric_only(kind: str, specs: dict[str, TensorSpec], *roles: str) -> None:
    for r in roles:
        if r in specs and specs[r].dtype == DType.bool:
            raise OpError(f"{kind}: {r} must be a numeric tensor, got {specs[r]}")


def hyper(e: Expr, nodes: dict[str, int], attrs: dict[str, Any], role: str, dtype: DType) -> int:
    """A hyper-parameter as a node of `dtype`: the tensor input if connected, else the constant attr."""
    if role in nodes:
        return e.cast(nodes[role], dtype)
    return e.const(float(attrs[role]), dtype)


def f32(x: float) -> float:
    """Round a host-side constant through float32, as PopART computes them."""
    return float(np.float32(x))
