"""Subgraph deduplication.

before -> after: graphs G1, G2 with the same structure (ops, attributes, input specs, by-ref
flags; names ignored) -> one graph; every Call of G2 now calls G1 and G2 is removed.
Callees are merged first, so graphs that differ only in which duplicate they call merge too.
Works without `cache=True` in the frontend. Records Ir.merged_graphs = {removed graph id: kept graph id}.
"""
from __future__ import annotations

from compiler.ir import Ir
from compiler.ir.hashing import digest, graph_key

from .registry import register


def dedup(ir: Ir) -> dict[str, str]:
    """Merge duplicates; returns {removed graph id: kept graph id}."""
    merged: dict[str, str] = {}
    while True:
        rep: dict[str, str] = {}
        keys: dict[str, str] = {}
        by_key: dict[str, str] = {}
        for gid, g in ir.graphs.items():
            if g is ir.main:
                continue
            k = digest(graph_key(ir, g, keys))
            keys[gid] = k
            if k in by_key:
                rep[gid] = by_key[k]
            else:
                by_key[k] = gid
        if not rep:
            return merged
        for g in ir.graphs.values():
            for op in g.ops:
                if op.called is not None and op.called.id in rep:
                    op.called = ir.graphs[rep[op.called.id]]
        for gid, keep in rep.items():
            del ir.graphs[gid]
            merged[gid] = keep


@register("dedup_subgraphs")
def run(ir: Ir) -> bool:
    """Merge structurally identical subgraphs (names ignored) and retarget their calls."""
    merged = dedup(ir)
    ir.merged_graphs.update(merged)
    return bool(merged)
