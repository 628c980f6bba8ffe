"""The autodiff transform: forward graph -> gradient graph, with PopXL's conventions.

- The gradient graph's inputs are the gradients of `grads_provided` (forward outputs, in that
  order) followed by the forward values the rules need (activations), in first-use order.
- Forward intermediates that the gradient graph needs become extra outputs of the forward graph
  (call the forward graph after running autodiff).
- Its outputs are the gradients of `grads_required` (forward inputs, default all of them).
- Graphs that modify tensors in place are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from compiler.ir import DType, Graph, Ir, Op, TensorSpec, Value
from compiler.ops import OpError, emit, get


class AutodiffError(ValueError):
    pass


@dataclass
class GradInfo:
    graph: Graph
    forward: Graph
    # (kind, forward value): "grad" = gradient of that forward output; "fwd" = the forward value itself
    expected_inputs: list[tuple[Literal["grad", "fwd"], Value]] = field(default_factory=list)
    expected_outputs: list[Value] = field(default_factory=list)  # gradients of these forward inputs


class _Ctx:
    def __init__(self, ir: Ir, fwd: Graph, g: Graph, info: GradInfo) -> None:
        self.ir, self.fwd_graph, self.g, self.info = ir, fwd, g, info
        self._fwd: dict[int, Value] = {}
        self._callee_grads: dict[str, GradInfo] = {}

    def fwd(self, v: Value) -> Value:
        """The forward value `v`, available inside the gradient graph."""
        got = self._fwd.get(v.id)
        if got is not None:
            return got
        if v.kind == "constant":
            got = self.ir.add_constant(self.g, self.ir.constants[v.id], v.name)
        else:
            if v.kind != "input" and all(o is not v for o in self.fwd_graph.outputs):
                self.fwd_graph.outputs.append(v)  # an activation: the forward graph now returns it
            got = self.g.add_input(v.spec, f"{v.name}")
            self.info.expected_inputs.append(("fwd", v))
        self._fwd[v.id] = got
        return got

    def op(self, kind: str, inputs: dict[str, Value], attrs: dict[str, Any] | None = None) -> list[Value]:
        return emit(self.g, kind, inputs, attrs, name=f"{kind}Grad").outputs

    def const(self, x: float, dtype: DType) -> Value:
        return self.ir.add_constant(self.g, np.asarray(x, dtype=dtype.numpy), "c")

    def reduce_to(self, dy: Value, shape: tuple[int, ...]) -> Value:
        """Sum a gradient over the axes that broadcasting added or stretched, then reshape to `shape`."""
        if dy.shape == tuple(shape):
            return dy
        lead = len(dy.shape) - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and dy.shape[lead + i] != 1)
        r = self.op("ReduceSum", {"x": dy}, {"axes": axes, "keepdims": False})[0] if axes else dy
        return r if r.shape == tuple(shape) else self.op("Reshape", {"x": r}, {"shape": tuple(shape)})[0]

    def grad_of(self, callee: Graph) -> "GradInfo":
        """The gradient graph of a called graph (differentiated once, w.r.t. all its float inputs and outputs)."""
        info = self._callee_grads.get(callee.id)
        if info is None:
            info = autodiff(self.ir, callee, [o for o in callee.outputs if o.dtype.is_float],
                            [i for i in callee.inputs if i.dtype.is_float])
            self._callee_grads[callee.id] = info
        return info

    def call(self, graph: Graph, inputs: dict[str, Value]) -> list[Value]:
        attrs = {"out_specs": tuple((o.shape, o.dtype) for o in graph.outputs)}
        return emit(self.g, "Call", inputs, attrs, called=graph, name="call").outputs

    def zeros(self, spec: TensorSpec) -> Value:
        return self.op("Init", {}, {"shape": spec.shape, "dtype": spec.dtype, "init_type": "zero"})[0]


def _needs_grad(fwd: Graph, required: list[Value]) -> set[int]:
    need = {v.id for v in required}
    for op in fwd.ops:
        if any(v.id in need for v in op.inputs):
            need |= {v.id for v in op.outputs if v.dtype.is_float}
    return need


def autodiff(ir: Ir, fwd: Graph, grads_provided: list[Value] | None = None,
             grads_required: list[Value] | None = None, name: str | None = None) -> GradInfo:
    for op in fwd.ops:
        if op.modifies:
            raise AutodiffError(f"Autodiff cannot be used on graphs with inplace modifying ops: {op.label} in graph "
                                f"{fwd.id!r} modifies {op.inputs[op.modifies[0]].name!r}")
    provided = list(fwd.outputs) if grads_provided is None else list(grads_provided)
    required = list(fwd.inputs) if grads_required is None else list(grads_required)
    for v in provided:
        if all(o is not v for o in fwd.outputs):
            raise AutodiffError(f"grads_provided: {v.name!r} is not an output of graph {fwd.id!r}")
    for v in required:
        if all(i is not v for i in fwd.inputs):
            raise AutodiffError(f"grads_required: {v.name!r} is not an input of graph {fwd.id!r}")
    g = ir.new_graph(name or ir.unique_graph_id(f"{fwd.id.split('_subgraph')[0]}_grad"))
    info = GradInfo(g, fwd)
    ctx = _Ctx(ir, fwd, g, info)
    grads: dict[int, Value] = {}
    for v in provided:
        grads[v.id] = g.add_input(v.spec, f"grad_{v.name}")
        info.expected_inputs.append(("grad", v))
    need = _needs_grad(fwd, required)
    for op in reversed(fwd.ops):
        dys = [grads.get(v.id) for v in op.outputs]
        if all(d is None for d in dys) or not any(v.id in need for v in op.inputs):
            continue
        rule = get(op.kind).grad
        if rule is None:
            raise AutodiffError(f"no gradient rule for {op.kind} ({op.label} in graph {fwd.id!r}); add one in "
                                "compiler/ops/grads.py")
        dys = [d if d is not None else ctx.zeros(v.spec) for d, v in zip(dys, op.outputs)]
        try:
            dxs = rule(ctx, op, dys)
        except OpError as e:
            raise AutodiffError(f"gradient of {op.label}: {e}") from None
        for v, dx in zip(op.inputs, dxs):
            if dx is None or v.id not in need:
                continue
            prev = grads.get(v.id)
            grads[v.id] = dx if prev is None else ctx.op("Add", {"a": prev, "b": dx})[0]
    outs = []
    for v in required:
        gv = grads.get(v.id)
        if gv is None:
            gv = ctx.zeros(v.spec)
        elif gv.spec != v.spec:
            gv = ctx.op("Cast", {"x": gv}, {"to": v.dtype})[0] if gv.shape == v.shape else gv
        outs.append(gv)
        info.expected_outputs.append(v)
    g.outputs = outs
    return info


__all__ = ["autodiff", "AutodiffError", "GradInfo", "Op"]
