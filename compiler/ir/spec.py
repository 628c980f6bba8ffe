"""TensorSpec: the static type of a tensor (shape and dtype)."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

from .dtypes import DType, as_dtype


@dataclass(frozen=True)
class TensorSpec(Mapping):
    """Shape and dtype of a tensor; hashable, and a Mapping like popxl's TensorSpec."""

    shape: tuple[int, ...]
    dtype: DType
    meta_shape: tuple[int, ...] = ()

    def __init__(self, shape: Any, dtype: Any, meta_shape: Any = ()) -> None:
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"TensorSpec shape {shape} has a negative dimension")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", as_dtype(dtype))
        object.__setattr__(self, "meta_shape", tuple(int(s) for s in meta_shape))

    @property
    def nelms(self) -> int:
        return prod(self.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.nelms * self.dtype.itemsize

    def __str__(self) -> str:
        return f"[{self.shape} {self.dtype.name}]"

    # Mapping interface (popxl.TensorSpec is a Mapping of shape/dtype/meta_shape)
    def __getitem__(self, k: str) -> Any:
        if k in ("shape", "dtype", "meta_shape"):
            return getattr(self, k)
        raise KeyError(k)

    def __iter__(self) -> Iterator[str]:
        return iter(("shape", "dtype", "meta_shape"))

    def __len__(self) -> int:
        return 3

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.meta_shape))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorSpec):
            return NotImplemented
        return (self.shape, self.dtype, self.meta_shape) == (other.shape, other.dtype, other.meta_shape)
