"""In-placing.

before -> after: y = ElementwiseOp(x, ...) where x is a same-shaped, same-dtype temporary (produced
in this graph, not an input, variable or constant), x is the newest version of its storage and
nothing reads that storage later -> the op writes y into x's buffer (y becomes x's next version),
so the temporary stops needing a buffer of its own.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import get

from .alias_analysis import is_protected
from .registry import register


def _iteration_shape(op: Op) -> tuple[int, ...]:
    if op.kind == "FusedKernel":
        return tuple(op.attrs["shape"])
    return max((v.shape for v in op.results), key=len, default=())


def inplace_graph(g: Graph) -> bool:
    last_access: dict[int, int] = {}
    for k, op in enumerate(g.ops):
        for v in list(op.inputs) + op.results:
            last_access[v.storage] = k
    out_storages = {v.storage for v in g.outputs}
    newest = g.final_versions()
    changed = False
    for k, op in enumerate(g.ops):
        if get(op.kind).decompose is None or op.called is not None:
            continue
        shape = _iteration_shape(op)
        taken = {op.inputs[i].storage for i in op.modifies}
        for j, r in enumerate(op.outputs):
            if r.version != 0 or r.shape != shape or r.spec.nelms <= 1 or j in op.aliases:
                continue
            for i, x in enumerate(op.inputs):
                s = x.storage
                if (x.spec != r.spec or s in taken or is_protected(g, s) or s in out_storages
                        or last_access.get(s) != k or newest.get(s) is not x
                        or sum(1 for y in op.inputs if y.storage == s) != 1):
                    continue
                old = r.storage
                _retarget(g, r, x)
                op.modifies = tuple(sorted(op.modifies + (i,)))
                op.aliases[j] = i
                taken.add(s)
                # every later access of r's old storage is now an access of s
                last_access[s] = max(last_access.get(s, k), last_access.pop(old, k))
                newest = g.final_versions()
                changed = True
                break
    return changed


def _retarget(g: Graph, r: Value, x: Value) -> None:
    """Move r's storage (every version of it) onto x's storage, after x."""
    old, shift = r.storage, x.version + 1
    for v in g.all_values():
        if v.storage == old:
            v.storage = x.storage
            v.version += shift


@register("inplace")
def run(ir: Ir) -> bool:
    changed = False
    for g in ir.graphs.values():
        changed |= inplace_graph(g)
    return changed
