"""An optimizer / training-step graph compiler with PopXL-compatible front ends."""
from . import addons, popxl
from .driver import CompileOptions, compile

__version__ = "0.1.0"
__all__ = ["addons", "popxl", "CompileOptions", "compile", "__version__"]
