"""Value: an SSA tensor. In-place updates create a new Value that shares its input's storage."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from .spec import TensorSpec

if TYPE_CHECKING:
    from .graph import Graph
    from .op import Op

# "variable": a main-graph buffer the Ir owns, with initial data in `Ir.variables`;
# "external": a main-graph buffer the caller owns (a torch tensor, a numpy array updated in place): the Ir
#   has its spec only (`Ir.externals`) and every run binds an array to it; nothing of ours allocates it
ValueKind = Literal["input", "op", "variable", "external", "constant"]
# kinds whose version 0 exists before the graph's first op runs
DEFINED_KINDS = ("variable", "external", "constant")


class Value:
    """One SSA version of a tensor.

    `storage` groups the versions of one buffer: a value created by an op that
    writes in place into input `x` has `storage == x.storage` and
    `version == x.version + 1`. Everything else owns a fresh storage.
    """

    __slots__ = ("id", "spec", "name", "graph", "producer", "kind", "storage", "version", "__weakref__")

    def __init__(
        self,
        id: int,
        spec: TensorSpec,
        name: str,
        graph: "Graph",
        kind: ValueKind,
        producer: "Op | None" = None,
        storage: int | None = None,
        version: int = 0,
    ) -> None:
        self.id = id
        self.spec = spec
        self.name = name
        self.graph = graph
        self.kind: ValueKind = kind
        self.producer = producer
        self.storage = id if storage is None else storage
        self.version = version

    @property
    def shape(self) -> tuple[int, ...]:
        return self.spec.shape

    @property
    def dtype(self):
        return self.spec.dtype

    def __repr__(self) -> str:
        return f"Value(%{self.id} {self.name!r} {self.spec} s{self.storage}v{self.version})"
