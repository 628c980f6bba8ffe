"""popxl.Module: a callable whose `build` method is what create_graph traces."""
from __future__ import annotations

from typing import Any


class Module:
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.build(*args, **kwargs)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define build(...)")
