"""Inlining that brings an optimizer update into the graph of the matmul that makes its gradient.

before -> after:
  g:  outs = Call(H)(...)              H returns, as output j, the result of a MatMul of H (a gradient graph)
      Call(U)(..., outs[j], ...)       the only reader of outs[j]; U a small elementwise graph (an optimizer
                                       update: the tutorial's Adam graph, a functional optimizer's step)
  ->  H's ops and U's ops copied into g (inline.inline_call), so fuse_elementwise makes U's ops one
      FusedKernel reading the MatMul's result and fuse_matmul_epilogue puts that kernel in the MatMul's
      tiles: the gradient is never written. When the MatMul is already in g, only U is inlined.

Only where inlining keeps each call's semantics (inline.semantic_refusal: no by-value input written, no
aliased by-reference operands, outputs distinct tensors of the callee); U must also pass inline's size
test. H may be any graph (it is copied; a graph no call uses any more is removed).
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op, Value

from .dce import remove_unused_graphs
from .fuse_elementwise import readers_of
from .inline import inline_call, refusal, semantic_refusal
from .registry import register


def _matmul_source(v: Value) -> Op | None:
    """The Call to inline for `v` to come from a MatMul of the caller: None when v already does, the
    producing Call when its callee returns a MatMul result there; raises LookupError otherwise."""
    p = v.producer
    if p is None:
        raise LookupError
    if p.kind == "MatMul":
        return None
    if p.kind == "Call" and p.called is not None and v in p.outputs:
        inner = p.called.outputs[p.outputs.index(v)].producer
        if inner is not None and inner.kind == "MatMul" and semantic_refusal(p) is None:
            return p
    raise LookupError


def inline_graph(ir: Ir, g: Graph) -> bool:
    readers = readers_of(g)
    producers: list[Op] = []
    updates: list[Op] = []
    for call in [op for op in g.ops if op.kind == "Call" and op.called is not None]:
        if refusal(call) is not None:
            continue
        for v in call.inputs:
            if readers.get(v.id) != [call]:
                continue
            try:
                p = _matmul_source(v)
            except LookupError:
                continue
            if p is not None and p not in producers:
                producers.append(p)
            updates.append(call)
            break
    for call in producers + updates:  # producers first: their copies give the updates a MatMul to read
        inline_call(ir, g, call)
    return bool(updates)


@register("inline_weight_updates")
def run(ir: Ir) -> bool:
    """Inline optimizer-update calls (and the gradient graph feeding them) next to their gradient's MatMul."""
    changed = False
    for g in list(ir.graphs.values()):
        changed |= inline_graph(ir, g)
    if changed:
        remove_unused_graphs(ir)
    return changed
