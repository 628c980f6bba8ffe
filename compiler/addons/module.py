"""addons.Module: a graph builder with named variable inputs and nested submodules."""
from __future__ import annotations

from typing import Any, Callable

from compiler import popxl

from .dot_tree import NamedTensors
from .graph import GraphWithNamedArgs
from .graph_cache import GraphCache
from .variable_factory import NamedVariableFactories, VariableFactory


class Module:
    def __init__(self, cache: bool = False) -> None:
        object.__setattr__(self, "_submodules", {})
        object.__setattr__(self, "_cache_enabled", bool(cache))
        object.__setattr__(self, "_graph_cache", GraphCache())
        object.__setattr__(self, "_scope_name", None)
        self._reset()
        if cache and type(self).build_grad is not Module.build_grad:
            raise ValueError(f"{type(self).__name__}: a Module with cache=True cannot override build_grad")

    def _reset(self) -> None:
        object.__setattr__(self, "_facts", NamedVariableFactories())
        object.__setattr__(self, "_named", NamedTensors())

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

    def build_grad(self, *args: Any, **kwargs: Any) -> Any:  # marker, see cache rule
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
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

    def _collect(self) -> tuple[NamedVariableFactories, NamedTensors]:
        facts, named = NamedVariableFactories(), NamedTensors()
        facts.update(self._facts)
        named.update(self._named)
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
        try:
            graph = ir.create_graph(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_scope_name", scope)
        facts, named = self._collect()
        self._reset_all()
        result = (facts, GraphWithNamedArgs(graph, named))
        if key is not None:
            self._graph_cache.put(key, result)
        return result
