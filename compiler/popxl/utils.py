"""popxl.utils: host data conversion (PopXL's `to_numpy` rules)."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir.dtypes import DType

downcast_np_dtypes = {
    np.dtype("int64"): np.dtype("int32"),
    np.dtype("uint64"): np.dtype("uint32"),
    np.dtype("float64"): np.dtype("float32"),
}


def to_numpy(x: Any, dtype: DType | None = None, downcast: bool = True, copy: bool = True,
             log2_scale: int | None = None, nan_on_overflow: bool | None = None) -> np.ndarray:
    """Host data as a C-ordered numpy array: `dtype` if given, else numpy's inference with 64-bit types
    downcast to 32-bit (when `downcast`). A torch tensor is read through .detach().numpy()."""
    if log2_scale is not None or nan_on_overflow is not None:
        raise RuntimeError("log2_scale and nan_on_overflow apply only to float8 dtypes, which this compiler does "
                           "not support")
    if type(x).__module__.startswith("torch"):
        x = x.detach().numpy()
    if isinstance(x, np.memmap) and not copy:
        if dtype is not None and dtype.as_numpy() != x.dtype:
            raise ValueError("a memory-mapped array needs dtype=None or its own dtype")
        if x.dtype in downcast_np_dtypes:
            raise ValueError(f"a memory-mapped array of dtype {x.dtype} would have to be downcast (copied)")
        return x
    arr = np.asarray(x)
    if dtype is not None:
        arr = arr.astype(DType.as_dtype(dtype).numpy, copy=False)
    elif downcast and arr.dtype in downcast_np_dtypes:
        arr = arr.astype(downcast_np_dtypes[arr.dtype])
    if copy or not arr.flags.c_contiguous:
        return np.array(arr, order="C", copy=True)
    return arr  # (np.ascontiguousarray would turn a 0-d array into 1-d)


def _no_float8(name: str) -> ValueError:
    return ValueError(f"popxl.utils.{name}: float8 is not supported by this compiler (no float8 arithmetic on the "
                      "host CPU); keep the data in float16 or float32")


def host_pow2scale_cast_to_fp8(src: Any, dtype: Any = None, log2_scale: int = 0, nan_on_overflow: bool = True
                               ) -> np.ndarray:
    """PopXL's host float -> float8 conversion: refused (the name exists so PopXL code imports)."""
    raise _no_float8("host_pow2scale_cast_to_fp8")


def host_pow2scale_cast_from_fp8(src: Any, dtype: Any = None, log2_scale: int = 0) -> np.ndarray:
    """PopXL's host float8 -> float conversion: refused (the name exists so PopXL code imports)."""
    raise _no_float8("host_pow2scale_cast_from_fp8")


__all__ = ["downcast_np_dtypes", "to_numpy", "host_pow2scale_cast_to_fp8", "host_pow2scale_cast_from_fp8"]
