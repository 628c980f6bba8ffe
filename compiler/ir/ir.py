"""Ir: owns the graphs, the main graph, variables with their data, caller-owned buffers (specs only),
constants and host streams."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .graph import Graph
from .sharding import ShardLayout
from .spec import TensorSpec
from .value import Value


@dataclass(frozen=True)
class Stream:
    name: str
    spec: TensorSpec
    direction: Literal["h2d", "d2h"]


class Ir:
    def __init__(self, replication: int = 1) -> None:
        self._op_counter = 100  # PopART's Ir::opsCounter starts at 100
        self._value_counter = 0
        self._graph_counter = 0
        self._tensor_counter = 0  # for "__t{k}" name disambiguation
        self.graphs: dict[str, Graph] = {}
        self.main = Graph(self, "")
        self.graphs[""] = self.main
        self.variables: dict[int, np.ndarray] = {}  # value id -> initial data
        self.externals: list[int] = []  # value ids of caller-owned buffers (no data), in declaration order
        self.constants: dict[int, np.ndarray] = {}  # value id -> data (any graph)
        self.streams: dict[str, Stream] = {}
        self.replication_factor = int(replication)
        self.num_host_transfers = 1
        self.meta: dict[str, Any] = {}
        # what dedup_subgraphs merged: removed graph id -> id of the identical graph kept in its place
        self.merged_graphs: dict[str, str] = {}
        # variables shard_weight_update keeps as one (k,) shard per replica: value id -> layout (sharding.py)
        self.sharded_variables: dict[int, ShardLayout] = {}

    # ------------------------------------------------------------------ ids
    def _next_op_id(self) -> int:
        i = self._op_counter
        self._op_counter += 1
        return i

    def _next_value_id(self) -> int:
        self._value_counter += 1
        return self._value_counter

    def unique_graph_id(self, qualname: str) -> str:
        gid = f"{qualname}_subgraph({self._graph_counter})"
        self._graph_counter += 1
        return gid

    def new_graph(self, gid: str) -> Graph:
        if gid in self.graphs:
            raise ValueError(f"a graph named {gid!r} already exists")
        g = Graph(self, gid)
        self.graphs[gid] = g
        return g

    # ------------------------------------------------------------- tensors
    def add_variable(self, data: np.ndarray, name: str) -> Value:
        from .dtypes import DType

        v = self.main.new_value(TensorSpec(data.shape, DType.from_numpy(data.dtype)), name, "variable")
        self.variables[v.id] = np.array(data, copy=True)
        return v

    def add_external(self, spec: TensorSpec, name: str) -> Value:
        """A main-graph buffer the caller owns: the Ir keeps its spec only, and every run of the
        compiled program must bind an array to it (the runtime refuses a run without one)."""
        v = self.main.new_value(spec, name, "external")
        self.externals.append(v.id)
        return v

    def buffer_ids(self) -> list[int]:
        """The main graph's buffers in the order of a compiled program's variable table: the owned
        variables, then the caller-owned (external) ones."""
        return list(self.variables) + list(self.externals)

    def add_constant(self, graph: Graph, data: np.ndarray, name: str) -> Value:
        from .dtypes import DType

        v = graph.new_value(TensorSpec(data.shape, DType.from_numpy(data.dtype)), name, "constant")
        self.constants[v.id] = np.array(data, copy=True)
        return v

    def add_stream(self, name: str, spec: TensorSpec, direction: Literal["h2d", "d2h"]) -> Stream:
        if name in self.streams:
            raise ValueError(f"a host stream named {name!r} already exists; give streams unique names")
        s = Stream(name, spec, direction)
        self.streams[name] = s
        return s

    def transfers_per_execution(self) -> dict[str, int]:
        """Host transfers of each used stream in one execution of the main graph (its HostLoads or
        HostStores, numbered by their `transfer` attr); a session.run of num_host_transfers = T executes
        the main graph T / k times."""
        per: dict[str, int] = {}
        for g in self.reachable_graphs():
            for op in g.ops:
                if op.kind in ("HostLoad", "HostStore"):
                    s = op.attrs["stream"]
                    per[s] = max(per.get(s, 1), op.attrs.get("transfer", 0) + 1)
        return per

    def value(self, vid: int) -> Value:
        for g in self.graphs.values():
            if vid in g.values:
                return g.values[vid]
        raise KeyError(vid)

    def reachable_graphs(self) -> list[Graph]:
        """The main graph and every graph it calls, transitively, callers first."""
        order: list[Graph] = []
        todo = [self.main]
        while todo:
            g = todo.pop(0)
            if g in order:
                continue
            order.append(g)
            todo.extend(g.called_graphs())
        return order

    def __repr__(self) -> str:
        ext = f", {len(self.externals)} caller-owned buffers" if self.externals else ""
        return f"<Ir: {len(self.graphs)} graphs, {len(self.variables)} variables{ext}>"

    # ------------------------------------------------------------ save/load
    def save(self, path, data: str = "inline") -> None:
        """Write this Ir as versioned JSON (see compiler/ir/serialize.py); data="npz" puts arrays in a .npz beside it."""
        from .serialize import save

        save(self, path, data)  # type: ignore[arg-type]

    @staticmethod
    def load(path, check: bool = True) -> "Ir":
        """Read an Ir written by `save`; a malformed file raises IRFormatError with its line and JSON path
        (check=False: skip the op checks and verify, to inspect a broken IR)."""
        from .serialize import load

        return load(path, check)

    def _repr_svg_(self) -> "str | None":
        """Jupyter shows an Ir as its Graphviz drawing."""
        from .dot import repr_svg

        return repr_svg(self)
