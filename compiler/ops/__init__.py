"""The op registry. Importing this package registers every op kind."""
from . import collectives, control, elementwise, fused, multi_kernel, nn, var_updates  # noqa: F401  (registration side effects)
from .primitives import Expr, Node, Prim, evaluate
from .registry import OPS, OpDef, OpError, emit, expr_for, get, register, run_reference

__all__ = ["Expr", "Node", "Prim", "evaluate", "OPS", "OpDef", "OpError", "emit", "expr_for", "get",
           "register", "run_reference"]
