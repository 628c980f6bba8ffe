"""Data loading without torch: IDX files (MNIST, Fashion-MNIST), normalisation, seeded batches."""
from .idx import IDXError, read_idx, write_idx
from .mnist import Dataset, batches, load_mnist, stats

__all__ = ["Dataset", "IDXError", "batches", "load_mnist", "read_idx", "stats", "write_idx"]
