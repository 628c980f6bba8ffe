"""popxl.testing: dtype lists for parametrising tests."""
from __future__ import annotations

from compiler.ir.dtypes import DType


def get_all_dtypes() -> list[DType]:
    return list(DType)


def get_all_int_dtypes(include_signed: bool = True, include_unsigned: bool = True) -> list[DType]:
    return [d for d in DType if d.is_int and ((d.is_signed and include_signed) or (not d.is_signed and include_unsigned))]
