"""Data loading without torch: IDX files (MNIST, Fashion-MNIST)."""
from .idx import Dataset, IDXError, batches, load_mnist, read_idx, write_idx

__all__ = ["Dataset", "IDXError", "batches", "load_mnist", "read_idx", "write_idx"]
