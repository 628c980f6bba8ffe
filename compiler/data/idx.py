"""The IDX file format (MNIST and Fashion-MNIST), raw or gzip-compressed, plus batching.

IDX: two zero bytes, a type code, the number of dimensions, then each dimension as a big-endian
uint32, then the data in big-endian order.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

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


@dataclass
class Dataset:
    images: np.ndarray  # (N, rows, cols) uint8
    labels: np.ndarray  # (N,) uint8

    def __len__(self) -> int:
        return len(self.labels)


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(f"{root}: no {stem}[.gz]")


def load_mnist(root: str | Path, split: str = "train") -> Dataset:
    """MNIST-format files from `root` (train-images-idx3-ubyte[.gz] etc.; split 'train' or 't10k'/'test')."""
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise IDXError(f"{root}: {prefix} images {images.shape} and labels {labels.shape} do not match")
    return Dataset(images, labels)


def batches(ds: Dataset, batch_size: int, mean: float, std: float, shuffle: bool = True, seed: int = 0,
            drop_last: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images as normalised float32, labels as int32) batches; a seeded permutation when shuffling."""
    order = np.random.default_rng(seed).permutation(len(ds)) if shuffle else np.arange(len(ds))
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    scale = np.float32(1.0 / (255.0 * std))
    shift = np.float32(mean / std)
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        x = ds.images[idx].astype(np.float32) * scale - shift
        yield x, ds.labels[idx].astype(np.int32)


def stats(ds: Dataset) -> tuple[float, float]:
    """Mean and standard deviation of the pixels scaled to [0, 1] (normalise with the training set's)."""
    x = ds.images.astype(np.float64) / 255.0
    return float(x.mean()), float(x.std())
