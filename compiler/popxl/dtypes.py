"""popxl.dtypes: the dtype class (`dtype`, our `DType`), its constants and PopXL's lookup tables.

float8 is not supported here: `float8_143`/`float8_152` exist so that code naming them imports,
and any use of them raises a ValueError saying so.
"""
from __future__ import annotations

import numpy as np

from compiler.ir.dtypes import DType, as_dtype

dtype = DType

bool = DType.bool
int8, uint8, int16, uint16 = DType.int8, DType.uint8, DType.int16, DType.uint16
int32, uint32, int64, uint64 = DType.int32, DType.uint32, DType.int64, DType.uint64
float16, bfloat16, float32, float64 = DType.float16, DType.bfloat16, DType.float32, DType.float64
half, float, double = DType.float16, DType.float32, DType.float64

_STR_TO_POPXL: dict[str, DType] = {d.name: d for d in DType}


def _torch_table() -> dict:
    try:
        import torch
    except ImportError:  # torch is optional: without it the table is empty
        return {}
    # torch has no uint16/32/64 tensors in general use; PopXL maps the rest by name, those with a numpy
    # counterpart only (torch.bfloat16 has none; as_dtype still takes it)
    return {getattr(torch, d.name): d for d in DType if d.name in ("uint8",) or
            (not d.name.startswith("u") and d.name != "bfloat16" and hasattr(torch, d.name))}


def __getattr__(name: str) -> dict:
    """PopXL's numpy and torch lookup tables, built on first use: importing torch (~1 s) or ml_dtypes
    (bfloat16, ~0.4 s) is not a cost every program should pay when it imports popxl."""
    if name == "_NP_TO_POPXL":
        return {d.numpy: d for d in DType}
    if name == "_PT_TO_POPXL":
        return _torch_table()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _UnsupportedDType:
    """A PopXL dtype name this compiler has no kernels for (float8)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _refuse(self) -> ValueError:
        return ValueError(f"popxl.{self.name} is not supported by this compiler (no float8 arithmetic on the host "
                          "CPU); use float16 or float32")

    def as_numpy(self) -> np.dtype:
        raise self._refuse()

    @property
    def numpy(self) -> np.dtype:
        raise self._refuse()

    def __repr__(self) -> str:
        return f"popxl.dtypes.{self.name}"


float8_143 = _UnsupportedDType("float8_143")
float8_152 = _UnsupportedDType("float8_152")
np_dtype_float8_143 = np.dtype([("float8_143", "u1")])
np_dtype_float8_152 = np.dtype([("float8_152", "u1")])

__all__ = ["dtype", "DType", "as_dtype", "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
           "uint64", "float16", "bfloat16", "float32", "float64", "half", "float", "double", "float8_143",
           "float8_152"]
