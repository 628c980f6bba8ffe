"""Slicing, concatenation, gathering and Tensor.__getitem__."""
from __future__ import annotations

import builtins
from typing import Any, Iterable, Sequence

import numpy as np

from compiler.ir import DType

from ..tensor import Tensor
from ._emit import emit_op, out


def _as_list(x: Any, n: int | None = None) -> list[Any]:
    if x is None:
        return [None] * (n or 0)
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _slice_attrs(t: Tensor, start: Any, stop: Any, step: Any, axis: Any) -> dict[str, Any]:
    n = max(len(_as_list(v)) for v in (start, stop, step, axis)) if any(
        v is not None for v in (start, stop, step, axis)) else 0
    starts, stops, steps = _as_list(start, n), _as_list(stop, n), _as_list(step, n)
    axes = _as_list(axis, n) if axis is not None else list(range(n))
    if not (len(starts) == len(stops) == len(steps) == len(axes)):
        raise ValueError(f"slice({t.name!r}): start, stop, step and axis must have the same length, got "
                         f"{len(starts)}, {len(stops)}, {len(steps)}, {len(axes)}")
    return {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(1 if s is None else int(s) for s in steps),
            "axes": tuple(int(a) for a in axes)}


def slice(t: Tensor, start: Any = None, stop: Any = None, step: Any = None, axis: Any = None) -> Tensor:
    """out = t[start:stop:step] along each axis in `axis` (default: the first len(start) axes); with no
    start, stop or step it is `t` itself (as PopXL: no op)."""
    if start is None and stop is None and step is None:
        return t
    return out(emit_op("Slice", {"x": t}, _slice_attrs(t, start, stop, step, axis), name="slice",
                       out_names=["slice_out"]))


def slice_(t: Tensor, start: Any = None, stop: Any = None, step: Any = None, axis: Any = None) -> Tensor:
    """slice as a PopXL view of t (see ops/views.py); with no start, stop or step it is `t` itself."""
    if start is None and stop is None and step is None:
        return t
    return out(emit_op("SliceInplace", {"x": t}, _slice_attrs(t, start, stop, step, axis), name="slice_",
                       out_names=["slice__out"]))


def _concat(kind: str, ts: Iterable[Tensor], axis: int) -> Tensor:
    ts = list(ts)
    return out(emit_op(kind, {f"in{i}": x for i, x in enumerate(ts)}, {"axis": int(axis)}, name="concat",
                       out_names=["concat_out"]))


def concat(ts: Iterable[Tensor], axis: int = 0) -> Tensor:
    """out = concatenate(ts, axis)."""
    return _concat("Concat", ts, axis)


def concat_(ts: Iterable[Tensor], axis: int = 0) -> Tensor:
    """concat as a PopXL view of its inputs (see ops/views.py)."""
    return _concat("ConcatInplace", ts, axis)


def gather(t: Tensor, indices: Any, axis: int = 0, available_memory_proportion: float | None = None,
           zero_OOR: bool = False) -> Tensor:
    """out = take(t, indices, axis). (available_memory_proportion is an IPU tiling hint: ignored here.)"""
    if zero_OOR:
        raise ValueError("gather(zero_OOR=True) is not supported by this compiler; out-of-range indices raise")
    if not isinstance(indices, Tensor):
        indices = t._ensure_tensor(np.asarray(indices), DType.int32)
    return out(emit_op("Gather", {"x": t, "indices": indices}, {"axis": int(axis)}, name="gather",
                       out_names=["gather_out"]))


def _basic(k: Any) -> bool:
    return isinstance(k, (int, builtins.slice)) and not isinstance(k, bool)


def getitem(t: Tensor, key: Any) -> Tensor:
    """PopXL's Tensor.__getitem__: ints and slices slice (an int drops its axis), an integer tensor or
    host array gathers along axis 0, a boolean one masks (False -> 0, same shape)."""
    from .math import where
    from .nn import reshape

    if _basic(key) or (isinstance(key, tuple) and key and all(_basic(k) for k in key)):
        keys: Sequence[Any] = key if isinstance(key, tuple) else (key,)
        if len(keys) > t.rank:
            raise IndexError(f"{t.name!r}[{key}]: too many indices for a tensor of rank {t.rank}")
        starts, stops, steps, dropped = [], [], [], []
        for i, k in enumerate(keys):
            if isinstance(k, int):
                n = t.shape[i]
                if not -n <= k < n:
                    raise IndexError(f"{t.name!r}[...]: index {k} is out of range for axis {i} of size {n}")
                k %= n
                starts.append(k), stops.append(k + 1), steps.append(1), dropped.append(i)
            else:
                starts.append(k.start), stops.append(k.stop), steps.append(k.step)
        y = slice(t, starts, stops, steps, list(range(len(keys))))
        if dropped:
            y = reshape(y, tuple(d for i, d in enumerate(y.shape) if i not in dropped))
        return y
    if isinstance(key, (bool, str, float)):
        raise TypeError(f"{t.name!r}[{key!r}]: only integers, slices, integer tensors and boolean tensors are "
                        f"valid indices, not {type(key).__name__}")
    if not isinstance(key, Tensor):
        arr = np.asarray(key)
        if arr.dtype.kind not in "biu":
            raise TypeError(f"{t.name!r}[...]: an index array must hold integers or booleans, got {arr.dtype}")
        key = t._ensure_tensor(arr, DType.bool if arr.dtype.kind == "b" else DType.int32)
    if key.dtype.is_int:
        return gather(t, key)
    if key.dtype == DType.bool:
        return where(key, t, t._ensure_tensor(0))
    raise TypeError(f"{t.name!r}[...]: an index tensor must be integer or bool, got {key.dtype.name}")
