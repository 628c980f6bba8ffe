"""Reverse-mode differentiation of IR graphs (grad rules live with the ops: compiler/ops/grads.py)."""
from .transform import AutodiffError, GradInfo, autodiff

__all__ = ["AutodiffError", "GradInfo", "autodiff"]
