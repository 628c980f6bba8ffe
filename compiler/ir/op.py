"""Op: one operation of a graph, with its in-place effects recorded as data."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .value import Value

if TYPE_CHECKING:
    from .graph import Graph


class Op:
    """An operation.

    - `inputs`: the SSA values read (for an in-place op, the version it overwrites).
    - `roles`: a name per input (``"t"``, ``"X"``, ``"step"`` ...), so an op can take
      optional tensor inputs the way PopART's indexed inputs do.
    - `outputs`: the values the op produces that a user sees (printed by print_schedule).
    - `modifies`: indices of inputs whose storage is written in place.
    - `aliases`: output index -> input index, for outputs that are the new version of a
      modified input (e.g. Accumulate's output 0 is the updated `t`).
    - `updates`: input index -> new version, for modified inputs that have no visible
      output (AdamUpdater's step, a Call's by-reference inputs).
    - `handles`: what the user passed, when that differs from `inputs` (a read of an
      older handle resolves to the newest version); only print_schedule looks at it.
    """

    __slots__ = (
        "id", "kind", "inputs", "roles", "outputs", "attrs", "modifies", "aliases",
        "updates", "called", "graph", "name", "handles", "source", "__weakref__",
    )

    def __init__(
        self,
        id: int,
        kind: str,
        inputs: list[Value],
        roles: tuple[str, ...],
        attrs: dict[str, Any],
        graph: "Graph",
        name: str = "",
        modifies: tuple[int, ...] = (),
        aliases: dict[int, int] | None = None,
        called: "Graph | None" = None,
        source: str | None = None,
    ) -> None:
        self.id = id
        self.kind = kind
        self.inputs = list(inputs)
        self.roles = tuple(roles)
        self.attrs = dict(attrs)
        self.graph = graph
        self.name = name or kind
        self.modifies = tuple(modifies)
        self.aliases = dict(aliases or {})
        self.called = called
        self.outputs: list[Value] = []
        self.updates: dict[int, Value] = {}
        self.handles: tuple[Value, ...] | None = None
        self.source = source

    # ----------------------------------------------------------------- helpers
    def input(self, role: str) -> Value | None:
        """The input with this role, or None when it is not connected."""
        for r, v in zip(self.roles, self.inputs):
            if r == role:
                return v
        return None

    def has(self, role: str) -> bool:
        return role in self.roles

    def new_version(self, i: int) -> Value:
        """The value that holds input i's storage after this op writes it."""
        for o, j in self.aliases.items():
            if j == i:
                return self.outputs[o]
        return self.updates[i]

    @property
    def results(self) -> list[Value]:
        """Every value this op defines: visible outputs, then hidden new versions."""
        return self.outputs + [self.updates[i] for i in sorted(self.updates)]

    @property
    def label(self) -> str:
        return f"{self.kind}.{self.id}"

    def __repr__(self) -> str:
        ins = ", ".join(f"%{v.id}" for v in self.inputs)
        outs = ", ".join(f"%{v.id}" for v in self.results)
        return f"<{self.label} ({ins}) -> ({outs}) {self.attrs}>"
