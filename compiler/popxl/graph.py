"""popxl.Graph: a user-facing handle on an IR graph, with the frontend's per-graph state."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compiler.ir import Graph as IrGraph
from compiler.ir import Op, Value

from . import context

if TYPE_CHECKING:
    from .ir import Ir
    from .tensor import Tensor


class Graph:
    def __init__(self, ir: "Ir", g: IrGraph) -> None:
        self.ir = ir
        self._g = g
        # newest SSA version of each storage: a read through any handle resolves here
        self._latest: dict[int, Value] = {}
        self._previous_ops: list[Any] = []
        self._unordered: list[Op] = []
        self._names: set[str] = set()
        self._hooks: dict[int, Any] = {}
        self._views: dict[int, Any] = {}  # storage -> (view op, the other tensor's name); see ops/views.py
        self._hook_counter = 0

    # ---------------------------------------------------------- context
    def __enter__(self) -> "Graph":
        context.push_graph(self)
        return self

    def __exit__(self, *exc: object) -> None:
        context.pop_graph()

    @property
    def name(self) -> str:
        return self._g.id

    id = name

    @property
    def main_graph(self) -> "Graph":
        return self.ir.main_graph

    @property
    def inputs_by_name(self) -> dict[str, "Tensor"]:
        return {t.name: t for t in self.inputs}

    @property
    def called_graphs(self) -> list["Graph"]:
        return [self.ir._wrapper(g) for g in self._g.called_graphs()]

    @property
    def inputs(self) -> tuple["Tensor", ...]:
        from .tensor import wrap

        return tuple(wrap(v) for v in self._g.inputs)

    @property
    def outputs(self) -> tuple["Tensor", ...]:
        from .tensor import wrap

        return tuple(wrap(v) for v in self._g.outputs)

    # ---------------------------------------------------- tensors (PopXL views)
    def _visible_values(self) -> list[Value]:
        """The tensors PopXL would list for this graph: inputs, variables, constants and op outputs.
        An op's in-place write without an output (e.g. AdamUpdater's step) is our SSA bookkeeping,
        not a PopXL tensor, so it is left out."""
        out: list[Value] = []
        for v in self._g.values.values():
            if v.kind == "op" and (v.producer is None or not any(o is v for o in v.producer.outputs)):
                continue
            out.append(v)
        return out

    @property
    def tensors(self) -> tuple[Any, ...]:
        """Every tensor of the graph; the main graph also lists its host streams' tensors (as PopXL)."""
        from .tensor import wrap

        ts: list[Any] = [wrap(v) for v in self._visible_values()]
        if self._g is self.ir.core.main:
            ts += list(self.ir.stream_handles.values())
        return tuple(ts)

    @property
    def variables(self) -> tuple["Tensor", ...]:
        from .tensor import wrap

        return tuple(wrap(v) for v in self._visible_values() if v.kind == "variable")

    @property
    def constants(self) -> tuple["Tensor", ...]:
        from .tensor import wrap

        return tuple(wrap(v) for v in self._visible_values() if v.kind == "constant")

    @property
    def _by_ref_inputs(self) -> set["Tensor"]:
        from .tensor import wrap

        return {wrap(self._g.inputs[i]) for i in sorted(self._g.by_ref)}

    def get_input_tensors(self) -> tuple["Tensor", ...]:
        return self.inputs

    def get_output_tensors(self) -> tuple["Tensor", ...]:
        return self.outputs

    def get_tensor(self, tensor_id: str) -> "Tensor":
        for t in self.tensors:
            if getattr(t, "id", None) == tensor_id:
                return t
        raise KeyError(f"graph {self.name!r} has no tensor {tensor_id!r}")

    # ------------------------------------------------------------- op hooks
    def register_op_created_hook(self, fn: Any) -> int:
        """Call `fn(op)` for every op created in this graph from now on; returns a handle for
        remove_op_created_hook. (PopXL passes its C++ op; here it is the IR `Op`.)"""
        self._hook_counter += 1
        self._hooks[self._hook_counter] = fn
        return self._hook_counter

    def remove_op_created_hook(self, handle: int) -> None:
        if handle not in self._hooks:
            raise KeyError(f"no op-created hook with handle {handle} on graph {self.name!r}")
        del self._hooks[handle]

    # ---------------------------------------------------------- SSA resolution
    def resolve(self, v: Value) -> Value:
        return self._latest.get(v.storage, v)

    def record(self, op: Op) -> None:
        for v in op.results:
            if v.version > 0:
                self._latest[v.storage] = v
        context.on_op_created(self, op)
        for fn in list(self._hooks.values()):
            fn(op)

    # ------------------------------------------------------ unordered blocks
    def _note_unordered(self, op: Op) -> None:
        self._unordered.append(op)

    def _close_unordered_block(self) -> None:
        if len(self._unordered) > 1:
            self._g.unordered_groups.append(list(self._unordered))
        self._unordered = []

    # ------------------------------------------------------------- naming
    def unique_name(self, name: str | None, default: str = "t") -> str:
        n = context.scoped_name(name or default)
        if n in self._names:
            n = f"{n}__t{self.ir.core._tensor_counter}"
            self.ir.core._tensor_counter += 1
        self._names.add(n)
        return n

    def print_schedule(self) -> str:
        from compiler.ir import print_schedule

        return print_schedule(self._g)

    def __repr__(self) -> str:
        return f"Graph[{self.name!r}]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and other._g is self._g

    def __hash__(self) -> int:
        return id(self._g)
