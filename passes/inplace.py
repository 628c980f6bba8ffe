"""In-placing: elementwise temporaries stop allocating.

before -> after: y = ElementwiseOp(..., x, ...) where
  - x has y's exact spec (shape and dtype) and y covers the op's whole loop,
  - x is a temporary (made by an op of this graph; not an input, variable, constant or graph output),
  - x is the newest version of its storage and this op is the last to touch that storage,
  - x's storage is passed to the op once (no other operand aliases it)
-> the op writes y into x's buffer: y becomes x's next version (op.modifies/aliases gain the pair), and any
later in-place versions of y's storage move along. Each loop reads x[i] before writing y[i], so no
element is read after it was overwritten. Applies to single ops and FusedKernels alike.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op
from compiler.ops import get

from .alias_analysis import AliasInfo
from .fuse_elementwise import iteration_shape
from .registry import register
from .rewrite import retarget


def _candidate(op: Op) -> bool:
    d = get(op.kind)
    return d.decompose is not None and d.elementwise and op.called is None


def inplace_op(g: Graph, op: Op, k: int, info: AliasInfo) -> bool:
    shape = iteration_shape(op)
    taken = {op.inputs[i].storage for i in op.modifies}
    changed = False
    for j, r in enumerate(list(op.outputs)):
        if r.version != 0 or j in op.aliases or r.spec.nelms <= 1 or r.shape != shape:
            continue
        for i, x in enumerate(op.inputs):
            s = x.storage
            if (x.spec != r.spec or s in taken or not info.is_local_temporary(s) or info.last_access(s) != k
                    or info.newest(s) is not x or sum(y.storage == s for y in op.inputs) != 1):
                continue
            new = op.graph.new_value(r.spec, r.name, "op", op, s, x.version + 1)
            retarget(g, r, new)
            g.values.pop(r.id, None)
            op.outputs[j] = new
            op.modifies = tuple(sorted(op.modifies + (i,)))
            op.aliases[j] = i
            taken.add(s)
            changed = True
            break
    return changed


def inplace_graph(g: Graph) -> bool:
    changed = False
    info = AliasInfo(g)
    for k, op in enumerate(g.ops):
        if _candidate(op) and inplace_op(g, op, k, info):
            info = AliasInfo(g)
            changed = True
    return changed


@register("inplace")
def run(ir: Ir) -> bool:
    """Let elementwise ops write their result over a temporary operand nobody reads afterwards."""
    changed = False
    for g in ir.graphs.values():
        changed |= inplace_graph(g)
    return changed
