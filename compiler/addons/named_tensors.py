"""popxl_addons.named_tensors."""
from .dot_tree import NamedTensors

__all__ = ["NamedTensors"]
