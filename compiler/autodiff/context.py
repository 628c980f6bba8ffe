"""GradContext: what a gradient rule may do while the gradient graph is being built.

A rule (`OpDef.grad`, registered next to each op's definition in compiler/ops/) is called as
`rule(ctx, op, dys) -> [dx or None per input of op]`, where `dys` holds the gradient of each output
of the forward `op` (zeros where nothing flows back). Rules build ops only through `ctx`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from compiler.ir import DType, Graph, Ir, TensorSpec, Value
from compiler.ops import emit

if TYPE_CHECKING:
    from .transform import GradInfo


class GradContext:
    def __init__(self, ir: Ir, fwd: Graph, g: Graph, info: "GradInfo", need: set[int],
                 known: dict[str, "GradInfo"]) -> None:
        self.ir, self.fwd_graph, self.g, self.info = ir, fwd, g, info
        self._need = need
        self._fwd: dict[int, Value] = {}
        self.known = known  # gradient infos of called graphs, by forward graph id (shared with nested calls)

    # ------------------------------------------------------------ forward values
    def needs(self, v: Value) -> bool:
        """Whether a gradient for forward value `v` is wanted (rules skip work for the others)."""
        return v.id in self._need

    def fwd(self, v: Value) -> Value:
        """The forward value `v` inside the gradient graph: a constant is copied, anything else becomes a
        gradient-graph input (an activation); a forward intermediate is added to the forward graph's outputs."""
        got = self._fwd.get(v.id)
        if got is not None:
            return got
        if v.kind == "constant":
            got = self.ir.add_constant(self.g, self.ir.constants[v.id], v.name)
        else:
            if v.kind != "input" and all(o is not v for o in self.fwd_graph.outputs):
                self.fwd_graph.outputs.append(v)
            got = self.g.add_input(v.spec, v.name)
            self.info.expected_inputs.append(("fwd", v))
        self._fwd[v.id] = got
        return got

    # ------------------------------------------------------------ building ops
    def op(self, kind: str, inputs: dict[str, Value], attrs: dict[str, Any] | None = None) -> list[Value]:
        return emit(self.g, kind, inputs, attrs, name=f"{kind}Grad").outputs

    def one(self, kind: str, inputs: dict[str, Value], attrs: dict[str, Any] | None = None) -> Value:
        return self.op(kind, inputs, attrs)[0]

    def add(self, a: Value, b: Value) -> Value:
        return self.one("Add", {"a": a, "b": b})

    def sub(self, a: Value, b: Value) -> Value:
        return self.one("Sub", {"a": a, "b": b})

    def mul(self, a: Value, b: Value) -> Value:
        return self.one("Mul", {"a": a, "b": b})

    def div(self, a: Value, b: Value) -> Value:
        return self.one("Div", {"a": a, "b": b})

    def neg(self, x: Value) -> Value:
        return self.one("Neg", {"x": x})

    def where(self, cond: Value, a: Value, b: Value) -> Value:
        return self.one("Where", {"cond": cond, "a": a, "b": b})

    def const(self, x: float, dtype: DType) -> Value:
        return self.ir.add_constant(self.g, np.asarray(x, dtype=dtype.numpy), "c")

    def zeros(self, spec: TensorSpec) -> Value:
        return self.one("Init", {}, {"shape": spec.shape, "dtype": spec.dtype, "init_type": "zero"})

    def broadcast_to(self, x: Value, shape: tuple[int, ...]) -> Value:
        """x broadcast up to `shape` (numpy rules), as zeros + x."""
        if x.shape == tuple(shape):
            return x
        return self.add(self.zeros(TensorSpec(tuple(shape), x.dtype)), x)

    def reduce_to(self, dy: Value, shape: tuple[int, ...]) -> Value:
        """Sum a gradient over the axes that broadcasting added or stretched, then reshape to `shape`."""
        shape = tuple(shape)
        if dy.shape == shape:
            return dy
        lead = len(dy.shape) - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and dy.shape[lead + i] != 1)
        r = self.one("ReduceSum", {"x": dy}, {"axes": axes, "keepdims": False}) if axes else dy
        return r if r.shape == shape else self.one("Reshape", {"x": r}, {"shape": shape})

    # ------------------------------------------------------------ called graphs
    def grad_of(self, callee: Graph) -> "GradInfo":
        """The gradient graph of a called graph: the one given in `called_graphs_grad_info`, else made once
        per callee (w.r.t. all its float inputs, given the gradients of all its float outputs)."""
        from .transform import autodiff

        info = self.known.get(callee.id)
        if info is None:
            info = autodiff(self.ir, callee, [o for o in callee.outputs if o.dtype.is_float],
                            [i for i in callee.inputs if i.dtype.is_float], known=self.known)
        return info

    def call(self, graph: Graph, inputs: dict[str, Value]) -> list[Value]:
        attrs = {"out_specs": tuple((o.shape, o.dtype) for o in graph.outputs)}
        return emit(self.g, "Call", inputs, attrs, called=graph, name="call").outputs
