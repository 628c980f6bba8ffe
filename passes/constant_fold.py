"""Constant folding.

before -> after: a pure op whose inputs are all constants and whose results are small (at most
MAX_ELEMENTS each) and never written in place -> constants holding the op's reference (numpy) result;
readers read the constants. Folding uses the interpreter's own semantics, so results are bit-exact with
the interpreter.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir
from compiler.ops import get, run_reference

from .alias_analysis import AliasInfo
from .registry import in_every_graph, register
from .rewrite import drop_ops, retarget

MAX_ELEMENTS = 4096
NEVER = ("Init", "HostLoad", "HostStore", "Call", "MultiKernel", "FusedKernel")


def fold_graph(ir: Ir, g: Graph) -> bool:
    info = AliasInfo(g)
    dead = []
    for op in g.ops:
        if op.kind in NEVER or op.modifies or op.called is not None or not get(op.kind).pure:
            continue
        if not op.inputs or not all(v.kind == "constant" for v in op.inputs):
            continue
        # constants are shared between runs (and with the user's Ir): never let an in-place op write one
        if any(v.spec.nelms > MAX_ELEMENTS or info.is_written(v.storage) or v.storage in info.output_storages
               for v in op.results):
            continue
        results = run_reference(op, [ir.constants[v.id] for v in op.inputs])
        for v, data in zip(op.results, results):
            c = ir.add_constant(g, data.astype(v.dtype.numpy).reshape(v.shape), f"{v.name}_folded")
            retarget(g, v, c)
        dead.append(op)
    drop_ops(g, dead)
    return bool(dead)


@register("constant_fold")
def run(ir: Ir) -> bool:
    """Replace pure ops over constants by their values."""
    return in_every_graph(ir, lambda g: fold_graph(ir, g))
