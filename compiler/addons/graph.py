"""GraphWithNamedArgs and BoundGraph: a graph with its named (variable) inputs, and a binding of them."""
from __future__ import annotations

from typing import Any, Mapping

from compiler import popxl
from compiler.ir import print_schedule as _print_schedule

from .dot_tree import NamedTensors


class BoundGraph:
    def __init__(self, graph: popxl.Graph, args: Mapping[Any, Any] | None = None) -> None:
        self.graph = graph
        self.args = dict(args or {})

    def call(self, *targs: Any, args: Mapping[Any, Any] | None = None) -> tuple[popxl.Tensor, ...]:
        return self.call_with_info(*targs, args=args).outputs

    def call_with_info(self, *targs: Any, args: Mapping[Any, Any] | None = None) -> Any:
        return popxl.ops.call_with_info(self.graph, *targs, inputs_dict={**self.args, **dict(args or {})})

    def bind(self, args: Mapping[Any, Any]) -> "BoundGraph":
        return BoundGraph(self.graph, {**self.args, **dict(args)})


class GraphWithNamedArgs:
    def __init__(self, graph: popxl.Graph, args: NamedTensors | None = None, grad_graph_info: Any = None,
                 from_module: Any = None, aux: Any = None, called_graphs_grad_info: Any = None) -> None:
        self.graph = graph
        self.args = args if args is not None else NamedTensors()
        self.grad_graph_info = grad_graph_info
        self.from_module = from_module
        self.aux = aux
        self.called_graphs_grad_info = dict(called_graphs_grad_info or {})
        for key, t in self.args.to_dict().items():
            graph._g.input_names[t._value.id] = key

    @property
    def ir(self):
        return self.graph.ir

    def print_schedule(self) -> str:
        return _print_schedule(self.graph._g)

    def bind(self, args: NamedTensors | Mapping[Any, Any]) -> BoundGraph:
        if isinstance(args, NamedTensors):
            return BoundGraph(self.graph, self.args.to_mapping(args))
        return BoundGraph(self.graph, args)

    def call(self, *targs: Any, args: Mapping[Any, Any] | None = None) -> tuple[popxl.Tensor, ...]:
        return popxl.ops.call(self.graph, *targs, inputs_dict=dict(args or {}))

    def call_with_info(self, *targs: Any, args: Mapping[Any, Any] | None = None) -> Any:
        return popxl.ops.call_with_info(self.graph, *targs, inputs_dict=dict(args or {}))

    def autodiff(self, method: str = "auto", grads_provided: Any = None, grads_required: Any = None,
                 called_graphs_grad_info: Any = None) -> "GraphWithNamedArgs":
        """The gradient graph: from the module's build_grad ("build_grad"), from the autodiff transform
        ("autodiff"), or build_grad when the module implements it ("auto")."""
        if method not in ("auto", "build_grad", "autodiff"):
            raise ValueError(f"autodiff: method must be 'auto', 'build_grad' or 'autodiff', got {method!r}")
        has = self.from_module is not None and self.from_module.implements_grad_graph
        if method == "build_grad" and self.from_module is None:
            raise Exception("method='build_grad' is only possible if `from_module` is specified (graphs made by "
                            "Module.create_graph have it)")
        if method == "build_grad" or (method == "auto" and has):
            return self.from_module.create_grad_graph(self, grads_provided, grads_required)
        from .autodiff import autodiff

        return autodiff(self, grads_provided, grads_required, called_graphs_grad_info)

    @classmethod
    def from_create_graph(cls, graph: popxl.Graph, args: NamedTensors) -> "GraphWithNamedArgs":
        return cls(graph, args)
