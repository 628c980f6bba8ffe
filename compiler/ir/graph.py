"""Graph: ordered ops over SSA values, with inputs, outputs, by-ref inputs and constraints."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from .memory import MemoryPlan
from .op import Op
from .spec import TensorSpec
from .value import Value, ValueKind

if TYPE_CHECKING:
    from .ir import Ir


class Graph:
    """A graph. `ops` is kept in a valid execution order (creation order from the
    frontend; the scheduling pass may reorder it)."""

    def __init__(self, ir: "Ir", id: str) -> None:
        self.ir = ir
        self.id = id
        self.inputs: list[Value] = []
        self.input_names: dict[int, str] = {}  # value id -> named-arg key (addons)
        self.by_ref: set[int] = set()  # indices into inputs
        self.outputs: list[Value] = []
        self.ops: list[Op] = []
        # (before, after) pairs: in_sequence and hazard-derived order constraints
        self.constraints: list[tuple[Op, Op]] = []
        # ops the user explicitly left unordered (in_sequence(False) blocks)
        self.unordered_groups: list[list[Op]] = []
        self.values: dict[int, Value] = {}
        self.info: dict[str, Any] = {}  # free-form notes (e.g. fusion refusals)
        self.memory_plan: MemoryPlan | None = None  # see memory.py

    @property
    def name(self) -> str:
        return self.id

    # ---------------------------------------------------------------- creation
    def new_value(
        self, spec: TensorSpec, name: str, kind: ValueKind, producer: Op | None = None,
        storage: int | None = None, version: int = 0,
    ) -> Value:
        v = Value(self.ir._next_value_id(), spec, name, self, kind, producer, storage, version)
        self.values[v.id] = v
        return v

    def add_input(self, spec: TensorSpec, name: str, by_ref: bool = False) -> Value:
        v = self.new_value(spec, name, "input")
        if by_ref:
            self.by_ref.add(len(self.inputs))
        self.inputs.append(v)
        return v

    def make_op(
        self,
        kind: str,
        inputs: list[Value],
        out_specs: list[TensorSpec],
        *,
        roles: tuple[str, ...] | None = None,
        attrs: dict[str, Any] | None = None,
        modifies: tuple[int, ...] = (),
        aliases: dict[int, int] | None = None,
        called: "Graph | None" = None,
        name: str = "",
        out_names: list[str] | None = None,
        source: str | None = None,
        append: bool = True,
    ) -> Op:
        """Create an op with fresh output values (and new versions for modified inputs)."""
        for v in inputs:
            if v.graph is not self:
                raise ValueError(
                    f"{kind}: input {v.name!r} belongs to graph {v.graph.id!r}, not {self.id!r}; "
                    "pass it as a graph input or call the graph that owns it"
                )
        roles = roles if roles is not None else tuple(f"in{i}" for i in range(len(inputs)))
        op = Op(self.ir._next_op_id(), kind, inputs, roles, attrs or {}, self, name,
                modifies, aliases, called, source)
        aliases = op.aliases
        for k, spec in enumerate(out_specs):
            nm = out_names[k] if out_names and k < len(out_names) else f"{op.name}_out{k}"
            if k in aliases:
                src = inputs[aliases[k]]
                v = self.new_value(spec, nm, "op", op, src.storage, src.version + 1)
            else:
                v = self.new_value(spec, nm, "op", op)
            op.outputs.append(v)
        for i in modifies:
            if i not in aliases.values():
                src = inputs[i]
                op.updates[i] = self.new_value(src.spec, src.name, "op", op, src.storage, src.version + 1)
        if append:
            self.ops.append(op)
        return op

    # ----------------------------------------------------------------- editing
    def users(self, v: Value) -> list[Op]:
        return [op for op in self.ops if any(x is v for x in op.inputs)]

    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Every op input and graph output that reads `old` reads `new` instead."""
        for op in self.ops:
            op.inputs = [new if x is old else x for x in op.inputs]
        self.outputs = [new if x is old else x for x in self.outputs]

    def erase(self, op: Op) -> None:
        self.ops.remove(op)
        self.constraints = [(a, b) for a, b in self.constraints if a is not op and b is not op]
        self.unordered_groups = [[o for o in g if o is not op] for g in self.unordered_groups]
        for v in op.results:
            self.values.pop(v.id, None)

    # ----------------------------------------------------------------- queries
    def final_versions(self) -> dict[int, Value]:
        """storage id -> the last version of that storage in this graph."""
        last: dict[int, Value] = {}
        for v in self.inputs:
            last[v.storage] = v
        for op in self.ops:
            for v in op.inputs:
                cur = last.get(v.storage)
                if cur is None or cur.version < v.version:
                    last[v.storage] = v
            for v in op.results:
                cur = last.get(v.storage)
                if cur is None or cur.version < v.version:
                    last[v.storage] = v
        return last

    def called_graphs(self) -> list["Graph"]:
        seen: list[Graph] = []
        for op in self.ops:
            if op.called is not None and op.called not in seen:
                seen.append(op.called)
        return seen

    def all_values(self) -> Iterable[Value]:
        yield from self.inputs
        for op in self.ops:
            yield from op.results

    def __repr__(self) -> str:
        return f"<Graph {self.id!r}: {len(self.inputs)} inputs, {len(self.ops)} ops>"

    def _repr_svg_(self) -> "str | None":
        """Jupyter shows a graph as its Graphviz drawing."""
        from .dot import repr_svg

        return repr_svg(self.ir, [self])
