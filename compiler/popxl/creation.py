"""Creating tensors: variables, constants, graph inputs, host streams."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import DType, TensorSpec, as_dtype
from compiler.ir.verify_program import MAX_BYTES

from .context import gcg
from .tensor import Constant, Tensor, Variable


def _converted(arr: np.ndarray, to: np.dtype, what: str, hint: str) -> np.ndarray:
    """`arr` as `to`, refusing values the conversion would change silently (an integer that wraps
    around, a finite float that becomes infinite)."""
    with np.errstate(all="ignore"):
        out = np.array(arr, dtype=to, order="C", copy=True)
    if not arr.size or arr.dtype.kind not in "iubf":
        return out
    src = np.asarray(arr, np.float64) if arr.dtype.kind == "f" else arr
    if out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        bad = (src < info.min) | (src > info.max) | (np.isnan(src) if src.dtype.kind == "f" else False)
        if np.any(bad):
            v = arr.reshape(-1)[int(np.argmax(np.reshape(bad, -1)))]
            raise ValueError(f"{what}: the value {v} does not fit {out.dtype} [{info.min}, {info.max}] and would "
                             f"wrap around; {hint}")
    elif out.dtype.kind == "f" or str(out.dtype) == "bfloat16":
        src = np.asarray(arr, np.float64)
        grew = np.isfinite(src) & ~np.isfinite(np.asarray(out, np.float64))
        if np.any(grew):
            v = arr.reshape(-1)[int(np.argmax(grew.reshape(-1)))]
            raise ValueError(f"{what}: the value {v} is too large for {out.dtype} and would become infinite; {hint}")
    return out


def _data(data: Any, dtype: Any, downcast: bool, what: str) -> np.ndarray:
    if isinstance(data, Tensor):
        raise TypeError(f"{what}: data must be host data (numpy array, list or number), got a Tensor")
    if type(data).__module__.startswith("torch"):  # a torch tensor, as PopXL's to_numpy
        data = data.detach().numpy()
    arr = np.asarray(data)
    if dtype is None:
        wide = {np.dtype(np.float64): np.float32, np.dtype(np.int64): np.int32, np.dtype(np.uint64): np.uint32}
        if downcast and arr.dtype in wide:  # PopXL's default: 64-bit host data becomes 32-bit
            return _converted(arr, np.dtype(wide[arr.dtype]), what,
                              f"pass dtype=popxl.{arr.dtype} (or downcast=False) to keep 64 bits")
        return np.array(arr, order="C", copy=True)
    return _converted(arr, DType.as_dtype(dtype).numpy, what, f"pass data that fits, or a wider dtype than {dtype}")


def variable(data: Any, dtype: Any = None, name: str | None = None, downcast: bool = True,
             replica_grouping: Any = None, **_: Any) -> Variable:
    """A variable of the main graph, initialised with `data`."""
    g = gcg()
    if g._g is not g.ir.core.main:
        raise ValueError(
            f"popxl.variable({name or 't'!r}) was called while building graph {g.name!r}; variables can only be "
            "created in the main graph (`with ir.main_graph:`). Pass it to the subgraph as an input instead.")
    arr = _data(data, dtype, downcast, "variable")
    groups = getattr(replica_grouping, "num_groups", 1)
    if groups > 1:  # one value per group along a leading dim (PopXL's layout)
        if arr.ndim == 0 or arr.shape[0] != groups:
            raise ValueError(f"popxl.variable({name or 't'!r}): with {replica_grouping} the data needs a leading "
                             f"dim of {groups} (one value per group), got shape {arr.shape}")
        v = g.ir.core.add_variable(arr[0], g.unique_name(name))
        from .replication import set_grouping

        set_grouping(g.ir.core, v.id, replica_grouping, arr)
        return Variable(v, g)
    v = g.ir.core.add_variable(arr, g.unique_name(name))
    return Variable(v, g)


def constant(data: Any, dtype: Any = None, name: str | None = None, downcast: bool = True) -> Constant:
    g = gcg()
    arr = _data(data, dtype, downcast, "constant")
    v = g.ir.core.add_constant(g._g, arr, g.unique_name(name))
    return Constant(v, g)


def graph_input(shape: Any, dtype: Any, name: str | None = None, by_ref: bool = False, **_: Any) -> Tensor:
    g = gcg()
    v = g._g.add_input(TensorSpec(tuple(shape), as_dtype(dtype)), g.unique_name(name), by_ref=by_ref)
    return Tensor(v, g)


class _Stream:
    def __init__(self, spec: TensorSpec, name: str, direction: str) -> None:
        self.spec = spec
        self.name = name
        self.direction = direction

    @property
    def shape(self) -> tuple[int, ...]:
        return self.spec.shape

    @property
    def dtype(self) -> DType:
        return self.spec.dtype

    @property
    def tensor_id(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self.name} {self.dtype!r} {self.shape}]"


class HostToDeviceStream(_Stream):
    pass


class DeviceToHostStream(_Stream):
    pass


def _stream(cls: type, shape: Any, dtype: Any, name: str | None, direction: str) -> Any:
    g = gcg()  # streams belong to the Ir (PopXL puts their tensors in the main graph), whatever graph is open
    base = name or f"{direction}_stream"
    n, k = base, 1
    while n in g.ir.core.streams:
        n = f"{base}__{k}"
        k += 1
    spec = TensorSpec(tuple(shape), as_dtype(dtype))
    if spec.nbytes > MAX_BYTES:
        raise ValueError(f"{direction}_stream {base!r}: shape {spec.shape} of {spec.dtype.name} is {spec.nbytes} "
                         f"bytes per step, more than any host can address ({MAX_BYTES}); check the shape")
    g.ir.core.add_stream(n, spec, direction)  # type: ignore[arg-type]
    s = cls(spec, n, direction)
    g.ir._stream_handles[n] = s
    return s


def h2d_stream(shape: Any, dtype: Any, name: str | None = None) -> HostToDeviceStream:
    return _stream(HostToDeviceStream, shape, dtype, name, "h2d")


def d2h_stream(shape: Any, dtype: Any, name: str | None = None) -> DeviceToHostStream:
    return _stream(DeviceToHostStream, shape, dtype, name, "d2h")
