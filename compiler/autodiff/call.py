"""The gradient of Call: differentiate the callee once and call its gradient graph.

call(g, xs) -> ys   gives   call(grad_g, dys + activations) -> dxs

The callee's autodiff adds its activations to the callee's outputs, so every call site of the callee
gains the matching outputs (`sync_call_sites`); the gradient graph reads them at this call site.
"""
from __future__ import annotations

from typing import Any

from compiler.ir import Graph, Ir, Op, TensorSpec, Value
from compiler.ops import OPS


def sync_call_sites(ir: Ir, callee: Graph) -> None:
    """Give every Call of `callee` one output per callee output (autodiff appends activations)."""
    for g in ir.graphs.values():
        for op in g.ops:
            if op.kind == "Call" and op.called is callee and len(op.outputs) < len(callee.outputs):
                for v in callee.outputs[len(op.outputs):]:
                    op.outputs.append(g.new_value(TensorSpec(v.shape, v.dtype), v.name, "op", op))
                op.attrs["out_specs"] = tuple((v.shape, v.dtype) for v in callee.outputs)


def _index(values: list[Value], v: Value) -> int | None:
    return next((i for i, x in enumerate(values) if x is v), None)


def _call_grad(c: Any, op: Op, dys: list[Value | None]) -> list[Value | None]:
    callee = op.called
    info = c.grad_of(callee)
    sync_call_sites(c.ir, callee)
    args = {}
    for k, (kind, v) in enumerate(info.expected_inputs):
        if kind == "grad":
            j = _index(callee.outputs, v)
            dy = dys[j] if j is not None and j < len(dys) else None
            args[f"in{k}"] = dy if dy is not None else c.zeros(v.spec)
        else:
            i = _index(callee.inputs, v)
            parent = op.inputs[i] if i is not None else op.outputs[_index(callee.outputs, v)]
            args[f"in{k}"] = c.fwd(parent)
    outs = c.call(info.graph, args)
    grads: list[Value | None] = []
    for v in callee.inputs:
        j = _index(info.expected_outputs, v)
        grads.append(None if j is None else outs[j])
    return grads


OPS["Call"].grad = _call_grad
