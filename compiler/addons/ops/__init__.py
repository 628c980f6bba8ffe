"""popxl.addons.ops."""
from ..streams import host_store
from .cross_entropy import cross_entropy, cross_entropy_with_grad

__all__ = ["cross_entropy", "cross_entropy_with_grad", "host_store"]
