"""A numpy-like namespace that traces: on traced values (what an Optimizer's hooks receive) it emits IR
ops through the core builder (compiler/ops/builder.py) with numpy's type promotion; on anything
else it is numpy.

    import compiler.optim.numpy as jnp

While an Optimizer is being traced, the creation functions (zeros, ones, full, zeros_like, ones_like,
full_like) make new *state*: an array that lives in numpy between calls. Stored in the optimizer
(`self.m[key] = jnp.zeros_like(param)`), it is created once, on first sight of the key, and updated
in place by the compiled code afterwards.
"""
from __future__ import annotations

import builtins
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import ml_dtypes as _mld
import numpy as _np

from compiler.ops import builder as _ops

from .traced import Traced, apply, graph_of, result_dtype, to_tensor

float16, float32, float64, bfloat16 = _np.float16, _np.float32, _np.float64, _mld.bfloat16
int8, int32, int64, uint8, uint32 = _np.int8, _np.int32, _np.int64, _np.uint8, _np.uint32
bool_ = _np.bool_
ndarray = _np.ndarray
pi, e, inf = _np.pi, _np.e, _np.inf
dtype, finfo, result_type = _np.dtype, _np.finfo, _np.result_type


class _Trace(threading.local):
    """The state factory of the Optimizer being traced on this thread (None when not tracing)."""

    factory: Callable[[tuple[int, ...], Any, float], Traced] | None = None


_trace = _Trace()


@contextmanager
def tracing(factory: Callable[[tuple[int, ...], Any, float], Traced]) -> Iterator[None]:
    """Used by Optimizer: creation functions call factory(shape, dtype, fill) for new state."""
    prev, _trace.factory = _trace.factory, factory
    try:
        yield
    finally:
        _trace.factory = prev


def is_traced(x: Any) -> bool:
    return isinstance(x, Traced)


def _traced(*xs: Any) -> bool:
    return builtins.any(isinstance(x, Traced) for x in xs)


def _unary(np_fn: Any, op: Any, floating: bool = True) -> Any:
    def f(x: Any) -> Any:
        if not _traced(x):
            return np_fn(x)
        dt = x.dtype if not floating or x.dtype.kind == "f" or x.dtype == _np.dtype(bfloat16) else _np.float64
        return apply(op, x, dtype=_np.dtype(dt))
    f.__name__ = f.__qualname__ = np_fn.__name__
    f.__doc__ = f"numpy.{np_fn.__name__}; on a traced array, the IR op {op.__name__}."
    return f


sqrt = _unary(_np.sqrt, _ops.sqrt)
exp = _unary(_np.exp, _ops.exp)
log = _unary(_np.log, _ops.log)
tanh = _unary(_np.tanh, _ops.tanh)
floor = _unary(_np.floor, _ops.floor)
abs = _unary(_np.abs, _ops.abs, floating=False)  # noqa: A001
sign = _unary(_np.sign, _ops.sign, floating=False)
negative = _unary(_np.negative, _ops.negate, floating=False)


def _binary(np_fn: Any, op: Any) -> Any:
    def f(a: Any, b: Any) -> Any:
        return apply(op, a, b) if _traced(a, b) else np_fn(a, b)
    f.__name__ = f.__qualname__ = np_fn.__name__
    f.__doc__ = f"numpy.{np_fn.__name__}; on traced arrays, the IR op {op.__name__} (numpy promotion, broadcasting)."
    return f


maximum = _binary(_np.maximum, _ops.maximum)
minimum = _binary(_np.minimum, _ops.minimum)
power = _binary(_np.power, _ops.pow)
add = _binary(_np.add, _ops.add)
subtract = _binary(_np.subtract, _ops.sub)
multiply = _binary(_np.multiply, _ops.mul)


def divide(a: Any, b: Any) -> Any:
    return a / b if _traced(a, b) else _np.divide(a, b)


def _compare(np_fn: Any, op: Any) -> Any:
    def f(a: Any, b: Any) -> Any:
        if not _traced(a, b):
            return np_fn(a, b)
        dt, gb = result_dtype(a, b), graph_of(a, b)
        return Traced(op(to_tensor(a, dt, gb), to_tensor(b, dt, gb)))
    f.__name__ = f.__qualname__ = np_fn.__name__
    return f


greater = _compare(_np.greater, _ops.greater)
less = _compare(_np.less, _ops.less)
equal = _compare(_np.equal, _ops.equal)


def square(x: Any) -> Any:
    return x * x if _traced(x) else _np.square(x)


def where(c: Any, a: Any, b: Any) -> Any:
    """numpy.where; with a traced condition or branch, the IR op Where (numpy promotion of a and b)."""
    if not _traced(c, a, b):
        return _np.where(c, a, b)
    dt, gb = result_dtype(a, b), graph_of(c, a, b)
    return Traced(_ops.where(to_tensor(c, _np.dtype(bool), gb), to_tensor(a, dt, gb), to_tensor(b, dt, gb)))


def clip(x: Any, lo: Any, hi: Any) -> Any:
    return minimum(maximum(x, lo), hi) if _traced(x, lo, hi) else _np.clip(x, lo, hi)


def _reduce(np_fn: Any, how: str) -> Any:
    def f(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if not _traced(x):
            return np_fn(x, axis=axis, keepdims=keepdims)
        return Traced(_ops.reduce(how, x.t, axis, keepdims))
    f.__name__ = f.__qualname__ = np_fn.__name__
    f.__doc__ = f"numpy.{np_fn.__name__}; on a traced array, the IR op {_ops.REDUCTIONS[how]} (in the array's dtype)."
    return f


sum = _reduce(_np.sum, "sum")  # noqa: A001
mean = _reduce(_np.mean, "mean")
max = _reduce(_np.max, "max")  # noqa: A001
min = _reduce(_np.min, "min")  # noqa: A001


def vdot(a: Any, b: Any) -> Any:
    """sum(a * b) over all elements."""
    return sum(a * b) if _traced(a, b) else _np.vdot(a, b)


def norm(x: Any) -> Any:
    """The 2-norm of all elements (numpy.linalg.norm without an axis)."""
    return sqrt(sum(x * x)) if _traced(x) else _np.linalg.norm(x)


def astype(x: Any, dtype: Any) -> Any:
    return x.astype(dtype) if _traced(x) else _np.asarray(x).astype(dtype)


def asarray(x: Any, dtype: Any = None) -> Any:
    if _traced(x):
        return x if dtype is None else x.astype(dtype)
    return _np.asarray(x, dtype)


# ------------------------------------------------------------------ creation (state while tracing)
def _shape(shape: Any) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, _np.integer)) else tuple(int(s) for s in shape)


def full(shape: Any, fill_value: float, dtype: Any = _np.float32) -> Any:
    """numpy.full; while tracing, new optimizer state initialised to fill_value."""
    if _trace.factory is not None:
        return _trace.factory(_shape(shape), _np.dtype(dtype), float(fill_value))
    return _np.full(_shape(shape), fill_value, dtype)


def zeros(shape: Any, dtype: Any = _np.float32) -> Any:
    return full(shape, 0.0, dtype)


def ones(shape: Any, dtype: Any = _np.float32) -> Any:
    return full(shape, 1.0, dtype)


def full_like(x: Any, fill_value: float, dtype: Any = None) -> Any:
    if _traced(x):
        if _trace.factory is None:
            raise RuntimeError("jnp.*_like of a traced array creates optimizer state, which only exists while an "
                               "Optimizer is traced (inside call_model / call_param)")
        return _trace.factory(x.shape, _np.dtype(dtype or x.dtype), float(fill_value))
    return full(_np.shape(x), fill_value, dtype or _np.asarray(x).dtype)


def zeros_like(x: Any, dtype: Any = None) -> Any:
    return full_like(x, 0.0, dtype)


def ones_like(x: Any, dtype: Any = None) -> Any:
    return full_like(x, 1.0, dtype)
