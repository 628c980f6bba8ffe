"""popxl_addons.transforms (as in popxl.addons, `transforms.autodiff` is the function; the module
stays importable as popxl_addons.transforms.autodiff)."""
from .autodiff import autodiff, autodiff_with_accumulation

__all__ = ["autodiff", "autodiff_with_accumulation"]
