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
    def inputs(self) -> tuple["Tensor", ...]:
        from .tensor import wrap

        return tuple(wrap(v) for v in self._g.inputs)

    @property
    def outputs(self) -> tuple["Tensor", ...]:
        from .tensor import wrap

        return tuple(wrap(v) for v in self._g.outputs)

    # ---------------------------------------------------------- SSA resolution
    def resolve(self, v: Value) -> Value:
        return self._latest.get(v.storage, v)

    def record(self, op: Op) -> None:
        for v in op.results:
            if v.version > 0:
                self._latest[v.storage] = v
        context.on_op_created(self, op)

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
            n = f"{n}__t{self.ir._tensor_counter}"
            self.ir._tensor_counter += 1
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
