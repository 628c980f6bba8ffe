"""Vertical elementwise fusion.

before -> after: a run of consecutive elementwise ops (in schedule order) over one iteration
shape, plus ops on single-element tensors (hyper-parameters, the Adam step) ->
one FusedKernel whose primitive expression is the members' decompositions chained together.
It reads each external tensor once and writes, per storage, only the newest version, and only
the intermediates someone outside the kernel reads.

Fusion is refused (and the reason recorded in graph.info["fusion_refusals"]) when a member's
iteration shape differs, or when a storage written in the kernel is also read with another
index pattern (a broadcast read of a tensor the loop overwrites would see updated elements).
"""
from __future__ import annotations

from math import prod

import numpy as np

from compiler.ir import Graph, Ir, Op, TensorSpec, Value
from compiler.ops import expr_for, get
from compiler.ops.fused import inline_expr
from compiler.ops.primitives import Expr

from .registry import register


def _is_elementwise(op: Op) -> bool:
    return get(op.kind).decompose is not None and op.called is None


def _op_shape(op: Op) -> tuple[int, ...] | None:
    """Iteration shape, or None for an op over single-element tensors only."""
    if op.kind == "FusedKernel":
        shape = tuple(op.attrs["shape"])
        return None if prod(shape) == 1 else shape
    vals = list(op.inputs) + op.results
    if all(v.spec.nelms == 1 for v in vals):
        return None
    return tuple(np.broadcast_shapes(*(v.shape for v in vals)))


class Group:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.shape: tuple[int, ...] | None = None
        self.reads: dict[int, set[tuple[int, ...]]] = {}  # storage -> shapes read
        self.writes: dict[int, tuple[int, ...]] = {}  # storage -> shape written

    def refusal(self, op: Op) -> str | None:
        shape = _op_shape(op)
        if shape is not None and self.shape is not None and shape != self.shape:
            return f"iteration shape {shape} differs from the kernel's {self.shape}"
        space = shape or self.shape
        if space is not None:
            for v in op.results:
                if v.spec.nelms != 1 and v.shape != space:
                    return f"result {v.name!r} {v.spec} does not cover {space}"
        reads = {**{s: set(x) for s, x in self.reads.items()}}
        writes = dict(self.writes)
        for v in op.inputs:
            reads.setdefault(v.storage, set()).add(v.shape)
        for i in op.modifies:
            writes[op.inputs[i].storage] = op.inputs[i].shape
        for s, wshape in writes.items():
            if prod(wshape) == 1:
                continue
            for rshape in reads.get(s, ()):
                if rshape != wshape:
                    return f"a storage written with shape {wshape} is read with shape {rshape} in the same loop"
        return None

    def add(self, op: Op) -> None:
        self.ops.append(op)
        self.shape = self.shape or _op_shape(op)
        for v in op.inputs:
            self.reads.setdefault(v.storage, set()).add(v.shape)
        for i in op.modifies:
            self.writes[op.inputs[i].storage] = op.inputs[i].shape


def _build(g: Graph, members: list[Op], used_outside: set[int]) -> Op:
    inside = {v.id for op in members for v in op.results}
    inputs: list[Value] = []
    e = Expr()
    node: dict[int, int] = {}
    for op in members:
        args = []
        for v in op.inputs:
            if v.id not in node:
                if v.id in inside:
                    raise AssertionError(f"{op.label} reads {v.name!r} before its producer in the group")
                node[v.id] = e.input(len(inputs), v.dtype)
                inputs.append(v)
            args.append(node[v.id])
        outs = inline_expr(e, expr_for(op), args)
        for v, n in zip(op.results, outs):
            node[v.id] = n
    newest: dict[int, Value] = {}
    for op in members:
        for v in op.results:
            if v.version > 0 and (v.storage not in newest or newest[v.storage].version < v.version):
                newest[v.storage] = v
    results = [v for op in members for v in op.results
               if (v.version > 0 and newest[v.storage] is v) or (v.version == 0 and v.id in used_outside)]
    e.outputs = [node[v.id] for v in results]
    shape = next((tuple(s) for s in (_op_shape(op) for op in members) if s is not None), ())
    modifies = tuple(sorted({i for i, x in enumerate(inputs) for r in results if r.version > 0 and r.storage == x.storage}))
    aliases = {}
    for j, r in enumerate(results):
        if r.version > 0:
            srcs = [i for i, x in enumerate(inputs) if x.storage == r.storage]
            if not srcs:
                raise AssertionError(f"fused result {r.name!r} updates a storage the kernel never reads")
            aliases[j] = min(srcs, key=lambda i: inputs[i].version)
    fused = Op(g.ir._next_op_id(), "FusedKernel", inputs, tuple(f"in{i}" for i in range(len(inputs))),
               {"expr": e, "shape": shape, "out_specs": tuple((r.shape, r.dtype) for r in results),
                "members": tuple(op.label for op in members), "kernel_listing": e.listing()},
               g, "fused", modifies, aliases)
    fused.outputs = results
    for r in results:
        r.producer = fused
    return fused


def fuse_graph(g: Graph) -> bool:
    refusals: list[str] = g.info.setdefault("fusion_refusals", [])
    used_by: dict[int, list[Op]] = {}
    for op in g.ops:
        for v in op.inputs:
            used_by.setdefault(v.id, []).append(op)
    outputs = {v.id for v in g.outputs}
    groups: list[list[Op]] = []
    cur = Group()
    for op in g.ops:
        if not _is_elementwise(op):
            if len(cur.ops) > 1:
                groups.append(cur.ops)
            cur = Group()
            continue
        why = cur.refusal(op) if cur.ops else None
        if why is not None:
            refusals.append(f"{op.label} not fused with [{', '.join(o.label for o in cur.ops)}]: {why}")
            if len(cur.ops) > 1:
                groups.append(cur.ops)
            cur = Group()
        cur.add(op)
    if len(cur.ops) > 1:
        groups.append(cur.ops)
    for members in groups:
        mset = set(members)
        used_outside = {v.id for op in members for v in op.results
                        if v.id in outputs or any(u not in mset for u in used_by.get(v.id, []))}
        fused = _build(g, members, used_outside)
        at = g.ops.index(members[0])
        g.ops[at:at + len(members)] = [fused]
        g.constraints = [(fused if a in mset else a, fused if b in mset else b) for a, b in g.constraints]
        g.constraints = [(a, b) for a, b in g.constraints if a is not b]
        g.unordered_groups = [[fused if o in mset else o for o in grp] for grp in g.unordered_groups]
        for op in members:
            for v in op.results:
                if v not in fused.outputs:
                    g.values.pop(v.id, None)
    return bool(groups)


@register("fuse_elementwise")
def run(ir: Ir) -> bool:
    changed = False
    for g in ir.graphs.values():
        changed |= fuse_graph(g)
    return changed


__all__ = ["run", "fuse_graph", "TensorSpec"]
