"""Horizontal fusion: calls of one-kernel graphs on different parameters become one MultiKernel launch.

before -> after: Call(G1)(w1, g1, m1, v1), Call(G2)(w2, g2, m2, v2), ... in one graph, where each Gk's body
is a single FusedKernel (or one elementwise op) with the same expression (same optimizer; sizes may differ) ->
one MultiKernel (compiler/ops/multi_kernel.py) with a group of buffers per call. The calls' by-reference
results become the kernel's in-place results; graphs no longer called are removed.

A call joins a group only when the result is exactly the calls run one after another:
  - its graph is one elementwise op or FusedKernel reading only the graph's inputs and constants, writing only by-reference
    inputs, and returning only tensors it creates; every operand is full-size or a single element;
  - its by-reference tensors alias no other operand of the call, and no group member reads or writes a
    storage another member writes;
  - no op outside the group depends on one member and feeds another (checked as in fuse_elementwise).
Run after fuse_elementwise (which makes the one-kernel graphs) and dedup_subgraphs.
"""
from __future__ import annotations

from dataclasses import dataclass

from compiler.ir import Graph, Ir, Op, Value
from compiler.ir.hashing import canon
from compiler.ops import expr_for, multi_kernel  # noqa: F401  (registers MultiKernel)
from compiler.ops.primitives import Expr

from .contraction import Contraction
from .dce import remove_unused_graphs
from .fuse_elementwise import is_fusible, iteration_shape
from .registry import register
from .rewrite import replace_group
from .schedule import dependency_graph, topological_order


@dataclass(frozen=True)
class Kernel:
    """A callee's single elementwise op, seen as one loop: expr over op.inputs, results op.outputs."""

    op: Op
    expr: Expr
    shape: tuple[int, ...]


def kernel_of(call: Op) -> Kernel | None:
    """The callee's single elementwise op (usually a FusedKernel) when the call qualifies, else None."""
    h = call.called
    if h is None or len(h.ops) != 1 or not is_fusible(h.ops[0]) or h.ops[0].updates:
        return None
    k = h.ops[0]
    shape = tuple(k.attrs["shape"]) if k.kind == "FusedKernel" else (iteration_shape(k) or ())
    inputs = {v.id: i for i, v in enumerate(h.inputs)}
    if any(v.id not in inputs and v.kind != "constant" for v in k.inputs):
        return None
    if any(v.spec.nelms != 1 and v.shape != shape for v in list(k.inputs) + k.outputs):
        return None
    if any(inputs.get(k.inputs[i].id) not in h.by_ref for i in k.modifies):
        return None
    if any(v.producer is not k or v.version != 0 for v in h.outputs) or len(set(h.outputs)) != len(h.outputs):
        return None
    for i in call.modifies:
        if sum(x.storage == call.inputs[i].storage for x in call.inputs) != 1:
            return None
    return Kernel(k, k.attrs["expr"] if k.kind == "FusedKernel" else expr_for(k), shape)


def signature(k: Kernel) -> tuple:
    """Calls with equal signatures run the same loop body, whatever their sizes."""
    op = k.op
    return (canon(k.expr), tuple((v.dtype.name, v.spec.nelms == 1) for v in op.inputs),
            tuple((v.dtype.name, v.spec.nelms == 1) for v in op.outputs), op.modifies, tuple(sorted(op.aliases.items())))


def _storages(call: Op) -> tuple[set[int], set[int]]:
    """(storages the call reads, storages it writes) in the caller."""
    return {v.storage for v in call.inputs}, {call.inputs[i].storage for i in call.modifies}


def groups(g: Graph) -> list[list[Op]]:
    c = Contraction(dependency_graph(g))
    open_: dict[tuple, list[list[Op]]] = {}
    for op in g.ops:
        k = kernel_of(op) if op.kind == "Call" else None
        if k is None:
            continue
        reads, writes = _storages(op)
        for grp in open_.setdefault(signature(k), []):
            g_reads = set().union(*(_storages(o)[0] for o in grp))
            g_writes = set().union(*(_storages(o)[1] for o in grp))
            rep = c.find(grp[0])
            if writes & g_reads or reads & g_writes or op in c.successors(rep) or c.blocker([rep, op]) is not None:
                continue  # members must be independent: no direct edge, no path through other ops
            c.merge([grp[0], op])
            grp.append(op)
            break
        else:
            open_[signature(k)].append([op])
    return [grp for lists in open_.values() for grp in lists if len(grp) > 1]


def build(ir: Ir, g: Graph, calls: list[Op]) -> tuple[Op, list[tuple[Value, Value]]]:
    """The MultiKernel for `calls` and (old caller value, new value) pairs to retarget."""
    kernels = [kernel_of(c) for c in calls]
    inputs: list[Value] = []
    specs, aliases, shapes, names = [], {}, [], []
    consts: dict[int, Value] = {}
    pairs: list[tuple[Value, Value | int]] = []
    for call, kern in zip(calls, kernels):
        h = call.called
        assert h is not None and kern is not None
        k = kern.op
        pos = {v.id: i for i, v in enumerate(h.inputs)}
        base_in, base_out = len(inputs), len(specs)
        for v in k.inputs:
            if v.id in pos:
                inputs.append(call.inputs[pos[v.id]])
            else:
                if v.id not in consts:
                    consts[v.id] = ir.add_constant(g, ir.constants[v.id], v.name)
                inputs.append(consts[v.id])
        for j, r in enumerate(k.outputs):
            specs.append(r.spec)
            names.append(r.name)
            if j in k.aliases:
                aliases[base_out + j] = base_in + k.aliases[j]
                pairs.append((call.new_version(pos[k.inputs[k.aliases[j]].id]), base_out + j))
            elif r in h.outputs:
                pairs.append((call.outputs[h.outputs.index(r)], base_out + j))
        written = {pos[k.inputs[i].id] for i in k.modifies}
        pairs += [(call.new_version(i), call.inputs[i]) for i in call.modifies if i not in written]
        shapes.append(kern.shape)
    n, e = len(kernels[0].op.inputs), kernels[0].expr  # type: ignore[union-attr]
    op = g.make_op(
        "MultiKernel", inputs, specs, roles=tuple(f"g{i // n}_in{i % n}" for i in range(len(inputs))),
        attrs={"expr": e, "arity": n, "shapes": tuple(shapes), "out_specs": tuple((s.shape, s.dtype) for s in specs),
               "members": tuple(c.label for c in calls), "kernel_listing": e.listing()},
        modifies=tuple(sorted(aliases.values())), aliases=aliases, name="multi", out_names=names, append=False)
    return op, [(old, op.outputs[new] if isinstance(new, int) else new) for old, new in pairs]


def fuse_graph(ir: Ir, g: Graph) -> bool:
    found = groups(g)
    for calls in found:
        op, pairs = build(ir, g, calls)
        replace_group(g, calls, op, pairs)
    if found:
        g.ops = topological_order(g)
    return bool(found)


@register("fuse_horizontal")
def run(ir: Ir) -> bool:
    """Group calls of same-bodied one-kernel graphs on different buffers into one MultiKernel launch."""
    changed = False
    for g in list(ir.graphs.values()):
        changed |= fuse_graph(ir, g)
    if changed:
        remove_unused_graphs(ir)
    return changed

