"""Element types: one table mapping each dtype to its numpy, LLVM, C, C++ (Poplar) and ONNX names."""
from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import numpy as np


@functools.cache
def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        # importing ml_dtypes costs ~0.4 s of CPU (measured): only programs that touch bfloat16 pay it
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


@dataclass(frozen=True)
class _Info:
    numpy_name: str  # the numpy dtype's name (bfloat16's comes from ml_dtypes, imported on first use)
    llvm: str  # llvmlite type name for storage
    c: str  # C type used in the emitted header
    poplar: str  # poplar::Type constant
    onnx: int  # onnx.TensorProto enum value
    is_float: bool
    is_signed: bool

    @property
    def numpy(self) -> np.dtype:
        return _numpy_dtype(self.numpy_name)


class DType(enum.Enum):
    bool = "bool"
    int8 = "int8"
    uint8 = "uint8"
    int16 = "int16"
    uint16 = "uint16"
    int32 = "int32"
    uint32 = "uint32"
    int64 = "int64"
    uint64 = "uint64"
    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"
    float64 = "float64"

    # --- table access -------------------------------------------------
    @property
    def info(self) -> _Info:
        return _TABLE[self]

    @property
    def numpy(self) -> np.dtype:
        return _TABLE[self].numpy

    @property
    def itemsize(self) -> int:
        return _TABLE[self].numpy.itemsize

    @property
    def is_float(self) -> bool:
        return _TABLE[self].is_float

    @property
    def is_int(self) -> bool:
        return not _TABLE[self].is_float and self is not DType.bool

    @property
    def is_signed(self) -> bool:
        return _TABLE[self].is_signed

    # PopXL's names for the same facts (popxl.dtypes.dtype)
    @property
    def is_floating_point(self) -> bool:
        return _TABLE[self].is_float

    @property
    def is_complex(self) -> bool:
        return False

    def as_numpy(self) -> np.dtype:
        return _TABLE[self].numpy

    @classmethod
    def as_dtype(cls, x: object) -> "DType":
        """PopXL's dtype.as_dtype: from a DType, a name, a numpy dtype or array, a Python type or a torch
        dtype; ValueError for anything else (as PopXL)."""
        return _popxl_as_dtype(x)

    def __repr__(self) -> str:
        return f"popxl.dtypes.{self.name}"

    __str__ = __repr__

    @staticmethod
    def from_numpy(dt: np.dtype | type | str) -> "DType":
        dt = np.dtype(dt)
        d = DType.__members__.get(dt.name)  # by name first: comparing with bfloat16 would import ml_dtypes
        if d is not None and d.numpy == dt:
            return d
        raise TypeError(
            f"numpy dtype {dt} has no equivalent dtype here; supported: "
            + ", ".join(d.name for d in DType)
        )


_TABLE: dict[DType, _Info] = {
    DType.bool: _Info("bool", "i8", "uint8_t", "poplar::BOOL", 9, False, False),
    DType.int8: _Info("int8", "i8", "int8_t", "poplar::SIGNED_CHAR", 3, False, True),
    DType.uint8: _Info("uint8", "i8", "uint8_t", "poplar::UNSIGNED_CHAR", 2, False, False),
    DType.int16: _Info("int16", "i16", "int16_t", "poplar::SHORT", 5, False, True),
    DType.uint16: _Info("uint16", "i16", "uint16_t", "poplar::UNSIGNED_SHORT", 4, False, False),
    DType.int32: _Info("int32", "i32", "int32_t", "poplar::INT", 6, False, True),
    DType.uint32: _Info("uint32", "i32", "uint32_t", "poplar::UNSIGNED_INT", 12, False, False),
    DType.int64: _Info("int64", "i64", "int64_t", "poplar::LONGLONG", 7, False, True),
    DType.uint64: _Info("uint64", "i64", "uint64_t", "poplar::UNSIGNED_LONGLONG", 13, False, False),
    DType.float16: _Info("float16", "half", "uint16_t /* IEEE half */", "poplar::HALF", 10, True, True),
    DType.bfloat16: _Info("bfloat16", "bfloat", "uint16_t /* bfloat16 */",
                          "poplar::HALF /* no bfloat16 on IPU */", 16, True, True),
    DType.float32: _Info("float32", "float", "float", "poplar::FLOAT", 1, True, True),
    DType.float64: _Info("float64", "double", "double", "poplar::FLOAT /* no double on IPU */", 11, True, True),
}

# popxl exposes the dtypes as module attributes: popxl.float32, popxl.dtypes.float16 ...
bool_ = DType.bool
int8, uint8, int16, uint16 = DType.int8, DType.uint8, DType.int16, DType.uint16
int32, uint32, int64, uint64 = DType.int32, DType.uint32, DType.int64, DType.uint64
float16, bfloat16, float32, float64 = DType.float16, DType.bfloat16, DType.float32, DType.float64
half, float, double = DType.float16, DType.float32, DType.float64


def as_dtype(x: "DType | np.dtype | type | str") -> DType:
    if isinstance(x, DType):
        return x
    if isinstance(x, str) and x in DType.__members__:
        return DType[x]
    return DType.from_numpy(x)


def _popxl_as_dtype(x: object) -> DType:
    import builtins

    if isinstance(x, DType):
        return x
    py = {builtins.bool: DType.bool, builtins.float: DType.float32, builtins.int: DType.int64}
    if isinstance(x, type) and x in py:
        return py[x]
    if isinstance(x, str):
        name = x[len("torch."):] if x.startswith("torch.") else x
        if name in DType.__members__:
            return DType[name]
    if type(x).__module__ == "torch":  # a torch.dtype, matched by name
        return _popxl_as_dtype(str(x))
    try:
        return DType.from_numpy(x if isinstance(x, type) else getattr(x, "dtype", x))  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"Can not convert {x!r} to a popxl dtype.") from None
