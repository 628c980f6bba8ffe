"""addons.autodiff: popxl.transforms.autodiff returning a GraphWithNamedArgs with grad_graph_info."""
from __future__ import annotations

from typing import Any, Iterable

from compiler import popxl

from .dot_tree import NamedTensors
from .graph import GraphWithNamedArgs


def autodiff(graph: GraphWithNamedArgs, grads_provided: Iterable[popxl.Tensor] | None = None,
             grads_required: Iterable[popxl.Tensor] | None = None, called_graphs_grad_info: Any = None,
             **_: Any) -> GraphWithNamedArgs:
    """The gradient graph of `graph` (whose forward graph gains the activations as outputs: call it after this)."""
    info = popxl.transforms.autodiff(graph.graph, grads_provided, grads_required, called_graphs_grad_info)
    return GraphWithNamedArgs(info.graph, NamedTensors(), grad_graph_info=info)
