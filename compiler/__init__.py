"""An optimizer / training-step graph compiler with PopXL-compatible front ends.

The front ends and the driver load on first use (`compiler.popxl`, `compiler.compile`), so that
importing a lower layer such as `compiler.ir` loads no front end.
"""
from __future__ import annotations

import importlib
from typing import Any

from .version import __version__

__all__ = ["addons", "popxl", "CompileOptions", "compile", "__version__"]

_LAZY = {"addons": ("compiler.addons", None), "popxl": ("compiler.popxl", None),
         "CompileOptions": ("compiler.options", "CompileOptions"), "compile": ("compiler.driver", "compile")}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'compiler' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    return mod if attr is None else getattr(mod, attr)
