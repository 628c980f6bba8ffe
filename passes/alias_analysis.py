"""Alias analysis: which SSA values share a storage, and which ops read or write it, in which version.

In-place outputs share their modified input's storage (the IR records this as `Value.storage`);
by-reference call inputs alias the caller's tensor through the Call's `updates`. The pass only
annotates: `graph.info["alias_groups"] = {storage: [value ids by version]}` for storages with
more than one version.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from compiler.ir import Graph, Ir, Op, Value

from .registry import register


@dataclass(frozen=True)
class Access:
    op: Op
    value: Value
    write: bool  # True: the op produces a new version of the storage


def accesses(g: Graph) -> dict[int, list[Access]]:
    """storage -> accesses in op order (reads of inputs, then writes of new versions)."""
    out: dict[int, list[Access]] = defaultdict(list)
    for op in g.ops:
        for v in op.inputs:
            out[v.storage].append(Access(op, v, False))
        for v in op.results:
            out[v.storage].append(Access(op, v, v.version > 0))
    return out


def alias_groups(g: Graph) -> dict[int, list[Value]]:
    groups: dict[int, list[Value]] = defaultdict(list)
    for v in g.all_values():
        groups[v.storage].append(v)
    for vals in groups.values():
        vals.sort(key=lambda v: v.version)
    return {s: vs for s, vs in groups.items() if len(vs) > 1}


def is_protected(g: Graph, storage: int) -> bool:
    """Storage that outlives the graph: inputs, variables, constants."""
    return any(v.storage == storage and v.kind in ("input", "variable", "constant") for v in g.values.values())


@register("alias_analysis")
def run(ir: Ir) -> bool:
    for g in ir.graphs.values():
        g.info["alias_groups"] = {s: [v.id for v in vs] for s, vs in alias_groups(g).items()}
    return False
