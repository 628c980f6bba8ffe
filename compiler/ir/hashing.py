"""Structural identity of graphs: the same ops, attributes, input specs and by-ref flags, names ignored.

Used by subgraph deduplication and as part of the compile-cache key.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .dtypes import DType
from .graph import Graph
from .ir import Ir

_IGNORED_ATTRS = {"kernel_listing", "members"}


def canon(x: Any) -> Any:
    """A hashable, name-free canonical form of an attribute value."""
    if isinstance(x, DType):
        return ("dtype", x.name)
    if isinstance(x, float):
        return ("f", float(x).hex())
    if isinstance(x, (bool, int, str)) or x is None:
        return x
    if isinstance(x, (list, tuple)):
        return tuple(canon(i) for i in x)
    if isinstance(x, dict):
        return tuple(sorted((k, canon(v)) for k, v in x.items()))
    if hasattr(x, "key") and callable(x.key):  # Expr
        return ("expr", canon(x.key()))
    if hasattr(x, "value") and isinstance(x.value, str):  # enums such as Prim
        return ("enum", x.value)
    return ("repr", repr(x))


def graph_key(ir: Ir, g: Graph, graph_ids: dict[str, Any] | None = None) -> tuple:
    """Canonical structure of `g`; called graphs appear through `graph_ids` (their own keys or classes)."""
    num: dict[int, Any] = {}
    for i, v in enumerate(g.inputs):
        num[v.id] = ("in", i)
    for v in g.values.values():
        if v.kind == "constant":
            data = ir.constants[v.id]
            num[v.id] = ("const", v.spec.shape, v.dtype.name, hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest())
        elif v.kind in ("variable", "external"):
            num[v.id] = ("var" if v.kind == "variable" else "ext", v.id)
    pos = {op: k for k, op in enumerate(g.ops)}
    ops = []
    for k, op in enumerate(g.ops):
        for j, v in enumerate(op.results):
            num[v.id] = ("op", k, j)
        called = None if op.called is None else (graph_ids or {}).get(op.called.id, op.called.id)
        attrs = tuple(sorted((a, canon(b)) for a, b in op.attrs.items() if a not in _IGNORED_ATTRS))
        ops.append((op.kind, op.roles, tuple(num.get(v.id, ("?", v.id)) for v in op.inputs), attrs,
                    tuple((v.spec.shape, v.dtype.name, v.version > 0) for v in op.results), op.modifies,
                    tuple(sorted(op.aliases.items())), called))
    return (
        tuple((v.spec.shape, v.dtype.name, i in g.by_ref) for i, v in enumerate(g.inputs)),
        tuple(ops),
        tuple(num.get(v.id, ("?", v.id)) for v in g.outputs),
        tuple(sorted((pos[a], pos[b]) for a, b in g.constraints if a in pos and b in pos)),
    )


def digest(obj: Any) -> str:
    return hashlib.sha256(repr(obj).encode()).hexdigest()


def ir_digest(ir: Ir) -> str:
    """A hash of the whole program's structure (graphs, variables' specs, streams), for cache keys."""
    keys = {gid: digest(graph_key(ir, g)) for gid, g in ir.graphs.items()}
    streams = tuple(sorted((n, s.spec.shape, s.spec.dtype.name, s.direction) for n, s in ir.streams.items()))
    variables = tuple((vid, ir.main.values[vid].spec.shape, ir.main.values[vid].dtype.name) for vid in ir.variables)
    externals = tuple((vid, ir.main.values[vid].spec.shape, ir.main.values[vid].dtype.name) for vid in ir.externals)
    return digest((tuple(sorted(keys.items())), streams, variables, externals, ir.num_host_transfers))
