"""Traced: what an Optimizer's hooks see instead of numpy arrays while being traced.

It behaves like a numpy array with numpy's type promotion (NEP 50): a Python number takes the
array's dtype (float16 * 0.9 stays float16), arrays of different dtypes promote (float16 / float32
is float32), and comparisons give bool. Each operation emits IR ops of the core op registry, which
computes every primitive in its own dtype, as numpy does. `__array_ufunc__ = None` makes numpy
hand `ndarray * traced` to Traced. Python control flow on a traced value is an error (use jnp.where);
`==` is identity, as on popxl tensors (use jnp.equal). Ops are built through the core builder
(compiler/ops/builder.py).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import DType, as_dtype
from compiler.ops import builder as ops
from compiler.ops.builder import GraphBuilder, Handle


def np_dtype(dt: DType) -> np.dtype:
    return np.dtype(dt.numpy)


def result_dtype(*xs: Any) -> np.dtype:
    """numpy 2's promotion of traced values, arrays and (weak) Python numbers."""
    strong = [x.dtype for x in xs if isinstance(x, Traced)]
    strong += [np.asarray(x).dtype for x in xs if isinstance(x, (np.ndarray, np.generic))]
    weak = [x for x in xs if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)]
    dt = np.result_type(*strong) if strong else np.result_type(*weak)
    if any(isinstance(w, float) for w in weak) and dt.kind in "biu":
        dt = np.dtype(np.float64)
    return dt


def graph_of(*xs: Any) -> GraphBuilder:
    """The graph being traced: that of the first traced value among xs."""
    return next(x.t.gb for x in xs if isinstance(x, Traced))


def to_tensor(x: Any, dtype: np.dtype, gb: GraphBuilder | None = None) -> Handle:
    """x as a handle of dtype: a cast of a traced value, or a constant (in graph gb) of a host value."""
    if isinstance(x, Traced):
        x = x.t
    if isinstance(x, Handle):
        dt = as_dtype(dtype)
        return x if x.dtype == dt else ops.cast(x, dt)
    if gb is None:
        raise TypeError(f"to_tensor({x!r}): a host value needs the graph to put its constant in")
    return gb.constant(np.asarray(x, dtype), as_dtype(dtype))


def apply(op: Any, *xs: Any, dtype: np.dtype | None = None) -> "Traced":
    """op over xs promoted to one dtype (or to `dtype`)."""
    dt = dtype if dtype is not None else result_dtype(*xs)
    gb = graph_of(*xs)
    return Traced(op(*(to_tensor(x, dt, gb) for x in xs)))


class Traced:
    """A traced numpy-like array (see the module docstring); `.t` is its builder Handle."""

    __array_ufunc__ = None  # numpy defers to our reflected operators
    __slots__ = ("t",)

    def __init__(self, t: Handle) -> None:
        self.t = t

    @property
    def dtype(self) -> np.dtype:
        return np_dtype(self.t.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.t.shape)

    @property
    def ndim(self) -> int:
        return len(self.t.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.t.shape, dtype=np.int64))

    def astype(self, dtype: Any) -> "Traced":
        return Traced(to_tensor(self, np.dtype(dtype) if not isinstance(dtype, DType) else np_dtype(dtype), self.t.gb))

    def reshape(self, *shape: Any) -> "Traced":
        s = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return Traced(ops.reshape(self.t, tuple(s)))

    def __repr__(self) -> str:
        return f"Traced({self.dtype}{list(self.shape)})"

    def __bool__(self) -> bool:
        raise TypeError(f"the truth value of a traced array ({self!r}) is only known when the compiled step runs; "
                        "use jnp.where(cond, a, b) instead of Python if/and/or on traced values")

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __neg__(self) -> "Traced":
        return Traced(ops.negate(self.t))

    def __pos__(self) -> "Traced":
        return self

    def __abs__(self) -> "Traced":
        return Traced(ops.abs(self.t))

    def __add__(self, o: Any) -> "Traced":
        return apply(ops.add, self, o)

    def __radd__(self, o: Any) -> "Traced":
        return apply(ops.add, o, self)

    def __sub__(self, o: Any) -> "Traced":
        return apply(ops.sub, self, o)

    def __rsub__(self, o: Any) -> "Traced":
        return apply(ops.sub, o, self)

    def __mul__(self, o: Any) -> "Traced":
        return apply(ops.mul, self, o)

    def __rmul__(self, o: Any) -> "Traced":
        return apply(ops.mul, o, self)

    def __truediv__(self, o: Any) -> "Traced":
        return apply(ops.div, self, o, dtype=_true_div(self, o))

    def __rtruediv__(self, o: Any) -> "Traced":
        return apply(ops.div, o, self, dtype=_true_div(o, self))

    def __pow__(self, o: Any) -> "Traced":
        return apply(ops.pow, self, o)

    def __rpow__(self, o: Any) -> "Traced":
        return apply(ops.pow, o, self)

    def __matmul__(self, o: Any) -> "Traced":
        return apply(ops.matmul, self, o)

    def __rmatmul__(self, o: Any) -> "Traced":
        return apply(ops.matmul, o, self)

    def _cmp(self, o: Any, op: Any) -> "Traced":
        dt = result_dtype(self, o)
        return Traced(op(to_tensor(self, dt), to_tensor(o, dt, self.t.gb)))

    def __gt__(self, o: Any) -> "Traced":
        return self._cmp(o, lambda a, b: a > b)

    def __lt__(self, o: Any) -> "Traced":
        return self._cmp(o, lambda a, b: a < b)

    def __ge__(self, o: Any) -> "Traced":
        return self._cmp(o, lambda a, b: a >= b)

    def __le__(self, o: Any) -> "Traced":
        return self._cmp(o, lambda a, b: a <= b)


def _true_div(a: Any, b: Any) -> np.dtype:
    dt = result_dtype(a, b)
    return dt if dt.kind in "fc" or dt == np.dtype(DType.bfloat16.numpy) else np.dtype(np.float64)
