"""Host buffers for compiled code: 64-byte aligned allocation, and the checks on caller-owned arrays."""
from __future__ import annotations

import numpy as np

ALIGN = 64


def aligned_empty(nbytes: int, align: int = ALIGN) -> np.ndarray:
    """`nbytes` uninitialised bytes whose address is a multiple of `align` (allocated once, reused)."""
    raw = np.empty(nbytes + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + nbytes]


def describe_bad_array(what: str, arr: object, shape: tuple[int, ...], dtype: np.dtype, writable: bool) -> str:
    """Why `arr` cannot be handed to compiled code as `what` (an empty string if it can)."""
    if not isinstance(arr, np.ndarray):
        return f"{what}: expected a numpy array, got {type(arr).__name__}"
    if arr.shape != shape or arr.dtype != dtype:
        return f"{what}: expected {dtype}{shape}, got {arr.dtype}{arr.shape}"
    if not arr.flags.c_contiguous:
        return f"{what}: the array must be C-contiguous (pass np.ascontiguousarray(a) and copy results back)"
    if writable and not arr.flags.writeable:
        return f"{what}: the array is read-only; compiled code updates it in place (pass a writeable copy)"
    return ""


def first_overlap(spans: list[tuple[int, int, int]], written: set[int]) -> tuple[int, int] | None:
    """Two indices whose byte ranges [lo, hi) overlap while at least one of them is written, or None."""
    spans = sorted(s for s in spans if s[1] > s[0])
    for i, (_lo, hi, k) in enumerate(spans):
        for lo2, _hi2, k2 in spans[i + 1:]:
            if lo2 >= hi:
                break
            if k in written or k2 in written:
                return (k, k2) if k < k2 else (k2, k)
    return None
