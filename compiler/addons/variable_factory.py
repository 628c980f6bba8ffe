"""VariableFactory: creates a main-graph variable for a subgraph's named variable input."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from compiler import popxl

from .dot_tree import DotTree, NamedTensors


class VariableFactory:
    def __init__(self, data_iter: Callable[[], Any] | Any, dtype: Any = None, name: str | None = None,
                 by_ref: bool = False, replica_grouping: Any = None) -> None:
        self._callable = callable(data_iter)
        self._src = data_iter if self._callable else iter(data_iter)
        # popxl.addons draws once as a test and once more when peeking; the first init returns the 2nd draw
        try:
            self._test = self._draw()
        except Exception as e:  # popxl.addons reports a data_iter that cannot give data as a ValueError
            raise ValueError(f"VariableFactory({name!r}): data_iter did not give the initial data "
                             f"({type(e).__name__}: {e}); pass a callable with no arguments or an iterable "
                             "that returns array-like data") from e
        self._peek = self._draw()
        first = np.asarray(self._peek)
        self.dtype = popxl.dtypes.as_dtype(dtype) if dtype is not None else popxl.dtypes.as_dtype(
            np.float32 if first.dtype == np.float64 else np.int32 if first.dtype == np.int64 else first.dtype)
        self.shape = first.shape
        self.name = name
        self.by_ref = by_ref

    def _draw(self) -> Any:
        return self._src() if self._callable else next(self._src)  # type: ignore[operator,call-overload]

    def _next(self) -> np.ndarray:
        data, self._peek = self._peek, None
        if data is None:
            data = self._draw()
        return np.asarray(data)

    def create_var(self, name: str | None = None) -> Any:
        data = self._next().astype(self.dtype.numpy)
        return popxl.variable(data, self.dtype, name or self.name)

    def create_tensor(self, name: str | None = None) -> Any:  # init_zero / init_undef
        return popxl.ops.init(self.shape, self.dtype, name or self.name)


class NamedVariableFactories(DotTree):
    def init(self, prefix: str | None = None, empty: bool = False, **_: Any) -> NamedTensors:
        """Create a main-graph variable per factory, in sorted key order."""
        facts = self.to_dict()
        return NamedTensors.from_dict(  # type: ignore[return-value]
            {key: facts[key].create_var(f"{prefix}.{key}" if prefix else key) for key in sorted(facts)})

    def init_zero(self, prefix: str | None = None) -> NamedTensors:
        facts = self.to_dict()
        return NamedTensors.from_dict(  # type: ignore[return-value]
            {key: facts[key].create_tensor(f"{prefix}.{key}" if prefix else key) for key in sorted(facts)})

    init_undef = init_zero
