"""Matmul prologue fusion: the elementwise op that makes a matmul operand moves into the matmul.

before -> after: x = E(p0, p1, ...); r.. = M(x, w, ...) where M is a MatMul or MatMulEpilogue and E an
elementwise op or FusedKernel (a cast, a scale, a normalisation) -> r.. = MatMulEpilogue(p0, p1, ..., w, ...)
with attrs["prologues"] naming E's expression (compiler/ops/matmul_epilogue.py); a plain MatMul gets the
identity epilogue. `x` is no longer a tensor: the backend computes the part of it a tile needs into a
buffer on the stack, where the micro-kernels read it as they read the operand.

Where it is cheap, and why (the cost model: an operand's elements recomputed R times by E's primitives
may cost at most MAX_B_SHARE of the multiply-adds those elements feed):
  - operand a: tiles are whole rows of one batch matrix of the result, and a tile needs exactly its own
    rows of that batch matrix of op(a), so each element of `a` is computed once, as in the unfused
    program. When a is broadcast over batch dims (a 2-d a against a batched b, a 1-d a, a size-1 batch
    dim), each of the R batch matrices sharing a matrix of a computes it again: fused only while
    R x cost <= MAX_B_SHARE x R x N, i.e. E costs at most a quarter of N per element;
  - operand b: every tile needs all of b's matrix for its batch matrix. When b has one matrix for the
    whole call (2-d, 1-d, or its batch dims all 1), the backend computes it once per thread (per call of
    the tile function) into a K x N stack buffer; fused only while ASSUMED_THREADS x cost is at most
    MAX_B_SHARE of the batch x M multiply-adds each element feeds. When b varies along the batch, a
    thread computes b's matrix for a tile whose matrix of b is not the one in its buffer (the last one
    is kept in a stack slot; tiles run batch-major, so that is once per change of b's matrix, plus once
    for each other thread starting inside a run): at most runs + ASSUMED_THREADS - 1 matrices, fused
    while that times cost is at most MAX_B_SHARE of batch x M. Either way one matrix of b must fit
    B_BUFFER_BYTES.
  - a 1-d a is one row (M = 1), a 1-d b one column (N = 1); nothing else changes. With a 1-d a, b's
    prologue is refused by the model (every thread would recompute b for one multiply-add per element).
Refused, with the reason appended to graph.info["prologue_refusals"], when
  - the operand is a graph input, variable or constant, or made by an op that is not elementwise;
  - the operand is a graph output, or is read by another op, or twice by the matmul;
  - E writes in place, has more than one result, or runs a loop that is not the operand's shape;
  - the cost model above says no, one matrix of b is larger than B_BUFFER_BYTES, the operand is not
    float, or a row of op(a) is wider than MAX_A_ROW_BYTES (the tile's rows of a are on the stack);
  - E reads a storage the matmul's epilogue writes in place (a later tile would read updated data);
  - an op outside the pair depends on E and feeds the matmul.
Runs after fuse_matmul_epilogue (so a producer that is itself a matmul's epilogue stays there: the chain
matmul -> elementwise -> matmul keeps the elementwise op as the first matmul's epilogue, computed once).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import expr_for
from compiler.ops.fused import inline_expr
from compiler.ops.matmul_epilogue import layout, prologues
from compiler.ops.primitives import Expr, Prim

from .refusals import format_recorded
from .contraction import Contraction
from .fuse_elementwise import is_fusible, iteration_shape, readers_of
from .registry import in_every_graph, register
from .rewrite import replace_groups_in_order
from .schedule import dependency_graph

MAX_A_ROW_BYTES = 16384  # a few rows of op(a) (the micro-kernels' row block) sit in a stack buffer
B_BUFFER_BYTES = 65536  # one matrix of b sits in a stack buffer of each thread
ASSUMED_THREADS = 16  # b's prologue runs at least once per thread: cost it at a 16-core machine's count
MAX_B_SHARE = 0.25  # ... and allow any recomputation at most a quarter of the matmul's multiply-adds


def _kernel_expr(e: Op) -> Expr:
    return e.attrs["expr"] if e.kind == "FusedKernel" else expr_for(e)


def _members(op: Op) -> tuple[str, ...]:
    return tuple(op.attrs.get("members") or (op.label,)) if op.kind in ("FusedKernel", "MatMulEpilogue") else (op.label,)


def _operands(mm: Op) -> tuple[Value, Value]:
    if mm.kind == "MatMul":
        return mm.inputs[0], mm.inputs[1]
    ra, rb, _ = layout(mm)
    return mm.inputs[ra[0]], mm.inputs[rb[0]]


@dataclass(frozen=True)
class _Dims:
    """The matmul's shape as the backend tiles it: result (batch..., M, N), contraction K; a_b / w_b:
    along which batch dims each operand varies (False: broadcast, the same matrix for every index)."""

    batch: tuple[int, ...]
    M: int
    K: int
    N: int
    a_b: tuple[bool, ...]
    w_b: tuple[bool, ...]


def _dims(mm: Op) -> _Dims:
    a, b = (v.shape for v in _operands(mm))
    ta, tb = bool(mm.attrs.get("transpose_a")), bool(mm.attrs.get("transpose_b"))
    am = (1,) + a if len(a) == 1 else a  # a 1-d a is one row, a 1-d b one column
    bm = b + (1,) if len(b) == 1 else b
    M, K = (am[-1], am[-2]) if ta else (am[-2], am[-1])
    N = bm[-2] if tb else bm[-1]
    batch = tuple(np.broadcast_shapes(am[:-2], bm[:-2]))

    def varies(sh: tuple[int, ...]) -> tuple[bool, ...]:
        return tuple(d != 1 for d in (1,) * (len(batch) - len(sh)) + sh)
    return _Dims(batch, M, K, N, varies(am[:-2]), varies(bm[:-2]))


def _b_runs(d: _Dims) -> int:
    """How often b's matrix changes along the batch-major walk over the result's batch matrices: at every
    step of the innermost batch dim along which b varies."""
    moving = [k for k, v in enumerate(d.w_b) if v]
    return prod(d.batch[:moving[-1] + 1]) if moving else 1


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
    d = _dims(mm)
    cost = sum(n.prim not in (Prim.input, Prim.const) for n in _kernel_expr(e).nodes)
    if slot == 0:
        if d.K * x.dtype.itemsize > MAX_A_ROW_BYTES:
            return f"a row of op({x.name!r}) ({d.K} elements) is wider than {MAX_A_ROW_BYTES} bytes"
        # a broadcast over batch dims: the tiles of each batch matrix compute their rows of it again
        again = prod(n for n, v in zip(d.batch, d.a_b) if not v)
        if again > 1 and again * cost > MAX_B_SHARE * again * d.N:
            return (f"{x.name!r} is broadcast over {again} batch matrices: {e.label} ({cost} operations per "
                    f"element) would be recomputed {again} times, more than {MAX_B_SHARE:.0%} of the "
                    f"{again * d.N} multiply-adds each element feeds")
        return None
    nbytes = d.K * d.N * x.dtype.itemsize
    if nbytes > B_BUFFER_BYTES:
        what = "a matrix of " if len(x.shape) > 2 else ""
        return f"{what}{x.name!r} ({nbytes} bytes) is larger than the {B_BUFFER_BYTES}-byte per-thread buffer"
    macs = prod(d.batch) * d.M  # the multiply-adds each element of b's matrices feeds, on average
    if not any(d.w_b):  # one matrix of b for the whole call: computed once per thread
        if ASSUMED_THREADS * cost > MAX_B_SHARE * macs:
            return (f"{e.label} ({cost} operations per element) would be recomputed by each of up to "
                    f"{ASSUMED_THREADS} threads, more than {MAX_B_SHARE:.0%} of the {macs} multiply-adds each "
                    "element of b feeds")
        return None
    # b varies along the batch: a thread computes b's matrix when its next tile needs another one
    runs = _b_runs(d)
    times = runs + ASSUMED_THREADS - 1
    if times * cost > MAX_B_SHARE * prod(d.batch) * d.M:
        return (f"{e.label} ({cost} operations per element) would compute up to {times} matrices of b "
                f"({runs} changes of matrix along the batch, one more for each of up to {ASSUMED_THREADS} "
                f"threads), more than {MAX_B_SHARE:.0%} of the matmul's multiply-adds")
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
        written = {mm.inputs[i].storage for i in mm.modifies}
        fused: dict[int, Op] = {}
        for slot in (0, 1):
            if slot in prologues(mm):
                continue
            why = refusal(mm, slot, readers, written)
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
    """Fuse the elementwise producer of a matmul operand into the matmul (computed per tile)."""
    return in_every_graph(ir, fuse_graph)
