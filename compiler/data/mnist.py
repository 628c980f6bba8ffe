"""MNIST-format data sets (MNIST, Fashion-MNIST) from IDX files: loading, normalisation statistics,
seeded shuffled batches. No torch or torchvision needed."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .idx import IDXError, read_idx


@dataclass
class Dataset:
    images: np.ndarray  # (N, rows, cols) uint8
    labels: np.ndarray  # (N,) uint8

    def __len__(self) -> int:
        return len(self.labels)


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{root}: no {stem} or {stem}.gz")


def load_mnist(root: str | Path, split: str = "train") -> Dataset:
    """MNIST-format files from `root` (train-images-idx3-ubyte[.gz] etc.; split 'train' or 't10k'/'test')."""
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(f"{root}: {prefix} images must be uint8 of shape (N, rows, cols), got {images.dtype}{images.shape}")
    if labels.ndim != 1 or len(images) != len(labels):
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


def stats(ds: Dataset, chunk: int = 4096) -> tuple[float, float]:
    """Mean and standard deviation of the pixels scaled to [0, 1] (normalise with the training set's),
    from exact integer sums over chunks (no float copy of the whole set)."""
    total = squares = 0
    for i in range(0, len(ds.images), chunk):
        c = ds.images[i:i + chunk].astype(np.int64)
        total += int(c.sum())
        squares += int((c * c).sum())
    n = ds.images.size * 255.0
    mean = total / n
    return mean, float(np.sqrt(max(squares / (n * 255.0) - mean * mean, 0.0)))
