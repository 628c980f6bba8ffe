"""A small separable MNIST-format data set written as IDX files (for the loader and training tests)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.data import write_idx


def write_synthetic(root: Path, n_train: int = 800, n_test: int = 160, seed: int = 0) -> None:
    """Ten classes, each a bright 6x6 patch at its own place on a noisy 28x28 image; train images gzip'd,
    labels raw, so both encodings are read."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = 2 + (c // 5) * 12, 2 + (c % 5) * 5
            images[i, r:r + 6, col:col + 6] = 230
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
