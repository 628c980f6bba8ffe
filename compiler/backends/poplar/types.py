"""Element types on the IPU: the poplar::Type and host C++ type of each dtype, and typed literals.

The IPU has no float64 or bfloat16 (and PopLibs elementwise support for 64-bit integers is thin), so
those dtypes are refused with a message saying what to do instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compiler.ir import DType


class PoplarError(NotImplementedError):
    """The program uses something the Poplar emitter cannot express; the message says what to change."""


@dataclass(frozen=True)
class IpuType:
    poplar: str  # the poplar::Type constant
    host: str  # the C++ type of one element in host buffers and initial values
    setter: str  # helper of the emitted program that sets initial values of this type


_TABLE: dict[DType, IpuType] = {
    DType.float32: IpuType("FLOAT", "float", "initialised"),
    DType.float16: IpuType("HALF", "std::uint16_t", "initialisedHalf"),  # IEEE half bit patterns
    DType.int32: IpuType("INT", "int", "initialised"),
    DType.uint32: IpuType("UNSIGNED_INT", "unsigned", "initialised"),
    DType.int16: IpuType("SHORT", "short", "initialised"),
    DType.uint16: IpuType("UNSIGNED_SHORT", "unsigned short", "initialised"),
    DType.int8: IpuType("SIGNED_CHAR", "signed char", "initialised"),
    DType.uint8: IpuType("UNSIGNED_CHAR", "unsigned char", "initialised"),
    DType.bool: IpuType("BOOL", "unsigned char", "initialisedBool"),  # one byte per element
    DType.int64: IpuType("LONGLONG", "long long", "initialised"),
}

_ADVICE = {
    DType.float64: "the IPU has no float64; build the program in float32 (or cast to float32 before exporting)",
    DType.bfloat16: "the IPU has no bfloat16; use float16 or float32",
    DType.uint64: "Poplar has no elementwise support for uint64; use int32 or uint32",
}


def ipu_type(dt: DType, where: str = "") -> IpuType:
    """The IPU type of `dt`, or a PoplarError naming `where` (a tensor) and the alternative."""
    if dt in _TABLE:
        return _TABLE[dt]
    at = f" ({where})" if where else ""
    raise PoplarError(f"{dt.name} tensors cannot be placed on an IPU{at}: {_ADVICE.get(dt, 'unsupported dtype')}")


def poplar_type(dt: DType, where: str = "") -> str:
    return ipu_type(dt, where).poplar


def initial_call(dt: DType, shape: str, values: str, debug: str, where: str = "") -> str:
    """The emitted program's helper call making a tensor with initial values, e.g.
    `initialised<float>(graph, FLOAT, {2, 2}, {1.0f, ...}, "name")` (`values`: a braced list or a vector)."""
    ipu = ipu_type(dt, where)
    tmpl = f"<{ipu.host}>" if ipu.setter == "initialised" else ""
    return f"{ipu.setter}{tmpl}(graph, {ipu.poplar}, {shape}, {values}, {debug})"


def float_literal(x: float) -> str:
    """A C++ float literal that parses back to exactly float32(x)."""
    f = float(np.float32(x))
    if math.isnan(f):
        return "std::numeric_limits<float>::quiet_NaN()"
    if math.isinf(f):
        return ("-" if f < 0 else "") + "std::numeric_limits<float>::infinity()"
    text = np.format_float_positional(np.float32(f), unique=True, trim="0") if 1e-4 <= abs(f) < 1e7 or f == 0 else \
        np.format_float_scientific(np.float32(f), unique=True, trim="0")
    if "." not in text and "e" not in text:
        text += ".0"
    if text.endswith("."):
        text += "0"
    return text + "f"


def const_expr(value: object, dt: DType) -> str:
    """A popops::expr constant of dtype `dt` holding `value` rounded to `dt` first (as the reference does).

    float16 constants are written as the exact half value (a float literal that converts to half without
    a second rounding) inside ConstHalf; small integer types are integer constants cast to their type.
    """
    v = np.asarray(value, dtype=dt.numpy)
    if dt == DType.float32:
        return f"pe::Const({float_literal(float(v))})"
    if dt == DType.float16:
        return f"pe::ConstHalf({float_literal(float(v))})"
    if dt == DType.bool:
        return f"pe::Const({'true' if bool(v) else 'false'})"
    if dt == DType.int32:
        return f"pe::Const({int(v)})"
    if dt == DType.uint32:
        return f"pe::Const({int(v)}u)"
    if dt == DType.int64:
        return f"pe::Const({int(v)}LL)"
    ipu = ipu_type(dt)
    return f"pe::Cast(pe::Const({int(v)}), {ipu.poplar})"


def host_values(arr: np.ndarray, dt: DType) -> list[str]:
    """Element literals of `arr` in the host representation (half as 0x bit patterns)."""
    flat = np.ascontiguousarray(arr, dtype=dt.numpy).reshape(-1)
    if dt == DType.float16:
        return [f"0x{int(b):04x}" for b in flat.view(np.uint16)]
    if dt == DType.float32:
        return [float_literal(float(x)) for x in flat]
    if dt == DType.bool:
        return ["1" if x else "0" for x in flat]
    if dt == DType.uint32:
        return [f"{int(x)}u" for x in flat]
    if dt == DType.int64:
        return [f"{int(x)}LL" for x in flat]
    return [str(int(x)) for x in flat]


def host_bytes(arr: np.ndarray, dt: DType) -> bytes:
    """Raw little-endian host bytes of `arr` (what engine.writeTensor/connectStream expect)."""
    ipu_type(dt)
    return np.ascontiguousarray(arr, dtype=dt.numpy).astype(dt.numpy.newbyteorder("<"), copy=False).tobytes()
