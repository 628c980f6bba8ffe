"""Alias analysis: which SSA values share a storage, and which ops read or write it, in which version.

The IR records aliasing as data: an in-place output has its modified input's `storage` and the next
`version`; a Call's by-reference input `i` gets a new caller-side version (`call.updates[i]`) that the
callee's final version of input `i` is written back to. `AliasInfo(graph)` turns that into queries the
other passes share (readers / writer of a version, last access, protected storages, hazards).

The registered pass only annotates: `graph.info["alias_groups"] = {storage: [value ids by version]}` for
every storage with more than one version, and `graph.info["call_aliases"] = {call op id: {callee input
index: [caller value id before, caller value id after]}}` for by-reference call inputs.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from compiler.ir import Graph, Ir, Op, Value
from compiler.ir.value import DEFINED_KINDS

from .registry import register

StorageKind = Literal["variable", "external", "input", "constant", "temporary"]


@dataclass(frozen=True)
class Access:
    """One op touching one version of a storage: it reads `value`, or it produces it (write)."""

    op: Op
    position: int
    value: Value
    write: bool


class AliasInfo:
    """Storage facts of one graph in its current op order (recompute after editing the graph)."""

    def __init__(self, g: Graph) -> None:
        self.graph = g
        self.position: dict[Op, int] = {op: k for k, op in enumerate(g.ops)}
        self.accesses: dict[int, list[Access]] = defaultdict(list)
        self.versions: dict[int, dict[int, Value]] = defaultdict(dict)
        self.writers: dict[tuple[int, int], Op] = {}
        self.readers: dict[tuple[int, int], list[Op]] = defaultdict(list)
        self.kind: dict[int, StorageKind] = {}
        for v in g.inputs:
            self.versions[v.storage][v.version] = v
            self.kind[v.storage] = "input"
        for v in g.values.values():
            if v.kind in DEFINED_KINDS:
                self.versions[v.storage][v.version] = v
                self.kind[v.storage] = v.kind  # type: ignore[assignment]
        for k, op in enumerate(g.ops):
            for v in op.inputs:
                self.accesses[v.storage].append(Access(op, k, v, False))
                self.readers[(v.storage, v.version)].append(op)
            for v in op.results:
                self.accesses[v.storage].append(Access(op, k, v, True))
                self.versions[v.storage][v.version] = v
                self.kind.setdefault(v.storage, "temporary")
                if v.version > 0:
                    self.writers[(v.storage, v.version)] = op
        self.output_storages = {v.storage for v in g.outputs}

    # --------------------------------------------------------------- queries
    def values_of(self, storage: int) -> list[Value]:
        """Every version of a storage, oldest first."""
        return [v for _, v in sorted(self.versions.get(storage, {}).items())]

    def newest(self, storage: int) -> Value:
        return self.values_of(storage)[-1]

    def writer_of(self, v: Value) -> Op | None:
        """The op that overwrites `v` (produces the next version of its storage), if any."""
        return self.writers.get((v.storage, v.version + 1))

    def is_written(self, storage: int) -> bool:
        """Whether any op writes this storage in place."""
        return any(ver > 0 for ver in self.versions.get(storage, {}))

    def last_access(self, storage: int) -> int:
        """Position of the last op touching the storage; len(ops) when a graph output reads it; -1 if none."""
        if storage in self.output_storages:
            return len(self.graph.ops)
        acc = self.accesses.get(storage)
        return acc[-1].position if acc else -1

    def is_protected(self, storage: int) -> bool:
        """Storage that outlives the graph or is shared: inputs, variables, constants."""
        return self.kind.get(storage, "temporary") != "temporary"

    def is_local_temporary(self, storage: int) -> bool:
        """Created by an op of this graph and not returned: nobody outside the graph can observe it."""
        return not self.is_protected(storage) and storage not in self.output_storages

    def hazards(self) -> list[tuple[Op, Op]]:
        """(reader, overwriter) pairs: every reader of version k must run before the writer of k+1."""
        out: list[tuple[Op, Op]] = []
        for (s, ver), readers in self.readers.items():
            w = self.writers.get((s, ver + 1))
            if w is not None:
                out += [(r, w) for r in readers if r is not w]
        return out


def call_aliases(call: Op) -> dict[int, tuple[Value, Value]]:
    """Callee input index -> (caller value passed, caller value after the call) for by-reference inputs."""
    return {i: (call.inputs[i], call.new_version(i)) for i in call.modifies}


def alias_groups(g: Graph) -> dict[int, list[Value]]:
    """storage -> its versions, for storages with more than one version."""
    info = AliasInfo(g)
    return {s: info.values_of(s) for s in info.versions if len(info.versions[s]) > 1}


def is_protected(g: Graph, storage: int) -> bool:
    """Storage that outlives the graph: inputs, variables, constants."""
    return AliasInfo(g).is_protected(storage)


@register("alias_analysis")
def run(ir: Ir) -> bool:
    """Annotate every graph with its alias groups and by-reference call aliases (changes nothing)."""
    for g in ir.graphs.values():
        g.info["alias_groups"] = {s: [v.id for v in vs] for s, vs in alias_groups(g).items()}
        g.info["call_aliases"] = {
            op.id: {i: [a.id, b.id] for i, (a, b) in call_aliases(op).items()}
            for op in g.ops if op.called is not None and op.modifies
        }
    return False
