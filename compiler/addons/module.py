"""addons.Module: a graph builder with named variable inputs and nested submodules."""
from __future__ import annotations

from typing import Any, Callable

from compiler import popxl

import warnings

from .build_grad import BUILDING, Aux, VarGrads, create_grad_graph
from .dot_tree import NamedTensors
from .graph import GraphWithNamedArgs
from .graph_cache import GraphCache
from .variable_factory import NamedVariableFactories, VariableFactory


class Module(popxl.Module):
    def __init__(self, cache: bool = False, grad_inlining_error: str = "error") -> None:
        object.__setattr__(self, "_submodules", {})
        object.__setattr__(self, "_cache_enabled", bool(cache))
        object.__setattr__(self, "_graph_cache", GraphCache())
        object.__setattr__(self, "_scope_name", None)
        self._reset()
        if cache and self.implements_grad_graph:
            raise ValueError(f"{type(self).__name__}: You cannot use graph caching if you have implemented "
                             "`build_grad` (a cached graph would share its aux outputs between calls); "
                             "pass cache=False")
        if grad_inlining_error not in ("error", "warning", "none"):
            raise ValueError(f"grad_inlining_error should be one of 'error', 'warning', 'none'. Not: "
                             f"{grad_inlining_error!r}")
        self.grad_inlining_error = grad_inlining_error

    @property
    def implements_grad_graph(self) -> bool:
        return type(self).build_grad is not Module.build_grad

    def _reset(self) -> None:
        object.__setattr__(self, "_facts", NamedVariableFactories())
        object.__setattr__(self, "_named", NamedTensors())
        object.__setattr__(self, "aux", Aux())
        object.__setattr__(self, "var_grad", VarGrads())
        object.__setattr__(self, "called_graphs_grad_info", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Module):
            if not hasattr(self, "_submodules"):
                raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                   "assigning submodules")
            self._submodules[name] = value
            object.__setattr__(value, "_scope_name", name)
        object.__setattr__(self, name, value)

    # ----------------------------------------------------------- building
    def build(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define build(...)")

    def build_grad(self, *args: Any, **kwargs: Any) -> Any:
        """Override to define the gradient graph yourself (see build_grad.py)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build_grad")

    def create_grad_graph(self, fwd_graph: GraphWithNamedArgs, grads_provided: Any = None,
                          grads_required: Any = None) -> GraphWithNamedArgs:
        return create_grad_graph(self, fwd_graph, grads_provided, grads_required)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.implements_grad_graph and not (BUILDING and BUILDING[-1] is self):
            msg = (f"You are calling {type(self).__name__} directly (inlining it) but `build_grad` has been "
                   "implemented: autodiff would not use it. Create a graph of this module and call it, e.g. with "
                   "`self.call_module(module)(...)`; set grad_inlining_error='none' to allow inlining.")
            if self.grad_inlining_error == "error":
                raise Exception(msg)
            if self.grad_inlining_error == "warning":
                warnings.warn(msg, UserWarning, stacklevel=2)
        if self._scope_name:
            with popxl.name_scope(self._scope_name):
                return self.build(*args, **kwargs)
        return self.build(*args, **kwargs)

    def add_variable_input(self, name: str, data_iter: Callable[[], Any] | Any, dtype: Any = None,
                           by_ref: bool = False, replica_grouping: Any = None, overwrite: bool = False) -> popxl.Tensor:
        """A graph input named `name` plus a factory that makes the matching main-graph variable."""
        f = VariableFactory(data_iter, dtype, name, by_ref, replica_grouping)
        t = popxl.graph_input(f.shape, f.dtype, name, by_ref=by_ref)
        self._facts.insert(name, f, overwrite=overwrite)
        self._named.insert(name, t, overwrite=overwrite)
        return t

    add_input_tensor = add_variable_input  # the older popxl.addons name

    def add_variable_inputs(self, name: str, factories: NamedVariableFactories) -> NamedTensors:
        flat = factories.to_dict()
        tensors = {key: popxl.graph_input(f.shape, f.dtype, f"{name}.{key}", by_ref=f.by_ref) for key, f in flat.items()}
        out = NamedTensors.from_dict(tensors)
        self._facts.insert(name, NamedVariableFactories.from_dict(flat))
        self._named.insert(name, out)
        return out  # type: ignore[return-value]

    def call_module(self, module: "Module", name: str | None = None) -> Callable[..., tuple[popxl.Tensor, ...]]:
        """A function that builds `module` as its own graph, adds its variables as inputs of this module
        (under `name`, default the module's class name) and calls it; a module with build_grad registers its
        gradient graph so autodiff of this module uses it. Returns the call's outputs."""
        def call(*args: Any, **kwargs: Any) -> tuple[popxl.Tensor, ...]:
            facts, graph = module.create_graph(*args, **kwargs)
            n = len(graph.graph.outputs)
            self.called_graphs_grad_info.update(graph.called_graphs_grad_info)  # graphs it calls, nested
            if module.implements_grad_graph:  # before the call: the forward graph gains outputs
                self.called_graphs_grad_info[graph.graph] = graph.autodiff(method="build_grad").grad_graph_info
            key = name or type(module).__name__
            variables = self.add_variable_inputs(key, facts)
            tensors = [a for a in args if isinstance(a, popxl.Tensor)]
            return graph.bind(variables).call(*tensors)[:n]
        return call

    def _collect(self) -> tuple[NamedVariableFactories, NamedTensors]:
        facts, named = NamedVariableFactories(), NamedTensors()
        facts.update(self._facts)
        named.update(self._named)
        for sub in self._submodules.values():
            self.called_graphs_grad_info.update(sub.called_graphs_grad_info)
        for sub_name, sub in self._submodules.items():
            f2, n2 = sub._collect()
            for k, v in f2.to_dict().items():
                facts.insert(f"{sub_name}.{k}", v, overwrite=True)
            for k, v in n2.to_dict().items():
                named.insert(f"{sub_name}.{k}", v, overwrite=True)
        return facts, named

    def _reset_all(self) -> None:
        self._reset()
        for sub in self._submodules.values():
            sub._reset_all()

    def create_graph(self, *args: Any, **kwargs: Any) -> tuple[NamedVariableFactories, GraphWithNamedArgs]:
        ir = popxl.gir()
        key = None
        if self._cache_enabled:
            key = self._graph_cache.key(self, ir, args, kwargs)
            hit = self._graph_cache.get(key)
            if hit is not None:
                return hit
        self._reset_all()
        scope, self._scope_name = self._scope_name, None
        BUILDING.append(self)
        try:
            graph = ir.create_graph(self, *args, **kwargs)
        finally:
            BUILDING.pop()
            object.__setattr__(self, "_scope_name", scope)
        facts, named = self._collect()
        if self.implements_grad_graph:
            graph._g.info["build_grad"] = True  # autodiff must use build_grad, see build_grad.check_called_graphs
        result = (facts, GraphWithNamedArgs(graph, named, from_module=self, aux=self.aux.copy(),
                                            called_graphs_grad_info=dict(self.called_graphs_grad_info)))
        self._reset_all()
        if key is not None:
            self._graph_cache.put(key, result)
        return result
