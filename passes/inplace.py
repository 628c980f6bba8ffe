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
from .registry import in_every_graph, register


def _candidate(op: Op) -> bool:
    d = get(op.kind)
    return d.decompose is not None and d.elementwise and op.called is None


def decide(op: Op, k: int, info: AliasInfo) -> list[tuple[int, int]]:
    """(output j, input i) pairs op k may write in place: y_j goes into x_i's buffer."""
    shape = iteration_shape(op)
    taken = {op.inputs[i].storage for i in op.modifies}
    out = []
    for j, r in enumerate(op.outputs):
        if r.version != 0 or j in op.aliases or r.spec.nelms <= 1 or r.shape != shape:
            continue
        for i, x in enumerate(op.inputs):
            s = x.storage
            if (x.spec != r.spec or s in taken or not info.is_local_temporary(s) or info.last_access(s) != k
                    or info.newest(s) is not x or sum(y.storage == s for y in op.inputs) != 1):
                continue
            out.append((j, i))
            taken.add(s)
            break
    return out


def apply(g: Graph, op: Op, j: int, i: int, info: AliasInfo) -> None:
    """Make op's output j the next version of its input i's storage (retarget through `info`'s index of
    the unedited graph: readers of y, later versions of y's storage)."""
    r, x = op.outputs[j], op.inputs[i]
    t = r.storage
    new = g.new_value(r.spec, r.name, "op", op, x.storage, x.version + 1)
    for v in info.values_of(t):
        if v is not r:  # later in-place versions of y's storage move along (never replaced themselves)
            v.storage, v.version = x.storage, v.version + new.version
    for reader in info.readers.get((t, 0), ()):
        reader.inputs = [new if v is r else v for v in reader.inputs]
    for acc in info.accesses.get(t, ()):
        if acc.op.handles is not None:
            acc.op.handles = tuple(new if h is r else h for h in acc.op.handles)
    if t in info.output_storages:
        g.outputs = [new if v is r else v for v in g.outputs]
    g.values.pop(r.id, None)
    op.outputs[j] = new
    op.modifies = tuple(sorted(op.modifies + (i,)))
    op.aliases[j] = i


def inplace_graph(g: Graph) -> bool:
    """Decide every in-placing on one alias analysis, then apply them in op order.

    Deciding on the unedited graph is exact: applying a pair renames y's storage t to x's storage s,
    and every fact a later decision reads (temporary or not, last access, newest version, operand
    count) is the same for s after the edit as for t before it, because s is never touched after
    the op that in-places into it. One analysis keeps the pass linear in the number of ops."""
    info = AliasInfo(g)
    todo = [(op, d) for k, op in enumerate(g.ops) if _candidate(op) for d in decide(op, k, info)]
    for op, (j, i) in todo:
        apply(g, op, j, i, info)
    return bool(todo)


@register("inplace")
def run(ir: Ir) -> bool:
    """Let elementwise ops write their result over a temporary operand nobody reads afterwards."""
    return in_every_graph(ir, inplace_graph)
