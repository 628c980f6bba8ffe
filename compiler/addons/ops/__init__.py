"""popxl.addons.ops."""
from .cross_entropy import cross_entropy_with_grad

__all__ = ["cross_entropy_with_grad"]
