"""Constant folding.

before -> after: a pure op whose inputs are all constants (and whose result is small) ->
a constant holding the op's reference result; readers read the constant.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir
from compiler.ops import get, run_reference

from .registry import register

MAX_ELEMENTS = 4096


def fold_graph(ir: Ir, g: Graph) -> bool:
    changed = False
    for op in list(g.ops):
        d = get(op.kind)
        if not d.pure or op.modifies or op.called is not None or op.kind in ("Init", "HostLoad", "HostStore"):
            continue
        if not op.inputs or not all(v.kind == "constant" for v in op.inputs):
            continue
        if any(v.spec.nelms > MAX_ELEMENTS for v in op.results):
            continue
        results = run_reference(op, [ir.constants[v.id] for v in op.inputs])
        for v, data in zip(op.results, results):
            c = ir.add_constant(g, data.astype(v.dtype.numpy), f"{v.name}_folded")
            g.replace_all_uses(v, c)
        g.erase(op)
        changed = True
    return changed


@register("constant_fold")
def run(ir: Ir) -> bool:
    changed = False
    for g in ir.graphs.values():
        changed |= fold_graph(ir, g)
    return changed
