"""popxl.Ir: the IR plus the PopXL graph-building API (main_graph, create_graph)."""
from __future__ import annotations

import inspect
import typing
import weakref
from typing import Any, Callable

from compiler.ir import Graph as IrGraph
from compiler.ir import Ir as CoreIr
from compiler.ir import TensorSpec

from . import context
from .graph import Graph
from .tensor import Tensor, TensorByRef

if typing.TYPE_CHECKING:
    from .replica_grouping import ReplicaGrouping


def _qualname(fn: Any) -> str:
    if hasattr(fn, "build") and not inspect.isfunction(fn):
        return type(fn).__qualname__.replace(".<locals>", "")
    return getattr(fn, "__qualname__", type(fn).__qualname__).replace(".<locals>", "")


def _is_by_ref(annotation: Any) -> bool:
    if annotation is TensorByRef or annotation == "TensorByRef" or annotation == "popxl.TensorByRef":
        return True
    args = typing.get_args(annotation)
    return bool(args) and all(_is_by_ref(a) for a in args if a is not Ellipsis)


def _check_not_mixed(fname: str, pname: str, val: Any, variadic: bool) -> None:
    """PopXL refuses a list (or *args/**kwargs) that mixes Tensors with other values."""
    items = list(val.values()) if isinstance(val, dict) else list(val) if isinstance(val, (list, tuple)) else []
    if not items or not (variadic or isinstance(val, (list, tuple))):
        return
    kinds = {isinstance(x, (Tensor, TensorSpec)) for x in items}
    if len(kinds) > 1:
        raise TypeError(f"create_graph({fname}): argument {pname!r} mixes Tensors and other values; pass Tensors "
                        "and Python values as separate arguments")


# the popxl.Ir holding each core Ir, by id(core): a core graph's values find their Tensor handles
# through it. Weak values: the entry goes when the popxl.Ir does (a core Ir that outlives it, as a
# clone or a loaded file does, belongs to no front end).
_OWNERS: "weakref.WeakValueDictionary[int, Ir]" = weakref.WeakValueDictionary()


class Ir:
    """PopXL's Ir: the graph-building API over one program, `self.core` (a compiler.ir.Ir).

    Composition, not inheritance: the core Ir (what the driver compiles, clone copies and serialize
    saves) knows nothing of this front end; the PopXL state (graph handles, stream handles) lives
    here. Code that needs the program itself reads `ir.core`.
    """

    def __init__(self, replication: int | str = 1) -> None:
        if replication == "popdist":  # one replica per launched process (PopXL: per poprun instance)
            from compiler.driver import processes

            replication = processes()[1]
        if not isinstance(replication, int) or replication < 1:
            raise ValueError(f"Ir(replication=...) must be a positive int or 'popdist', got {replication!r}")
        self.core = CoreIr(replication)
        self._wrappers: dict[int, Graph] = {}
        self._stream_handles: dict[str, Any] = {}
        _OWNERS[id(self.core)] = self

    def _wrapper(self, g: IrGraph) -> Graph:
        w = self._wrappers.get(id(g))
        if w is None:
            w = self._wrappers[id(g)] = Graph(self, g)
        return w

    @staticmethod
    def wrapper_of(g: IrGraph) -> Graph:
        ir = _OWNERS.get(id(g.ir))
        if ir is None or ir.core is not g.ir:
            raise TypeError("this graph was not built with compiler.popxl (it was loaded, cloned or built directly)")
        return ir._wrapper(g)

    @property
    def main_graph(self) -> Graph:
        return self._wrapper(self.core.main)

    @property
    def id(self) -> int:
        """A number unique to this Ir among those alive (PopXL's Ir.id)."""
        return id(self)

    @property
    def replication_factor(self) -> int:
        return self.core.replication_factor

    @replication_factor.setter
    def replication_factor(self, n: int) -> None:
        self.core.replication_factor = n

    @property
    def num_host_transfers(self) -> int:
        """Loads of each stream per Session.run (PopXL: the DataFlow's batchesPerStep)."""
        return self.core.num_host_transfers

    @num_host_transfers.setter
    def num_host_transfers(self, n: int) -> None:
        self.core.num_host_transfers = n

    @property
    def stream_handles(self) -> dict[str, Any]:
        """Stream name -> the popxl.HostToDeviceStream / DeviceToHostStream handle the user holds."""
        return self._stream_handles

    def get_all_h2d_streams(self) -> set:
        return {s for s in self._stream_handles.values() if s.direction == "h2d"}

    def get_all_d2h_streams(self) -> set:
        return {s for s in self._stream_handles.values() if s.direction == "d2h"}

    @property
    def instance_replication_factor(self) -> int:
        """Replicas hosted by this process: replication_factor / MPI processes under mpiexec."""
        from .replication import local_replicas

        return local_replicas(self.core)[0]

    def replica_grouping(self, stride: int = 1, group_size: int | None = None) -> "ReplicaGrouping":
        """Groups of `group_size` replicas (default: all), members `stride` apart."""
        from .replica_grouping import ReplicaGrouping

        return ReplicaGrouping(self.replication_factor, stride, group_size)

    def get_graph(self, gid: str) -> Graph:
        return self._wrapper(self.core.graphs[gid])

    def create_empty_graph(self, name: str = "graph") -> Graph:
        return self._wrapper(self.core.new_graph(self.core.unique_graph_id(name)))

    def create_graph(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Graph:
        """Trace `fn` (or a Module's `build`) into a new graph.

        Tensor and TensorSpec arguments become graph inputs, by reference when annotated
        `popxl.TensorByRef`; other arguments are baked into the graph as Python values.
        """
        target = fn.build if hasattr(fn, "build") and not inspect.isfunction(fn) else fn
        sig = inspect.signature(target)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:  # PopXL: ValueError for a wrong number of arguments
            raise ValueError(f"create_graph({_qualname(fn)}): {e}") from None
        bound.apply_defaults()
        hints = {}
        try:
            hints = typing.get_type_hints(target)
        except Exception:
            hints = {k: p.annotation for k, p in sig.parameters.items()}
        g = self.create_empty_graph(_qualname(fn))
        call_args: list[Any] = []
        call_kwargs: dict[str, Any] = {}
        with g:
            for pname, p in sig.parameters.items():
                if pname not in bound.arguments:
                    continue
                val = bound.arguments[pname]
                by_ref = _is_by_ref(hints.get(pname, p.annotation))
                _check_not_mixed(_qualname(fn), pname, val, p.kind is p.VAR_POSITIONAL or p.kind is p.VAR_KEYWORD)
                conv = self._to_inputs(g, pname, val, by_ref)
                if p.kind is p.VAR_POSITIONAL:
                    call_args.extend(conv)
                elif p.kind is p.VAR_KEYWORD:
                    call_kwargs.update(conv)
                elif p.kind is p.KEYWORD_ONLY:
                    call_kwargs[pname] = conv
                else:
                    call_args.append(conv)
            out = target(*call_args, **call_kwargs)
            if out is None:
                outs: list[Tensor] = []
            elif isinstance(out, Tensor):
                outs = [out]
            elif isinstance(out, (list, tuple)):
                outs = list(out)
            else:
                outs = [out]
            for t in outs:
                if not isinstance(t, Tensor):
                    raise ValueError(f"create_graph({_qualname(fn)}): the function returned {type(t).__name__}; "
                                     "return None, a Tensor or a list/tuple of Tensors")
            g._g.outputs = [g.resolve(t._value) for t in outs]
        return g

    def _to_inputs(self, g: Graph, name: str, val: Any, by_ref: bool) -> Any:
        if isinstance(val, (Tensor, TensorSpec)):
            from .creation import graph_input

            return graph_input(val.shape, val.dtype, name, by_ref=by_ref)
        if isinstance(val, (list, tuple)) and val and all(isinstance(x, (Tensor, TensorSpec)) for x in val):
            return type(val)(self._to_inputs(g, f"{name}_{i}", x, by_ref) for i, x in enumerate(val))
        if isinstance(val, dict) and val and all(isinstance(x, (Tensor, TensorSpec)) for x in val.values()):
            return {k: self._to_inputs(g, k, x, by_ref) for k, x in val.items()}
        return val

    def __enter__(self) -> "Ir":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __repr__(self) -> str:
        return f"<popxl.Ir over {self.core!r}>"

    def _repr_svg_(self) -> "str | None":
        """Jupyter shows an Ir as its Graphviz drawing."""
        return self.core._repr_svg_()


__all__ = ["Ir", "context"]
