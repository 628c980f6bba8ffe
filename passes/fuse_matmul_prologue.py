"""Matmul prologue fusion: the elementwise op that makes a matmul operand moves into the matmul.

before -> after: x = E(p0, p1, ...); r.. = M(x, w, ...) where M is a MatMul or MatMulEpilogue and E an
elementwise op or FusedKernel (a cast, a scale, a normalisation) -> r.. = MatMulEpilogue(p0, p1, ..., w, ...)
with attrs["prologues"] naming E's expression (compiler/ops/matmul_epilogue.py); a plain MatMul gets the
identity epilogue. `x` is no longer a tensor: the backend computes the part of it a tile needs into a
buffer on the stack, where the micro-kernels read it as they read the operand.

Where it is cheap, and why:
  - operand a: tiles are whole rows of the result, and a tile needs exactly its own rows of op(a), so
    each element of `a` is computed once, as in the unfused program;
  - operand b: every tile needs all of b, so the backend computes it once per thread (per call of the
    tile function), into a K x N stack buffer; fused only while that buffer is at most B_BUFFER_BYTES and
    the recomputation costs at most MAX_B_SHARE of the matmul's work at ASSUMED_THREADS threads (each
    element of b feeds M multiply-adds; E costs its primitive count per element).
Refused, with the reason appended to graph.info["prologue_refusals"], when
  - the operand is a graph input, variable or constant, or made by an op that is not elementwise;
  - the operand is a graph output, or is read by another op, or twice by the matmul;
  - E writes in place, has more than one result, or runs a loop that is not the operand's shape;
  - the matmul is batched or takes a 1-d operand (prologues are fused into 2-d matmuls), the operand is
    not float, or a row of op(a) is wider than MAX_A_ROW_BYTES (the tile's rows of a are on the stack);
  - E reads a storage the matmul's epilogue writes in place (a later tile would read updated data);
  - an op outside the pair depends on E and feeds the matmul.
Runs after fuse_matmul_epilogue (so a producer that is itself a matmul's epilogue stays there: the chain
matmul -> elementwise -> matmul keeps the elementwise op as the first matmul's epilogue, computed once).
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import expr_for
from compiler.ops.fused import inline_expr
from compiler.ops.matmul_epilogue import layout, prologues
from compiler.ops.primitives import Expr, Prim

from .refusals import format_recorded
from .contraction import Contraction
from .fuse_elementwise import is_fusible, iteration_shape, readers_of
from .registry import register
from .rewrite import replace_groups_in_order
from .schedule import dependency_graph

MAX_A_ROW_BYTES = 16384  # a few rows of op(a) (the micro-kernels' row block) sit in a stack buffer
B_BUFFER_BYTES = 65536  # all of b sits in a stack buffer of each thread
ASSUMED_THREADS = 16  # b's prologue runs once per thread: cost it at a 16-core machine's count
MAX_B_SHARE = 0.25  # ... and allow it at most a quarter of the matmul's multiply-adds


def _kernel_expr(e: Op) -> Expr:
    return e.attrs["expr"] if e.kind == "FusedKernel" else expr_for(e)


def _members(op: Op) -> tuple[str, ...]:
    return tuple(op.attrs.get("members") or (op.label,)) if op.kind in ("FusedKernel", "MatMulEpilogue") else (op.label,)


def _operands(mm: Op) -> tuple[Value, Value]:
    if mm.kind == "MatMul":
        return mm.inputs[0], mm.inputs[1]
    ra, rb, _ = layout(mm)
    return mm.inputs[ra[0]], mm.inputs[rb[0]]


def _shape_refusal(mm: Op) -> str | None:
    a, b = _operands(mm)
    if len(a.shape) != 2 or len(b.shape) != 2:
        return f"its operands are {a.shape} and {b.shape}; prologues are fused into 2-d matmuls only"
    return None


def refusal(mm: Op, slot: int, readers: dict[int, list[Op]], written: set[int]) -> str | None:
    """Why operand `slot` of matmul mm keeps its producer apart, or None when the producer can be fused."""
    x = _operands(mm)[slot]
    e = x.producer
    if e is None:  # a graph input, variable or constant: nothing to fuse, nothing to report
        return ""
    if e.kind == "MatMulEpilogue":
        return f"{x.name!r} is computed once per element by the epilogue of {e.label}"
    if not is_fusible(e):
        return f"{x.name!r} is made by {e.label}, which is not elementwise"
    rs = readers.get(x.id, [])
    if any(r is None for r in rs):
        return f"{x.name!r} is a graph output"
    if rs != [mm]:
        others = [r.label for r in dict.fromkeys(rs) if r is not mm]
        return f"{x.name!r} is also read by {', '.join(others)}" if others else f"{x.name!r} is read twice by it"
    if e.modifies:
        return f"{e.label} writes {e.inputs[e.modifies[0]].name!r} in place"
    if len(e.results) != 1:
        return f"{e.label} has {len(e.results)} results"
    if not x.dtype.is_float:
        return f"{x.name!r} is {x.dtype.name}; prologues make float operands"
    if tuple(iteration_shape(e) or ()) != x.shape:
        return f"{e.label} runs a loop of shape {iteration_shape(e)}, not the operand's {x.shape}"
    clash = [v.name for v in e.inputs if v.storage in written]
    if clash:
        return f"{e.label} reads {clash[0]!r}, which the matmul's epilogue writes in place"
    ta, tb = bool(mm.attrs.get("transpose_a")), bool(mm.attrs.get("transpose_b"))
    k = x.shape[0] if (ta if slot == 0 else not tb) else x.shape[1]  # the contraction length
    if slot == 0 and k * x.dtype.itemsize > MAX_A_ROW_BYTES:
        return f"a row of op({x.name!r}) ({k} elements) is wider than {MAX_A_ROW_BYTES} bytes"
    if slot == 1:
        if x.spec.nbytes > B_BUFFER_BYTES:
            return f"{x.name!r} ({x.spec.nbytes} bytes) is larger than the {B_BUFFER_BYTES}-byte per-thread buffer"
        a = _operands(mm)[0]
        m = a.shape[1] if ta else a.shape[0]
        cost = sum(n.prim not in (Prim.input, Prim.const) for n in _kernel_expr(e).nodes)
        if ASSUMED_THREADS * cost > MAX_B_SHARE * m:
            return (f"{e.label} ({cost} operations per element) would be recomputed by each of up to "
                    f"{ASSUMED_THREADS} threads, more than {MAX_B_SHARE:.0%} of the {m} multiply-adds each "
                    "element of b feeds")
    return None


def build(g: Graph, mm: Op, fused: dict[int, Op]) -> tuple[Op, list[tuple[Value, Value]]]:
    """The MatMulEpilogue for mm with the producers `fused` (slot -> op) as prologues, and retargets."""
    if mm.kind == "MatMul":
        c = mm.outputs[0]
        ident = Expr()
        ident.outputs = [ident.input(0, c.dtype)]
        attrs = {k: mm.attrs[k] for k in ("transpose_a", "transpose_b") if mm.attrs.get(k)}
        attrs.update({"expr": ident, "c_spec": (c.shape, c.dtype), "out_specs": ((c.shape, c.dtype),),
                      "members": (mm.label,)})
        groups = [[mm.inputs[0]], [mm.inputs[1]], []]
        aliases: dict[int, int] = {}
    else:
        attrs = dict(mm.attrs)
        groups = [[mm.inputs[i] for i in r] for r in layout(mm)]
        aliases = dict(mm.aliases)
    pros = [p for p in attrs.get("prologues", ()) if int(p[0]) not in fused]
    for slot, e in sorted(fused.items()):
        ins = list(dict.fromkeys(e.inputs))
        sub, at = _kernel_expr(e), {id(v): k for k, v in enumerate(ins)}
        expr = Expr()
        args = [expr.input(at[id(v)], v.dtype) for v in e.inputs]
        expr.outputs = inline_expr(expr, sub, args)
        x = e.results[0]
        pros.append((slot, len(ins), expr, (x.shape, x.dtype), _members(e)))
        groups[slot] = ins
    pros.sort(key=lambda p: int(p[0]))
    attrs["prologues"] = tuple(pros)
    attrs["members"] = tuple(m for _, e in sorted(fused.items()) for m in _members(e)) + tuple(attrs["members"])
    attrs["kernel_listing"] = listing(attrs)
    inputs = groups[0] + groups[1] + groups[2]
    shift = len(groups[0]) + len(groups[1]) - (len(mm.inputs) - len(groups[2]))
    aliases = {j: i + shift for j, i in aliases.items()}
    roles = (tuple(f"a{k}" for k in range(len(groups[0]))) + tuple(f"b{k}" for k in range(len(groups[1])))
             + tuple(f"e{k}" for k in range(len(groups[2]))))
    if len(mm.results) != len(mm.outputs):
        raise AssertionError(f"{mm.label} writes an input without an aliasing output; cannot rebuild it")
    op = g.make_op("MatMulEpilogue", inputs, [r.spec for r in mm.results], roles=roles, attrs=attrs,
                   modifies=tuple(sorted(aliases.values())), aliases=aliases, name="matmul_epilogue",
                   out_names=[r.name for r in mm.results], source=mm.source, append=False)
    return op, list(zip(mm.results, op.results))


def listing(attrs: dict) -> list[str]:
    """print_schedule's lines: each prologue's kernel, then the epilogue's (unlabelled when there is none)."""
    pros = attrs.get("prologues", ())
    if not pros:
        return list(attrs["expr"].listing())
    out = []
    for p in pros:
        out += [f"prologue {'ab'[int(p[0])]}: {line}" for line in p[2].listing()]
    return out + [f"epilogue: {line}" for line in attrs["expr"].listing()]


def fuse_graph(g: Graph) -> bool:
    readers = readers_of(g)
    deps = dependency_graph(g)
    pos = {op: k for k, op in enumerate(g.ops)}
    forward = all(pos[a] < pos[b] for a, b in deps.edges)
    contraction = Contraction(deps, pos if forward else None)
    refusals: list[str] = []
    taken: set[Op] = set()
    plans: list[tuple[Op, dict[int, Op]]] = []
    for mm in [op for op in g.ops if op.kind in ("MatMul", "MatMulEpilogue")]:
        why_all = _shape_refusal(mm)
        written = {mm.inputs[i].storage for i in mm.modifies}
        fused: dict[int, Op] = {}
        for slot in (0, 1):
            if slot in prologues(mm):
                continue
            why = why_all or refusal(mm, slot, readers, written)
            e = None if why is not None else _operands(mm)[slot].producer
            if e is not None and e in taken:
                why = f"{e.label} is already another matmul's prologue"
            if e is not None and why is None:
                blocker = contraction.blocker([mm, e])
                if blocker is not None:
                    why = f"{blocker.label} depends on {e.label} and feeds the matmul"
            if why == "":
                continue
            if why is not None:
                refusals.append(f"{mm.label} operand {'ab'[slot]} keeps its producer apart: {why}")
                continue
            assert e is not None
            contraction.merge([mm, e])
            taken.add(e)
            fused[slot] = e
        if fused:
            plans.append((mm, fused))
    g.info["prologue_refusals"] = refusals
    edits = []
    for mm, fused in plans:
        op, retargets = build(g, mm, fused)
        edits.append((sorted(fused.values(), key=pos.__getitem__) + [mm], op, retargets))
    return replace_groups_in_order(g, edits)


def format_refusals(ir: Ir) -> str:
    """Every recorded prologue refusal, one per line, by graph."""
    return format_recorded(ir, "prologue_refusals")


@register("fuse_matmul_prologue")
def run(ir: Ir) -> bool:
    """Fuse the elementwise producer of a 2-d matmul's operand into the matmul (computed per tile)."""
    changed = False
    for g in ir.graphs.values():
        changed |= fuse_graph(g)
    return changed
