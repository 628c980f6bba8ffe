"""Inlining that brings an optimizer update into the graph of the matmul that makes its gradient.

before -> after:
  g:  outs = Call(H)(...)              H returns, as output j, the result of a MatMul of H (a gradient graph)
      Call(U)(..., outs[j], ...)       the only reader of outs[j]; U a small elementwise graph (an optimizer
                                       update: the tutorial's Adam graph, a functional optimizer's step)
  ->  H's ops and U's ops copied into g (as inline.inline_call, many at once), so fuse_elementwise makes U's ops one
      FusedKernel reading the MatMul's result and fuse_matmul_epilogue puts that kernel in the MatMul's
      tiles: the gradient is never written. When the MatMul is already in g, only U is inlined.

Only where inlining keeps each call's semantics (inline.semantic_refusal: no by-value input written, no
aliased by-reference operands, outputs distinct tensors of the callee); U must be all elementwise
(inline's test without its size limit). H may be any graph (it is copied; a graph no call uses any more is removed).
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op, Value

from .fuse_elementwise import readers_of
from .inline import copy_body, inline_in_every_graph, refusal, semantic_refusal
from .registry import register
from .rewrite import Retargeter


class Sources:
    """Where a Call's input comes from, with the per-callee facts computed once (a gradient graph feeds
    every weight's update: checking it once per weight would make the pass quadratic)."""

    def __init__(self) -> None:
        self.ok: dict[Op, bool] = {}
        self.matmul_outputs: dict[Op, set[int]] = {}

    def call_to_inline(self, v: Value) -> Op | None:
        """None when v comes from a MatMul of its own graph; the producing Call when its callee returns a
        MatMul result there and can be inlined; raises LookupError otherwise."""
        p = v.producer
        if p is None:
            raise LookupError
        if p.kind == "MatMul":
            return None
        if p.kind != "Call" or p.called is None:
            raise LookupError
        if p not in self.ok:
            self.ok[p] = semantic_refusal(p) is None
            h = p.called
            self.matmul_outputs[p] = {p.outputs[j].id for j, o in enumerate(h.outputs)
                                      if o.producer is not None and o.producer.kind == "MatMul"}
        if self.ok[p] and v.id in self.matmul_outputs[p]:
            return p
        raise LookupError


def inline_calls(ir: Ir, g: Graph, calls: list[Op]) -> None:
    """inline.inline_call for many calls of g at once, at linear cost: retargets through one Retargeter,
    one sweep over the op list and the constraints. A later call may read an earlier one's outputs."""
    rt = Retargeter(g)
    copies: dict[Op, list[Op]] = {}
    for call in calls:
        h = call.called
        assert h is not None
        m, made = copy_body(ir, g, call)
        for new in made.values():
            rt.add_values(new.results)
        final = h.final_versions()
        for j, v in enumerate(h.outputs):
            rt.retarget(call.outputs[j], m[v.id])
        for i in sorted(call.modifies):
            rt.retarget(call.new_version(i), m[final[h.inputs[i].storage].id])
        copies[call] = list(made.values())
        g.constraints += [(made[a], made[b]) for a, b in h.constraints if a in made and b in made]
    g.ops = [x for op in g.ops for x in copies.get(op, [op])]
    pairs: list[tuple[Op, Op]] = []
    for a, b in g.constraints:  # a constraint on a call applies to each of its copies
        for x in copies.get(a, [a]):
            for y in copies.get(b, [b]):
                if x is not y:
                    pairs.append((x, y))
    g.constraints = list(dict.fromkeys(pairs))
    g.unordered_groups = [[x for o in grp for x in copies.get(o, [o])] for grp in g.unordered_groups]
    for call in calls:
        for v in call.results:
            g.values.pop(v.id, None)
    rt.finish()


def inline_graph(ir: Ir, g: Graph) -> bool:
    readers = readers_of(g)
    sources = Sources()
    producers: list[Op] = []
    updates: list[Op] = []
    for call in [op for op in g.ops if op.kind == "Call" and op.called is not None]:
        # no size limit: an update of any length (torch's Adam is ~40 ops) is inlined only to become the
        # epilogue of the matmul that makes its gradient, where its ops cost no extra pass over memory
        if refusal(call, max_ops=None) is not None:
            continue
        for v in call.inputs:
            if readers.get(v.id) != [call]:
                continue
            try:
                p = sources.call_to_inline(v)
            except LookupError:
                continue
            if p is not None and p not in producers:
                producers.append(p)
            updates.append(call)
            break
    inline_calls(ir, g, producers + updates)  # producers first: their copies give the updates a MatMul to read
    return bool(updates)


@register("inline_weight_updates")
def run(ir: Ir) -> bool:
    """Inline optimizer-update calls (and the gradient graph feeding them) next to their gradient's MatMul."""
    return inline_in_every_graph(ir, inline_graph)
