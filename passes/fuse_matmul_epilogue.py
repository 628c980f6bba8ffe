"""Matmul epilogue fusion: a MatMul and the elementwise op that reads its result become one op.

before -> after: c = MatMul(a, b); r0, r1, ... = E(c, e0, e1, ...) where E is an elementwise op or a
FusedKernel (a bias add + gelu, a GeluGrad product, an optimizer update reading a weight gradient) ->
r0, r1, ... = MatMulEpilogue(a, b, e0, e1, ...) (compiler/ops/matmul_epilogue.py). `c` is no longer a
tensor: backends apply E to each output tile of the matmul while it is in registers or cache, and an
in-place update (an optimizer's weight and state) is written without the gradient ever being stored.

Runs after fuse_elementwise (so E is the whole fused chain) and before inplace and memory_plan. Fusion is
refused, and the reason appended to graph.info["epilogue_refusals"], when
  - the result is a graph output, or is read by more than one op, or by an op that is not elementwise;
  - E's loop is not the result's shape (E would broadcast `c` or run a bigger loop);
  - E writes `c` in place, or writes a storage the matmul reads (a later tile would read updated data);
  - E already takes another matmul's result;
  - the matmul is not float, or a row of its result is wider than MAX_ROW_BYTES (the native epilogue
    holds whole rows of a tile in a stack buffer);
  - an op outside the pair depends on the matmul and feeds E (through in_sequence or an in-place hazard).
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import expr_for
from compiler.ops.fused import inline_expr
from compiler.ops.primitives import Expr

from .refusals import format_recorded
from .contraction import Contraction
from .fuse_elementwise import is_fusible, iteration_shape, readers_of
from .registry import in_every_graph, register
from .rewrite import replace_groups_in_order
from .schedule import dependency_graph

# four rows of the result (the micro-kernels' row block) must fit the native epilogue's tile buffer
MAX_ROW_BYTES = 16384


def _members(op: Op) -> tuple[str, ...]:
    return tuple(op.attrs["members"]) if op.kind == "FusedKernel" else (op.label,)


def refusal(mm: Op, readers: dict[int, list[Op]], taken: set[Op]) -> str | None:
    """Why MatMul `mm` keeps its result in memory, or None when its reader can be its epilogue."""
    c = mm.outputs[0]
    rs = readers.get(c.id, [])
    if not rs:
        return "its result is not read"
    if any(r is None for r in rs):
        return f"its result {c.name!r} is a graph output"
    if len(set(rs)) > 1:
        return f"its result {c.name!r} is read by {len(set(rs))} ops ({', '.join(r.label for r in dict.fromkeys(rs))})"
    e = rs[0]
    if not is_fusible(e):
        return f"its result {c.name!r} is read by {e.label}, which is not elementwise"
    if not c.dtype.is_float:
        return f"its result is {c.dtype.name}; epilogues run on float matmuls"
    if c.shape[-1:] and c.shape[-1] * c.dtype.itemsize > MAX_ROW_BYTES:
        return f"a row of its result ({c.shape[-1]} elements) is wider than {MAX_ROW_BYTES} bytes"
    shape = iteration_shape(e)
    if shape is None or tuple(shape) != c.shape:
        return f"{e.label} runs a loop of shape {shape}, not the result's {c.shape}"
    written = {e.inputs[i].storage for i in e.modifies}
    if c.storage in written:
        return f"{e.label} writes the result {c.name!r} in place"
    clash = [v.name for v in mm.inputs if v.storage in written]
    if clash:
        return f"{e.label} writes {clash[0]!r}, which the matmul reads"
    if e in taken:
        return f"{e.label} already takes another matmul's result"
    return None


def build(g: Graph, mm: Op, e: Op) -> tuple[Op, list[tuple[Value, Value]]]:
    """The MatMulEpilogue for `mm` and its reader `e`, and (old value, new value) pairs to retarget."""
    c = mm.outputs[0]
    sub = e.attrs["expr"] if e.kind == "FusedKernel" else expr_for(e)
    extra = list(dict.fromkeys(v for v in e.inputs if v is not c))  # the epilogue's other operands, once each
    expr = Expr()
    c_node = expr.input(0, c.dtype)
    nodes = {id(v): expr.input(k + 1, v.dtype) for k, v in enumerate(extra)}
    args = [c_node if v is c else nodes[id(v)] for v in e.inputs]
    expr.outputs = inline_expr(expr, sub, args)
    inputs = list(mm.inputs) + extra
    at = {id(v): 2 + k for k, v in enumerate(extra)}
    aliases = {j: at[id(e.inputs[i])] for j, i in e.aliases.items()}
    attrs = {k: mm.attrs[k] for k in ("transpose_a", "transpose_b") if mm.attrs.get(k)}
    attrs.update({"expr": expr, "c_spec": (c.shape, c.dtype),
                  "out_specs": tuple((r.shape, r.dtype) for r in e.results),
                  "members": (mm.label,) + _members(e), "kernel_listing": expr.listing()})
    op = g.make_op("MatMulEpilogue", inputs, [r.spec for r in e.results],
                   roles=("a", "b") + tuple(f"e{k}" for k in range(len(extra))), attrs=attrs,
                   modifies=tuple(sorted(aliases.values())), aliases=aliases, name="matmul_epilogue",
                   out_names=[r.name for r in e.results], source=mm.source, append=False)
    return op, list(zip(e.results, op.results))


def fuse_graph(g: Graph) -> bool:
    readers = readers_of(g)
    deps = dependency_graph(g)
    pos = {op: k for k, op in enumerate(g.ops)}
    forward = all(pos[a] < pos[b] for a, b in deps.edges)
    contraction = Contraction(deps, pos if forward else None)
    refusals: list[str] = []
    taken: set[Op] = set()
    pairs: list[tuple[Op, Op]] = []
    for mm in [op for op in g.ops if op.kind == "MatMul"]:
        why = refusal(mm, readers, taken)
        e = None if why is not None else readers[mm.outputs[0].id][0]
        if e is not None:
            blocker = contraction.blocker([mm, e])
            if blocker is not None:
                why = f"{blocker.label} depends on it and feeds its reader {e.label}"
        if why is not None:
            refusals.append(f"{mm.label} keeps its result: {why}")
            continue
        assert e is not None
        contraction.merge([mm, e])
        taken.add(e)
        pairs.append((mm, e))
    g.info["epilogue_refusals"] = refusals
    edits = []
    for mm, e in pairs:
        op, retargets = build(g, mm, e)
        edits.append(([mm, e], op, retargets))
    return replace_groups_in_order(g, edits)


def format_refusals(ir: Ir) -> str:
    """Every recorded epilogue refusal, one per line, by graph."""
    return format_recorded(ir, "epilogue_refusals")


@register("fuse_matmul_epilogue")
def run(ir: Ir) -> bool:
    """Fuse each MatMul with the elementwise op reading its result (bias, activation, optimizer update)."""
    return in_every_graph(ir, fuse_graph)
