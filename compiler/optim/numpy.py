"""A numpy-like namespace that traces: on popxl Tensors it builds IR ops, on anything else it is numpy.

  import compiler.optim.numpy as jnp
"""
from __future__ import annotations

from typing import Any

import numpy as _np

from compiler import popxl
from compiler.popxl import ops as _ops

float16, float32, float64 = _np.float16, _np.float32, _np.float64
int32, uint32, int64 = _np.int32, _np.uint32, _np.int64
ndarray = _np.ndarray


def _traced(*xs: Any) -> bool:
    return any(isinstance(x, popxl.Tensor) for x in xs)


def _like(x: Any, ref: popxl.Tensor) -> popxl.Tensor:
    return x if isinstance(x, popxl.Tensor) else ref._other(x)


def _unary(np_fn: Any, op: Any) -> Any:
    def f(x: Any) -> Any:
        return op(x) if _traced(x) else np_fn(x)
    f.__name__ = np_fn.__name__
    return f


sqrt = _unary(_np.sqrt, _ops.sqrt)
exp = _unary(_np.exp, _ops.exp)
log = _unary(_np.log, _ops.log)
abs = _unary(_np.abs, _ops.abs)
sign = _unary(_np.sign, _ops.sign)
tanh = _unary(_np.tanh, _ops.tanh)


def maximum(a: Any, b: Any) -> Any:
    if not _traced(a, b):
        return _np.maximum(a, b)
    ref = a if isinstance(a, popxl.Tensor) else b
    return _ops.maximum(_like(a, ref), _like(b, ref))


def minimum(a: Any, b: Any) -> Any:
    if not _traced(a, b):
        return _np.minimum(a, b)
    ref = a if isinstance(a, popxl.Tensor) else b
    return _ops.minimum(_like(a, ref), _like(b, ref))


def where(c: Any, a: Any, b: Any) -> Any:
    if not _traced(c, a, b):
        return _np.where(c, a, b)
    ref = a if isinstance(a, popxl.Tensor) else b if isinstance(b, popxl.Tensor) else None
    if ref is None:
        raise TypeError("jnp.where on traced values needs a or b to be a traced tensor")
    return _ops.where(c, _like(a, ref), _like(b, ref))


def clip(x: Any, lo: Any, hi: Any) -> Any:
    return minimum(maximum(x, lo), hi) if _traced(x) else _np.clip(x, lo, hi)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    return _ops.sum(x, axis, keepdims) if _traced(x) else _np.sum(x, axis=axis, keepdims=keepdims)


def square(x: Any) -> Any:
    return x * x


def astype(x: Any, dtype: Any) -> Any:
    return _ops.cast(x, popxl.dtypes.as_dtype(dtype)) if _traced(x) else _np.asarray(x).astype(dtype)


def zeros_like(x: Any, dtype: Any = None) -> Any:
    """Zeros shaped like x. While tracing, a new state tensor (kept in numpy arrays between calls)."""
    if _traced(x):
        dt = popxl.dtypes.as_dtype(dtype) if dtype is not None else x.dtype
        return popxl.variable(_np.zeros(x.shape, dt.numpy), dt, name="state")
    return _np.zeros(_np.shape(x), dtype or _np.asarray(x).dtype)


def ones_like(x: Any, dtype: Any = None) -> Any:
    if _traced(x):
        dt = popxl.dtypes.as_dtype(dtype) if dtype is not None else x.dtype
        return popxl.variable(_np.ones(x.shape, dt.numpy), dt, name="state")
    return _np.ones(_np.shape(x), dtype or _np.asarray(x).dtype)


def zeros(shape: Any, dtype: Any = _np.float32) -> _np.ndarray:
    return _np.zeros(shape, dtype)


def asarray(x: Any, dtype: Any = None) -> Any:
    return x if _traced(x) else _np.asarray(x, dtype)
