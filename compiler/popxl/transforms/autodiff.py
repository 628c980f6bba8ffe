"""popxl.transforms.autodiff: a gradient graph plus the information to connect it at call sites."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable, Mapping

from compiler.autodiff import GradInfo, sync_call_sites
from compiler.autodiff import autodiff as _autodiff

from ..graph import Graph
from ..tensor import Tensor, wrap


class ExpectedConnectionType(Enum):
    """A gradient-graph input or output stands for a forward tensor (Fwd) or for its gradient (FwdGrad)."""

    Fwd = "Fwd"
    FwdGrad = "FwdGrad"

    def __eq__(self, other: object) -> bool:  # the strings "Fwd"/"FwdGrad" compare equal too
        return self.value == other if isinstance(other, str) else super().__eq__(other)

    __hash__ = Enum.__hash__


@dataclass(frozen=True)
class ExpectedConnection:
    fwd_tensor: Tensor
    connection_type: ExpectedConnectionType


class GradGraphInfo:
    """The gradient graph of `forward_graph` and how its inputs/outputs connect to the forward call site."""

    def __init__(self, info: GradInfo, graph: Graph, forward: Graph) -> None:
        self._info = info
        self.graph = graph
        self.forward_graph = forward

    def __repr__(self) -> str:
        def conns(cs: tuple[ExpectedConnection, ...]) -> str:
            return ", ".join(f"{c.connection_type.value}({c.fwd_tensor.name})" for c in cs)
        return (f"GradGraphInfo[\n  graph={self.graph.name}\n  expected_inputs=[{conns(self.expected_inputs)}]\n"
                f"  expected_outputs=[{conns(self.expected_outputs)}]\n]")

    @property
    def expected_inputs(self) -> tuple[ExpectedConnection, ...]:
        """Per gradient-graph input: the gradient of a forward output (FwdGrad) or a forward tensor (Fwd)."""
        return tuple(ExpectedConnection(wrap(v), ExpectedConnectionType.FwdGrad if k == "grad" else
                                        ExpectedConnectionType.Fwd) for k, v in self._info.expected_inputs)

    @property
    def expected_outputs(self) -> tuple[ExpectedConnection, ...]:
        """Per gradient-graph output: the forward input whose gradient it is."""
        return tuple(ExpectedConnection(wrap(v), ExpectedConnectionType.FwdGrad) for v in self._info.expected_outputs)

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return self.graph.inputs

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        return self.graph.outputs

    def inputs_dict(self, fwd_call_info: Any) -> dict[Tensor, Tensor]:
        """{gradient-graph input: parent tensor at the forward call site} for the Fwd inputs (activations)."""
        out = {}
        for (kind, v), gin in zip(self._info.expected_inputs, self.graph._g.inputs):
            if kind == "fwd":
                out[wrap(gin)] = fwd_call_info.graph_to_parent(wrap(v))
        return out

    def fwd_graph_ins_to_grad_parent_outs(self, grad_call_info: Any) -> dict[Tensor, Tensor]:
        """{forward-graph input: its gradient at the gradient graph's call site}."""
        return {wrap(v): grad_call_info.parent_output(i) for i, v in enumerate(self._info.expected_outputs)}

    def fwd_parent_ins_to_grad_parent_outs(self, fwd_call_info: Any, grad_call_info: Any) -> dict[Tensor, Tensor]:
        """{parent tensor fed to a forward input: its gradient at the gradient graph's call site}."""
        return {fwd_call_info.graph_to_parent(wrap(v)): grad_call_info.parent_output(i)
                for i, v in enumerate(self._info.expected_outputs)}


def autodiff(graph: Graph, grads_provided: Iterable[Tensor] | None = None,
             grads_required: Iterable[Tensor] | None = None,
             called_graphs_grad_info: Mapping[Graph, GradGraphInfo] | None = None,
             return_all_grad_graphs: bool = False) -> GradGraphInfo | dict[Graph, GradGraphInfo]:
    """The gradient graph of `graph` (default: given the gradients of all its float outputs, giving those of
    all its inputs). `graph` gains its activations as extra outputs: call it after this. Graphs it calls are
    differentiated too, unless `called_graphs_grad_info` gives their gradient graphs. With
    `return_all_grad_graphs`, returns {forward graph: GradGraphInfo} for every graph differentiated."""
    fe = graph.ir  # the popxl.Ir (graph handles); the transform works on its core program
    ir = fe.core
    known = {g._g.id: gi._info for g, gi in (called_graphs_grad_info or {}).items()}
    given = set(known)
    prov = None if grads_provided is None else [t._value for t in grads_provided]
    req = None if grads_required is None else [t._value for t in grads_required]
    info = _autodiff(ir, graph._g, prov, req, known=known)
    sync_call_sites(ir, graph._g)  # call sites made before autodiff see the activations too
    if not return_all_grad_graphs:
        return GradGraphInfo(info, fe._wrapper(info.graph), graph)
    return {fe._wrapper(ir.graphs[gid]): GradGraphInfo(gi, fe._wrapper(gi.graph), fe._wrapper(ir.graphs[gid]))
            for gid, gi in known.items() if gid not in given}
