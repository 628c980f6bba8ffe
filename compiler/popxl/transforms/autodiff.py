"""popxl.transforms.autodiff: a gradient graph plus the information to connect it at call sites."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from compiler.autodiff import GradInfo
from compiler.autodiff import autodiff as _autodiff

from ..graph import Graph
from ..tensor import Tensor, wrap


@dataclass(frozen=True)
class ExpectedConnection:
    fwd_tensor: Tensor
    connection_type: str  # "FwdGrad" or "Fwd"


class GradGraphInfo:
    def __init__(self, info: GradInfo, graph: Graph, forward: Graph) -> None:
        self._info = info
        self.graph = graph
        self.forward_graph = forward

    @property
    def expected_inputs(self) -> tuple[ExpectedConnection, ...]:
        return tuple(ExpectedConnection(wrap(v), "FwdGrad" if k == "grad" else "Fwd")
                     for k, v in self._info.expected_inputs)

    @property
    def expected_outputs(self) -> tuple[ExpectedConnection, ...]:
        return tuple(ExpectedConnection(wrap(v), "FwdGrad") for v in self._info.expected_outputs)

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return self.graph.inputs

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        return self.graph.outputs

    def inputs_dict(self, fwd_call_info: Any) -> dict[Tensor, Tensor]:
        """{gradient-graph input: parent tensor at the forward call site} for the activations."""
        out = {}
        for (kind, v), gin in zip(self._info.expected_inputs, self.graph._g.inputs):
            if kind == "fwd":
                out[wrap(gin)] = fwd_call_info.graph_to_parent(wrap(v))
        return out

    def fwd_graph_ins_to_grad_parent_outs(self, grad_call_info: Any) -> dict[Tensor, Tensor]:
        return {wrap(v): grad_call_info.parent_output(i) for i, v in enumerate(self._info.expected_outputs)}

    def fwd_parent_ins_to_grad_parent_outs(self, fwd_call_info: Any, grad_call_info: Any) -> dict[Tensor, Tensor]:
        """{parent tensor fed to a forward input: its gradient at the gradient call site}."""
        return {fwd_call_info.graph_to_parent(wrap(v)): grad_call_info.parent_output(i)
                for i, v in enumerate(self._info.expected_outputs)}


def autodiff(graph: Graph, grads_provided: Iterable[Tensor] | None = None,
             grads_required: Iterable[Tensor] | None = None, called_graphs_grad_info: Any = None,
             return_all_grad_graphs: bool = False) -> GradGraphInfo:
    ir = graph.ir
    prov = None if grads_provided is None else [t._value for t in grads_provided]
    req = None if grads_required is None else [t._value for t in grads_required]
    info = _autodiff(ir, graph._g, prov, req)
    return GradGraphInfo(info, ir._wrapper(info.graph), graph)
