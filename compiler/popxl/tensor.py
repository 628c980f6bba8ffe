"""popxl.Tensor: a handle on a tensor's storage. Reads resolve to the newest version."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NewType

import numpy as np

from compiler.ir import DType, TensorSpec, Value

if TYPE_CHECKING:
    from .graph import Graph


class Tensor:
    # numpy must not broadcast its ufuncs over a Tensor: `array @ tensor` reaches __rmatmul__
    __array_ufunc__ = None

    def __init__(self, value: Value, graph: "Graph") -> None:
        self._value = value
        self._graph = graph

    # ---------------------------------------------------------------- identity
    @property
    def name(self) -> str:
        return self._value.name

    @property
    def id(self) -> str:
        gid = self._value.graph.id
        return f"{gid}/{self.name}" if gid else self.name

    @property
    def spec(self) -> TensorSpec:
        return self._value.spec

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> DType:
        return self._value.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def nelms(self) -> int:
        return self.spec.nelms

    @property
    def ir(self):
        return self._graph.ir

    @property
    def graph(self) -> "Graph":
        return self._graph

    def current(self) -> Value:
        """The SSA value a read through this handle sees now."""
        return self._graph.resolve(self._value)

    def __repr__(self) -> str:
        # the tutorial (SDK 3.4) prints variables as Tensor[...]; PopXL's later unit tests expect Variable[...]
        return f"Tensor[{self.id} {self.dtype!r} {self.shape}]"

    def __hash__(self) -> int:
        return hash(("tensor", self._value.storage, self._value.id))

    def __eq__(self, other: object) -> bool:  # identity, as popxl (== is not elementwise)
        return isinstance(other, Tensor) and other._value is self._value

    def __len__(self) -> int:
        if not self.shape:
            raise ValueError(f"len() of scalar tensor {self.name!r}: it has no first dimension")
        return self.shape[0]

    def __iter__(self) -> Any:
        raise ValueError(f"tensor {self.name!r} is not iterable on the host; index it (t[i]) or use ops.split")

    def __contains__(self, x: Any) -> bool:
        raise TypeError(f"`in` is not supported for tensor {self.name!r}: its values exist only when the program runs")

    def strides(self, shape: Any = None) -> tuple[int, ...]:
        """Byte strides of a C-ordered tensor of this dtype and `shape` (default: this tensor's)."""
        shape = tuple(self.shape if shape is None else shape)
        out, acc = [], self.dtype.itemsize
        for d in reversed(shape):
            out.append(acc)
            acc *= d
        return tuple(reversed(out))

    @property
    def scope(self) -> str:
        return self._value.graph.id

    @property
    def ipu(self) -> int:
        """The IPU a tensor lives on: 0 once an op has produced it (PopXL leaves variables undefined)."""
        if self._value.kind in ("variable", "constant"):
            from .errors import UndefinedValue

            raise UndefinedValue(f"tensor {self.name!r} has no ipu until an op uses it")
        return 0

    @property
    def tile_set(self) -> str:
        if self._value.kind in ("variable", "constant"):
            from .errors import UndefinedValue

            raise UndefinedValue(f"tensor {self.name!r} has no tile set until an op uses it")
        return "compute"

    def _ensure_tensor(self, value: Any, dtype: Any = None) -> "Tensor":
        """`value` as a Tensor: a Tensor is returned as is, host data becomes a constant of `dtype`
        (default: this tensor's dtype)."""
        if isinstance(value, Tensor):
            return value
        from .creation import constant

        return constant(np.asarray(value), self.dtype if dtype is None else dtype)

    def __bool__(self) -> bool:
        return True

    # --------------------------------------------------------------- methods
    def reshape(self, shape: Any) -> "Tensor":
        from . import ops

        return ops.reshape(self, shape)

    def flatten(self) -> "Tensor":
        return self.reshape((-1,))

    def reshape_(self, shape: Any) -> "Tensor":
        from . import ops

        return ops.reshape_(self, shape)

    def flatten_(self) -> "Tensor":
        from . import ops

        return ops.flatten_(self)

    def transpose_(self, permutation: Any = None) -> "Tensor":
        from . import ops

        return ops.transpose_(self, permutation)

    @property
    def T_(self) -> "Tensor":
        return self.transpose_()

    def detach_(self) -> "Tensor":
        from . import ops

        return ops.detach_(self)

    def __getitem__(self, key: Any) -> "Tensor":
        from .ops.indexing import getitem

        return getitem(self, key)

    def transpose(self, permutation: Any = None) -> "Tensor":
        from . import ops

        return ops.transpose(self, permutation)

    def diag(self) -> "Tensor":
        """The main diagonal of a 2-d tensor: t[i, i] for i < min(rows, cols), as PopXL builds it (the
        flattened tensor sliced with step cols + 1)."""
        if self.rank != 2:
            raise ValueError(f"Tensor.diag: {self!r} has rank {self.rank}; diag needs a 2-d tensor (reshape it)")
        rows, cols = self.shape
        n = min(rows, cols)
        return self.flatten()[0:(n - 1) * (cols + 1) + 1:cols + 1] if n else self.flatten()[0:0]

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def detach(self) -> "Tensor":
        from . import ops

        return ops.detach(self)

    # ----------------------------------------------------------- arithmetic
    def _other(self, x: Any) -> "Tensor":
        if isinstance(x, Tensor):
            return x
        from .creation import constant

        return constant(np.asarray(x), self.dtype)  # popxl: a non-Tensor gets self's dtype

    def __add__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.add(self, self._other(o))

    def __radd__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.add(self._other(o), self)

    def __sub__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.sub(self, self._other(o))

    def __rsub__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.sub(self._other(o), self)

    def __mul__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.mul(self, self._other(o))

    def __rmul__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.mul(self._other(o), self)

    def __truediv__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.div(self, self._other(o))

    def __rtruediv__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.div(self._other(o), self)

    def __pow__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.pow(self, self._other(o))

    def __rpow__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.pow(self._other(o), self)

    def __gt__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.greater(self, self._other(o))

    def __lt__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.less(self, self._other(o))

    def __ge__(self, o: Any) -> "Tensor":
        from .ops._emit import emit_op, out
        return out(emit_op("GreaterOrEqual", {"a": self, "b": self._other(o)}, name="greater_equal"))

    def __le__(self, o: Any) -> "Tensor":
        from .ops._emit import emit_op, out
        return out(emit_op("LessOrEqual", {"a": self, "b": self._other(o)}, name="less_equal"))

    def astype(self, dtype: Any) -> "Tensor":
        from . import ops
        return ops.cast(self, dtype)

    def __matmul__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.matmul(self, self._other(o))

    def __rmatmul__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.matmul(self._other(o), self)

    def __mod__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.fmod(self, self._other(o))

    def __rmod__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.fmod(self._other(o), self)

    def __and__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.logical_and(self, self._other(o))

    def __rand__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.logical_and(self._other(o), self)

    def __or__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.logical_or(self, self._other(o))

    def __ror__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.logical_or(self._other(o), self)

    def __invert__(self) -> "Tensor":
        from . import ops
        return ops.logical_not(self)

    def __neg__(self) -> "Tensor":
        from . import ops
        return ops.negate(self)

    def __iadd__(self, o: Any) -> "Tensor":
        from . import ops
        return ops.add_(self, self._other(o))


class Variable(Tensor):
    """A tensor with persistent storage in the main graph."""


class Constant(Tensor):
    """A tensor with fixed data."""


# TensorByRef marks a create_graph argument as passed by reference
TensorByRef = NewType("TensorByRef", Tensor)


def __getattr__(name: str) -> Any:
    """PopXL also exposes the tensor constructors from popxl.tensor."""
    if name in ("variable", "constant", "graph_input"):
        from . import creation

        return getattr(creation, name)
    if name == "TensorSpec":
        return TensorSpec
    raise AttributeError(f"module 'popxl.tensor' has no attribute {name!r}")


def wrap(v: Value) -> Tensor:
    """The Tensor handle for an IR value."""
    from .ir import Ir

    g = Ir.wrapper_of(v.graph)
    cls = Variable if v.kind == "variable" else Constant if v.kind == "constant" else Tensor
    return cls(v, g)
