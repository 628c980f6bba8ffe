"""The IDX file format (MNIST and Fashion-MNIST), raw or gzip-compressed.

IDX: two zero bytes, a type code, the number of dimensions, then each dimension as a big-endian
uint32, then the data in big-endian order.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
          0x0E: np.dtype(">f8")}


class IDXError(ValueError):
    pass


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise IDXError(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise IDXError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    dt, nd = np.dtype(_TYPES[raw[2]]), raw[3]
    head = 4 + 4 * nd
    if len(raw) < head:
        raise IDXError(f"{path}: truncated header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd))
    need = int(np.prod(dims)) * dt.itemsize
    if len(raw) - head != need:
        raise IDXError(f"{path}: expected {need} data bytes for shape {dims}, found {len(raw) - head}")
    return np.frombuffer(raw, dtype=dt, offset=head).reshape(dims).astype(dt.newbyteorder("="))


def write_idx(path: str | Path, arr: np.ndarray, compress: bool | None = None) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
    arr = np.asarray(arr)
    code = codes[arr.dtype]
    data = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data += arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
