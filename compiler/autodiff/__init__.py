"""Reverse-mode differentiation of IR graphs. Gradient rules live with each op's definition
(`grad=` in compiler/ops/); the rule context is context.GradContext; Call's rule is in call.py."""
from .call import sync_call_sites
from .context import GradContext
from .transform import AutodiffError, GradInfo, autodiff

__all__ = ["AutodiffError", "GradContext", "GradInfo", "autodiff", "sync_call_sites"]
