"""The autodiff transform: forward graph -> gradient graph, with PopXL's conventions.

- The gradient graph's inputs are the gradients of `grads_provided` (forward outputs, in that
  order) followed by the forward values the rules need (activations), in first-use order.
- Forward intermediates that the gradient graph needs become extra outputs of the forward graph
  (call the forward graph after running autodiff).
- Its outputs are the gradients of `grads_required` (forward inputs, default all of them), in order.
- Graphs that modify tensors in place are refused.
- A Call is differentiated through its callee's own gradient graph (made once per callee, or taken
  from `known`, PopXL's `called_graphs_grad_info`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from compiler.ir import Graph, Ir, Value
from compiler.ops import OpError, get

from . import call as _call_rule  # noqa: F401  (registers the gradient of Call)
from .context import GradContext


class AutodiffError(ValueError):
    """The graph cannot be differentiated as asked (the message says which op or tensor, and why)."""


@dataclass
class GradInfo:
    graph: Graph
    forward: Graph
    # (kind, forward value): "grad" = gradient of that forward output; "fwd" = the forward value itself
    expected_inputs: list[tuple[Literal["grad", "fwd"], Value]] = field(default_factory=list)
    expected_outputs: list[Value] = field(default_factory=list)  # gradients of these forward inputs


def _refuse_inplace(fwd: Graph) -> None:
    for op in fwd.ops:
        if op.modifies:
            names = ", ".join(repr(op.inputs[i].name) for i in op.modifies)
            raise AutodiffError(
                f"Autodiff cannot be used on graphs with inplace modifying ops: {op.label} in graph {fwd.id!r} "
                f"modifies {names}{f' (built at {op.source})' if getattr(op, 'source', None) else ''}; use the "
                "out-of-place op (e.g. ops.add instead of ops.add_) inside graphs you differentiate")


def _needs_grad(fwd: Graph, required: list[Value]) -> set[int]:
    """Ids of the forward values whose gradient contributes to a required input's gradient."""
    need = {v.id for v in required}
    for op in fwd.ops:
        if any(v.id in need for v in op.inputs):
            need |= {v.id for v in op.outputs if v.dtype.is_float}
    return need


def _check_args(fwd: Graph, provided: list[Value], required: list[Value]) -> None:
    for v in provided:
        if all(o is not v for o in fwd.outputs):
            raise AutodiffError(f"grads_provided: {v.name!r} is not an output of graph {fwd.id!r}; pass outputs of "
                                "the graph being differentiated")
        if not v.dtype.is_float:
            raise AutodiffError(f"grads_provided: {v.name!r} is {v.dtype.name}; gradients exist for float tensors only")
    for v in required:
        if all(i is not v for i in fwd.inputs):
            raise AutodiffError(f"grads_required: {v.name!r} is not an input of graph {fwd.id!r}; pass inputs of "
                                "the graph being differentiated")


def autodiff(ir: Ir, fwd: Graph, grads_provided: list[Value] | None = None,
             grads_required: list[Value] | None = None, name: str | None = None,
             known: dict[str, GradInfo] | None = None) -> GradInfo:
    """Build the gradient graph of `fwd`; `known` (forward graph id -> GradInfo) supplies the gradient
    graphs of called graphs and receives every gradient graph made here (this one included)."""
    _refuse_inplace(fwd)
    known = {} if known is None else known
    provided = [o for o in fwd.outputs if o.dtype.is_float] if grads_provided is None else list(grads_provided)
    required = list(fwd.inputs) if grads_required is None else list(grads_required)
    _check_args(fwd, provided, required)
    g = ir.new_graph(name or ir.unique_graph_id(f"{fwd.id.split('_subgraph')[0]}_grad"))
    info = GradInfo(g, fwd)
    ctx = GradContext(ir, fwd, g, info, _needs_grad(fwd, required), known)
    grads: dict[int, Value] = {}
    for v in provided:
        grads[v.id] = g.add_input(v.spec, f"grad_{v.name}")
        info.expected_inputs.append(("grad", v))
    for op in reversed(list(fwd.ops)):
        dys = [grads.get(v.id) for v in op.outputs]
        if all(d is None for d in dys) or not any(ctx.needs(v) for v in op.inputs):
            continue
        rule = get(op.kind).grad
        if rule is None:
            raise AutodiffError(f"no gradient rule for {op.kind} ({op.label} in graph {fwd.id!r}); add `grad=` to its "
                                "definition in compiler/ops/, or keep the op out of the differentiated graph")
        if len(op.outputs) == 1:
            dys = [dys[0]]
        try:
            dxs = rule(ctx, op, dys)
        except (OpError, NotImplementedError) as e:
            raise AutodiffError(f"gradient of {op.label} in graph {fwd.id!r}: {e}") from None
        for v, dx in zip(op.inputs, dxs):
            if dx is None or not ctx.needs(v):
                continue
            prev = grads.get(v.id)
            grads[v.id] = dx if prev is None else ctx.add(prev, dx)
    outs = []
    for v in required:
        gv = grads.get(v.id)
        if gv is None:
            gv = ctx.zeros(v.spec)
        elif gv.dtype != v.dtype:
            gv = ctx.one("Cast", {"x": gv}, {"to": v.dtype})
        outs.append(gv)
        info.expected_outputs.append(v)
    g.outputs = outs
    known[fwd.id] = info
    return info


__all__ = ["autodiff", "AutodiffError", "GradInfo"]
