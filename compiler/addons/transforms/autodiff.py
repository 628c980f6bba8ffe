"""popxl_addons.transforms.autodiff: where popxl.addons keeps its autodiff functions."""
from ..autodiff import autodiff, autodiff_with_accumulation

__all__ = ["autodiff", "autodiff_with_accumulation"]
