"""FusedKernel: many elementwise ops as one loop.

attrs:
  expr      an `Expr` whose `input` nodes index the op's inputs by position and whose
            outputs are the op's results in `op.results` order;
  shape     the iteration shape (every full-size input and output has it; other
            inputs broadcast numpy-style, e.g. scalars and biases);
  members   labels of the ops that were fused (for printing and debugging).
Nodes that depend only on scalar inputs are uniform: backends compute them once,
before the loop, and store uniform (shape ()) results once, after it (AdamUpdater's
in-place step increment is such a result).
The fuser creates these ops with Graph.make_op and explicit modifies/aliases.
"""
from __future__ import annotations

from typing import Any

from compiler.ir import TensorSpec

from .primitives import Expr, Node, Prim
from .registry import OpDef, register


def inline_expr(e: Expr, sub: Expr, args: list[int]) -> list[int]:
    """Copy `sub` into `e`, its input i bound to node `args[i]`; returns sub's outputs as nodes of e."""
    remap: dict[int, int] = {}
    for i, n in enumerate(sub.nodes):
        if n.prim is Prim.input:
            remap[i] = args[n.attr]
        else:
            e.nodes.append(Node(n.prim, tuple(remap[a] for a in n.args), n.dtype, n.attr))
            remap[i] = len(e.nodes) - 1
    return [remap[o] for o in sub.outputs]


def _infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [TensorSpec(sh, dt) for sh, dt in a["out_specs"]]


def _decompose(e: Expr, n: dict[str, int], s: dict[str, TensorSpec], a: dict[str, Any]) -> list[int]:
    return inline_expr(e, a["expr"], list(n.values()))


register(OpDef(
    kind="FusedKernel", formula="results = expr(inputs), one loop over attrs['shape']",
    infer=_infer, decompose=_decompose, elementwise=True, pure=False,
))
