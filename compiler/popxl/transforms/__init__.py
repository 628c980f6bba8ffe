"""popxl.transforms: graph transforms (autodiff)."""
from .autodiff import ExpectedConnection, GradGraphInfo, autodiff

__all__ = ["ExpectedConnection", "GradGraphInfo", "autodiff"]
