"""Scope: the C++ being written for one IR graph (its statements, identifiers, and storage -> tensor)."""
from __future__ import annotations

from typing import Sequence

from compiler.ir import DType, Graph, Value

from .names import Namer
from .types import PoplarError, poplar_type


def dims(shape: Sequence[int]) -> str:
    """A C++ braced shape, e.g. {8, 512} (and {} for a scalar)."""
    return "{" + ", ".join(str(int(d)) for d in shape) + "}"


def reshape(expr: str, src: Sequence[int], dst: Sequence[int]) -> str:
    """`expr.reshape(dst)`, or `expr` itself when the shapes already agree."""
    return expr if tuple(src) == tuple(dst) else f"{expr}.reshape({dims(dst)})"


def cstr(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Scope:
    """Statements of one build function. Every storage of the graph maps to one poplar::Tensor: an op that
    writes in place writes that tensor, so SSA versions of a storage share it (as the interpreter's buffers)."""

    def __init__(self, graph: Graph, namer: Namer | None = None, indent: int = 2) -> None:
        self.graph = graph
        self.names = namer or Namer()
        self.lines: list[str] = []
        self.tensors: dict[int, str] = {}  # storage id -> C++ tensor expression
        self.indent = indent
        self.streams: dict[str, str] = {}  # host stream name -> C++ DataStream variable
        self.callees: dict[str, str] = {}  # called graph id -> C++ Subgraph variable

    # ------------------------------------------------------------ writing
    def stmt(self, text: str) -> str:
        """Append one statement (possibly spanning lines); returns its text without indentation."""
        pad = " " * self.indent
        self.lines.extend(pad + line for line in text.split("\n"))
        return text

    def comment(self, text: str) -> None:
        for line in text.split("\n"):
            self.lines.append(" " * self.indent + ("// " + line).rstrip())

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    # ------------------------------------------------------------ tensors
    def tensor(self, v: Value) -> str:
        try:
            return self.tensors[v.storage]
        except KeyError:
            raise PoplarError(f"Poplar emitter: {v.name!r} (%{v.id}) in graph {self.graph.id or 'main'!r} is read "
                              "before any op defines it; verify the IR (compiler.ir.verify)") from None

    def has(self, v: Value) -> bool:
        return v.storage in self.tensors

    def bind(self, v: Value, expr: str) -> None:
        self.tensors[v.storage] = expr

    def fresh(self, hint: str) -> str:
        return self.names.fresh(hint)

    def add_linear(self, hint: str, dtype: DType, shape: Sequence[int], debug: str) -> tuple[str, str]:
        """`Tensor name = addLinear(...)`: a new variable spread over the tiles. Returns (name, statement)."""
        name = self.fresh(hint)
        text = f"Tensor {name} = addLinear(graph, {poplar_type(dtype, debug)}, {dims(shape)}, {cstr(debug)});"
        return name, self.stmt(text)
