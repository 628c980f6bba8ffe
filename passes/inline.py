"""Inlining of small called graphs where it enables fusion.

before -> after: outs = Call(G)(x0, x1, ...) where G has at most MAX_OPS ops, all elementwise, and an
elementwise op of the caller produces one of the call's inputs or reads one of its outputs ->
G's ops copied into the caller at the call's place, reading x0, x1, ... directly; readers of `outs` read
the copies' results; a by-reference input's new version is the copy's final version of it.

Only when inlining keeps the call's semantics exactly (a Call copies inputs in and by-reference inputs back):
  - G writes no by-value input (that write would land on the caller's tensor);
  - the call's by-reference tensors alias no other operand of the call;
  - every output of G is a distinct tensor G creates itself (not an input, which the call would copy).
G's in_sequence constraints come along; constraints on the call apply to every copied op.
"""
from __future__ import annotations

from typing import Callable

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import get

from .alias_analysis import AliasInfo
from .dce import remove_unused_graphs
from .registry import register
from .rewrite import drop_ops, retarget, substitute_ops

MAX_OPS = 8


def _elementwise(op: Op) -> bool:
    d = get(op.kind)
    return d.decompose is not None and d.elementwise and op.called is None


def refusal(call: Op, max_ops: int | None = MAX_OPS) -> str | None:
    """Why this call must stay a call, or None (max_ops None: any number of elementwise ops)."""
    h = call.called
    assert h is not None
    if (max_ops is not None and len(h.ops) > max_ops) or not h.ops or not all(_elementwise(op) for op in h.ops):
        return f"{h.id!r} is not a small elementwise graph"
    return semantic_refusal(call)


def semantic_refusal(call: Op) -> str | None:
    """Why copying the callee's ops into the caller would change what the call does, or None."""
    h = call.called
    assert h is not None
    info = AliasInfo(h)
    for i, v in enumerate(h.inputs):
        if i not in h.by_ref and info.is_written(v.storage):
            return f"{h.id!r} writes its by-value input {i}"
    for i in call.modifies:
        s = call.inputs[i].storage
        if sum(x.storage == s for x in call.inputs) != 1:
            return f"by-reference input {i} aliases another operand"
    if len({v.storage for v in h.outputs}) != len(h.outputs):
        return f"{h.id!r} returns one tensor twice"
    inputs = {v.storage for v in h.inputs} | {v.storage for v in h.values.values() if v.kind == "constant"}
    if any(v.storage in inputs or info.newest(v.storage) is not v for v in h.outputs):
        return f"{h.id!r} returns an input, a constant or an overwritten version"
    return None


def _enables_fusion(g: Graph, call: Op, present: set[Op] | None = None, ew_reads: set[int] | None = None
                    ) -> bool:
    """Whether an elementwise op of g feeds the call or reads one of its outputs. `present` (g's ops) and
    `ew_reads` (value ids elementwise ops read) may be passed in, so checking every call stays linear;
    the caller adds the ops each inlining creates."""
    present = set(g.ops) if present is None else present
    if ew_reads is None:
        ew_reads = {v.id for op in g.ops if _elementwise(op) for v in op.inputs}
    feeds = any(v.producer is not None and v.producer in present and _elementwise(v.producer) for v in call.inputs)
    return feeds or any(v.id in ew_reads for v in call.outputs)


def copy_body(ir: Ir, g: Graph, call: Op) -> tuple[dict[int, Value], dict[Op, Op]]:
    """Copy the body of `call`'s graph into g (not yet placed in g.ops): (callee value id -> its value in
    g, callee op -> its copy). The callee's inputs map to the call's inputs; its constants are copied."""
    h = call.called
    assert h is not None
    m: dict[int, Value] = {v.id: x for v, x in zip(h.inputs, call.inputs)}
    for v in h.values.values():
        if v.kind == "constant":
            m[v.id] = ir.add_constant(g, ir.constants[v.id], v.name)
    copies: dict[Op, Op] = {}
    for op in h.ops:
        new = g.make_op(op.kind, [m[v.id] for v in op.inputs], [v.spec for v in op.outputs], roles=op.roles,
                        attrs=dict(op.attrs), modifies=op.modifies, aliases=dict(op.aliases), called=op.called,
                        name=op.name, out_names=[v.name for v in op.outputs], source=op.source, append=False)
        for a, b in zip(op.results, new.results):
            m[a.id] = b
        copies[op] = new
    return m, copies


def inline_call(ir: Ir, g: Graph, call: Op) -> list[Op]:
    h = call.called
    assert h is not None
    m, copies = copy_body(ir, g, call)
    final = h.final_versions()
    pairs = [(call.outputs[j], m[v.id]) for j, v in enumerate(h.outputs)]
    pairs += [(call.new_version(i), m[final[h.inputs[i].storage].id]) for i in sorted(call.modifies)]
    for old, new in pairs:
        retarget(g, old, new)
    at = g.ops.index(call)
    g.ops[at:at] = list(copies.values())
    substitute_ops(g, [call], list(copies.values()))
    g.constraints += [(copies[a], copies[b]) for a, b in h.constraints if a in copies and b in copies]
    drop_ops(g, [call])
    return list(copies.values())


def inline_graph(ir: Ir, g: Graph) -> bool:
    changed = False
    present = set(g.ops)
    ew_reads = {v.id for op in g.ops if _elementwise(op) for v in op.inputs}
    for call in [op for op in g.ops if op.kind == "Call" and op.called is not None]:
        if refusal(call) is None and _enables_fusion(g, call, present, ew_reads):
            for op in inline_call(ir, g, call):  # later calls see the copies, as in a fresh scan
                present.add(op)
                if _elementwise(op):
                    ew_reads.update(v.id for v in op.inputs)
            changed = True
    return changed


def inline_in_every_graph(ir: Ir, inline_in: Callable[[Ir, Graph], bool]) -> bool:
    """Run a per-graph inliner over every graph, then drop the graphs no call reaches any more."""
    changed = False
    for g in list(ir.graphs.values()):
        changed |= inline_in(ir, g)
    if changed:
        remove_unused_graphs(ir)
    return changed


@register("inline")
def run(ir: Ir) -> bool:
    """Copy small elementwise graphs into call sites next to elementwise ops, so they can fuse."""
    return inline_in_every_graph(ir, inline_graph)
