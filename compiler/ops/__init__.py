"""The op registry. Importing this package registers every op kind."""
from . import (collectives, control, elementwise, elementwise_more, fused, inplace_variants,  # noqa: F401
               matmul_epilogue, movement, multi_kernel, nll, nn, reductions, var_updates)
from .primitives import Expr, Node, Prim, evaluate
from .registry import OPS, OpDef, OpError, emit, expr_for, get, register, run_reference

movement.register_views()  # after the kinds they mirror
inplace_variants.register_inplace_variants()

__all__ = ["Expr", "Node", "Prim", "evaluate", "OPS", "OpDef", "OpError", "emit", "expr_for", "get",
           "register", "run_reference"]
