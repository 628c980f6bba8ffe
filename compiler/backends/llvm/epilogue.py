"""MatMulEpilogue: the matmul's tiles with the epilogue applied to each tile while it is in cache.

Tiles here are whole rows of the result (ROWS-row blocks for the micro-kernels, at most TILE_BYTES), so a
tile is a small contiguous buffer on the calling thread's stack: the matmul writes the tile there through
the same micro-kernels as a plain MatMul (matmul.emit_tile, local=True), and the epilogue loop reads it
back from L1/L2 and writes only the epilogue's results. The matmul's result never reaches memory; an
optimizer update in the epilogue writes the weight and its state, never the gradient.

Why the results are bit-identical to the unfused program (MatMul, then the FusedKernel): every element
of `c` is summed by the same micro-kernel path in the same order (tile edges fall on the micro-kernels'
grid, as in matmul.py), and the epilogue evaluates the same primitive expression per element with the
same rules (rules.py, no fast-math flags), so vectorising it or not changes nothing. Tiles are disjoint
and each runs on exactly one thread, so every output element is updated exactly once for any thread
count; tile bounds depend only on the shapes, never on the thread count.

Prologues (passes/fuse_matmul_prologue.py): a fused operand a is computed per tile, the tile's rows of its
batch matrix, into a stack buffer the micro-kernels read (emit_tile's a_local); a fused b into a one-matrix
stack buffer, once per call when b has one matrix, else whenever the tile's matrix of b is not the one the
buffer holds (its index kept in a stack slot; tiles run batch-major, so once per change of matrix).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from compiler.ir import DType, Op, Value
from compiler.ops.matmul_epilogue import parts
from compiler.ops.primitives import Prim

from .kernels import storages_of
from .loops import broadcast_strides, c64, for_range
from .isa import Isa
from .isa import of as isa_of
from .matmul import emit_tile, packed_b, plan, row_step, run_tiles
from .prologue import PrologueEmitter, batch_offset
from .rules import Ctx, lower_node
from .special import special
from .thresholds import PARALLEL_MIN_ELEMENTS, TILE_MIN_MACS
from .types import I64, PTR, compute_type, const, round_to, storage_type, to_compute, to_storage

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

# bytes of one tile of the matmul's result (the stack buffer the epilogue reads): a few rows, in L1/L2
TILE_BYTES = 32768


def tile_rows(M: int, K: int, N: int, itemsize: int, path: str, P: Isa, par: bool, a_itemsize: int = 0) -> int:
    """Rows per tile: as many as fit TILE_BYTES, a multiple of the micro-kernels' row block; when the
    tiles are shared among threads, no more than TILE_MIN_MACS of work needs (as MatMul's tiles).
    a_itemsize: operand a comes from a prologue, whose rows of the tile (K elements each) must fit too."""
    step = row_step(path, P, M, K)
    rows = max(TILE_BYTES // max(N * itemsize, 1), step) // step * step
    if a_itemsize:
        rows = min(rows, max(TILE_BYTES // max(K * a_itemsize, 1), step) // step * step)
    if par:
        rows = min(rows, max(-(-TILE_MIN_MACS // max(N * K, 1)) // step * step, step))
    return max(min(rows, -(-M // step) * step), step)


def _full_strides(v: Value, c_shape: tuple[int, ...], vec_a: bool, vec_b: bool) -> tuple[int, ...]:
    """Element strides of epilogue operand v over (batch..., M, N), from its broadcast over c's shape
    (a 1-D matmul operand drops M or N from c's shape: that dim gets stride 0)."""
    s = broadcast_strides(v.shape, c_shape)
    if vec_a and vec_b:
        return (0, 0)
    if vec_a:
        return s[:-1] + (0, s[-1])
    if vec_b:
        return s + (0,)
    return s


@special("MatMulEpilogue")
def _matmul_epilogue(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    pro, mm, ep = parts(op)
    c, a, w = mm.outputs[0], mm.inputs[0], mm.inputs[1]
    p = plan(mm)
    M, N, K = p.M, p.N, p.K
    par = p.par or c.spec.nelms >= PARALLEL_MIN_ELEMENTS
    tm = tile_rows(M, K, N, c.dtype.itemsize, p.path, isa_of(m.module), par, a.dtype.itemsize if 0 in pro else 0)
    tiles_m = -(-M // tm) if M and N else 0
    count = p.nb * tiles_m
    params = storages_of(op)

    fnty = ir.FunctionType(ir.VoidType(), [PTR] * len(params) + [I64, I64])
    fn = ir.Function(m.module, fnty, m.kernel_name() + ".epilogue_tiles")
    fn.linkage = "internal"
    for arg in fn.args[:len(params)]:
        arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def typed(v: Value) -> ir.Value:
        return b.bitcast(fn.args[params.index(v.storage)], storage_type(v.dtype).as_pointer())

    # the stack buffers first: b is still in the entry block
    tile = b.alloca(storage_type(c.dtype), size=tm * max(N, 1))
    A = b.alloca(storage_type(a.dtype), size=max(tm * K, 1)) if 0 in pro else typed(a)
    W = b.alloca(storage_type(w.dtype), size=max(K * N, 1)) if 1 in pro else typed(w)
    b_rows, b_cols = (N, K) if p.tb else (K, N)  # b's matrix in its stored layout (a 1-d b is (K, 1))

    def b_fill(o: ir.Value, i: ir.Value) -> ir.Value:  # b's buffer is its matrix, row-major
        return b.add(b.mul(o, c64(b_cols)), i)
    pb = PrologueEmitter(m.module, b, pro[1], typed, 1, p.batch) if 1 in pro else None
    last_wb = b.alloca(I64) if pb is not None and any(p.w_b) else None
    if pb is not None and last_wb is None:  # b has one matrix: computed once per call (per thread)
        with b.if_then(b.icmp_signed("<", fn.args[-2], fn.args[-1])):
            pb.region(W, (0, b_rows), (0, b_cols), b_fill)
    elif last_wb is not None:  # b's matrix of the first tile is computed in the loop
        b.store(c64(-1), last_wb)
    W = packed_b(b, p, W, fn.args[-2], fn.args[-1])
    emit = EpilogueEmitter(m, b, ep, typed, c.shape, (len(a.shape) == 1, len(w.shape) == 1))
    pa = PrologueEmitter(m.module, b, pro[0], typed, 0, p.batch) if 0 in pro else None
    with for_range(b, fn.args[-1], "tile", start=fn.args[-2]) as t:
        # tile t is rows [i0, i1) of batch matrix bi (whole-row tiles, batch-major, as emit_tile cuts them)
        bi = b.sdiv(t, c64(max(tiles_m, 1)))
        Wt = W
        if last_wb is not None:  # b's matrix for this batch matrix, when it is not the one already there
            assert pb is not None
            wb = batch_offset(b, bi, p.batch, p.w_b)
            with b.if_then(b.icmp_signed("!=", wb, b.load(last_wb))):
                pb.at(bi)
                pb.region(W, (0, b_rows), (0, b_cols), b_fill)
                b.store(wb, last_wb)
            Wt = b.gep(W, [b.sub(c64(0), b.mul(wb, c64(K * N)))])  # emit_tile adds wb * K * N back
        if pa is not None:  # this tile's rows of op(a) for batch matrix bi
            i0 = b.mul(b.srem(t, c64(max(tiles_m, 1))), c64(tm))
            i1 = b.select(b.icmp_signed("<", b.add(i0, c64(tm)), c64(M)), b.add(i0, c64(tm)), c64(M))
            pa.at(bi)
            if p.ta:  # a is (K, M): the buffer holds (K, tm)
                pa.region(A, (0, K), (i0, i1), lambda o, i: b.add(b.mul(o, c64(tm)), b.sub(i, i0)))
            else:  # a is (M, K): the buffer holds (tm, K)
                pa.region(A, (i0, i1), (0, K), lambda o, i: b.add(b.mul(b.sub(o, i0), c64(K)), i))
        bi, rows, _ = emit_tile(m, b, mm, p, A, Wt, tile, t, tm, N, local=True, a_local=0 in pro)
        emit.rows(tile, bi, rows, p.batch, N)
    b.ret_void()

    seen: dict[int, Value] = {}
    for v in list(op.inputs) + op.results:
        seen.setdefault(v.storage, v)
    run_tiles(m, gl, fn, [gl.p(seen[s]) for s in params], count, par)
    if emit.single_js:  # after every tile has read the old values
        EpilogueEmitter(m, gl.b, ep, lambda v: gl.b.bitcast(gl.p(v), storage_type(v.dtype).as_pointer()), c.shape,
                        (len(a.shape) == 1, len(w.shape) == 1)).store_single()


class EpilogueEmitter:
    """The epilogue's loop over rows of one tile: uniform nodes (single-element inputs only) once per
    tile function call, the rest per element, results stored at their place in the full tensors."""

    def __init__(self, m: "ModuleLowering", b: ir.IRBuilder, ep: Op, typed, c_shape: tuple[int, ...],
                 vectors: tuple[bool, bool]) -> None:
        self.b, self.ep, self.typed = b, ep, typed
        self.ctx = Ctx(b, m.module)
        self.expr = ep.attrs["expr"]
        looped = [v for v in ep.inputs[1:] if v.spec.nelms != 1] + list(ep.results)
        self.strides = {id(v): _full_strides(v, c_shape, *vectors) for v in looped}
        newest: dict[int, int] = {}
        for j, v in enumerate(ep.results):
            if v.storage not in newest or ep.results[newest[v.storage]].version < v.version:
                newest[v.storage] = j
        # single-element results (a step counter's t + 1 next to the update reading t) depend only on
        # single-element inputs; a tile must not store them (another tile, maybe on another thread, still
        # reads the old value): the caller stores them once after every tile has run (store_single)
        single = c_shape and any(d != 1 for d in c_shape)
        self.single_js = [j for j in sorted(newest.values()) if single and ep.results[j].spec.nelms == 1]
        self.store_js = [j for j in sorted(newest.values()) if j not in self.single_js]
        self.uniform: set[int] = set()
        for i, n in enumerate(self.expr.nodes):
            if n.prim is Prim.input:
                if n.attr != 0 and ep.inputs[n.attr].spec.nelms == 1:
                    self.uniform.add(i)
            elif n.prim is Prim.const or all(a in self.uniform for a in n.args):
                self.uniform.add(i)
        self.vals: dict[int, ir.Value] = {}
        for i in sorted(self.uniform):
            self.compute(i, {}, c64(0), None)
        lost = [ep.results[j].name for j in self.single_js if self.expr.outputs[j] not in self.uniform]
        if lost:
            raise AssertionError(f"{ep.label}: single-element result {lost[0]!r} depends on per-element values")

    def store_single(self) -> None:
        """Store the single-element results, computed from the inputs' values before any tile ran (call it
        on an emitter built in the caller, after the tiles)."""
        for j in self.single_js:
            v = self.ep.results[j]
            self.b.store(to_storage(self.b, self.vals[self.expr.outputs[j]], v.dtype), self.typed(v))

    def compute(self, i: int, idx: dict[int, ir.Value], c_idx: ir.Value, c_ptr: ir.Value | None) -> None:
        b, n = self.b, self.expr.nodes[i]
        if n.prim is Prim.input:
            v = self.ep.inputs[n.attr]
            ptr = c_ptr if n.attr == 0 else self.typed(v)
            k = c_idx if n.attr == 0 else idx.get(id(v), c64(0))
            self.vals[i] = to_compute(b, b.load(b.gep(ptr, [k])), v.dtype)
        elif n.prim is Prim.const:
            self.vals[i] = const(n.dtype, n.attr)
        else:
            args = [self.vals[a] for a in n.args]
            r = lower_node(self.ctx, n, [self.expr.nodes[a].dtype for a in n.args], args)
            self.vals[i] = round_to(b, r, n.dtype) if n.dtype in (DType.float16, DType.bfloat16) else r

    def rows(self, tile: ir.Value, bi: ir.Value, rows: tuple[ir.Value, ir.Value], batch: tuple[int, ...],
             N: int) -> None:
        """Apply the epilogue to rows [rows) of batch matrix bi, whose `c` values are in `tile`."""
        b = self.b
        base: dict[int, ir.Value] = {}
        for key, s in self.strides.items():  # each operand's offset for this batch matrix
            off, inner = c64(0), 1
            for d in reversed(range(len(batch))):
                if s[d]:
                    off = b.add(off, b.mul(b.srem(b.sdiv(bi, c64(inner)), c64(batch[d])), c64(s[d])))
                inner *= batch[d]
            base[key] = off
        with for_range(b, rows[1], "er", start=rows[0]) as i:
            row = {key: b.add(base[key], b.mul(i, c64(s[-2]))) for key, s in self.strides.items()}
            c_row = b.mul(b.sub(i, rows[0]), c64(N))
            with for_range(b, N, "ec") as j:
                idx = {key: b.add(row[key], b.mul(j, c64(s[-1]))) for key, s in self.strides.items()}
                saved = dict(self.vals)
                for k in range(len(self.expr.nodes)):
                    if k not in self.uniform:
                        self.compute(k, idx, b.add(c_row, j), tile)
                for jj in self.store_js:
                    v = self.ep.results[jj]
                    val = self.vals[self.expr.outputs[jj]]
                    if val.type != compute_type(v.dtype):
                        raise TypeError(f"{self.ep.label}: output {jj} is {val.type}, expected {v.dtype.name}")
                    b.store(to_storage(b, val, v.dtype), b.gep(self.typed(v), [idx[id(v)]]))
                self.vals.clear()
                self.vals.update(saved)
