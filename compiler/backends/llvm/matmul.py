"""MatMul: register-blocked float32 micro-kernels (C[rows, vectors x lanes] held in vector registers
while k runs, so each B vector loaded feeds one FMA per row; blocks of dot products when B is
transposed; the shapes per ISA come from isa.py's table: 4 x 64 on AVX-512, 6 x 16 on AVX2, 8 x 12
on NEON), plain loop nests for the edges and for other dtypes (float32 accumulation).

The result is cut into tiles (batch, rows, columns); one tile function takes a range of tile numbers
and computes those tiles. Large matmuls share their tiles out among the threads (parallel.py). Tile
edges fall on the micro-kernel grid (rows and columns in the ISA's blocks), so every element goes down
the same path, in the same machine code, whichever tile and thread compute it: results do not
depend on the thread count."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from compiler.ir import DType, Op

from .loops import broadcast_strides, c64, for_range
from .isa import Isa
from .isa import of as isa_of
from .parallel import parallel, share
from .special import load, special, store, typed
from .thresholds import PARALLEL_MIN_MACS, TILE_MIN_MACS
from .types import F32, I64, PTR, compute_type, round_to

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

Index = Callable[[ir.Value, ir.Value], ir.Value]

# B transposed with k below this takes path "ntp" (Plan) when its packed copy fits PACK_MAX_BYTES of stack:
# the dot products' k loop would run mostly in its scalar tail (MNIST's output-layer gradient, k = 10:
# 0.14 ms as dot products at batch 128, one thread; about 0.02 ms packed)
PACK_MAX_K = 16
PACK_MAX_BYTES = 65536


def _vec(b: ir.IRBuilder) -> ir.VectorType:
    """One vector register of float32 for the module's ISA."""
    return ir.VectorType(F32, isa_of(b.module).lanes)


def _vload(b: ir.IRBuilder, base: ir.Value, idx: ir.Value) -> ir.Value:
    p = b.bitcast(b.gep(base, [idx]), _vec(b).as_pointer())
    return b.load(p, align=4)


def _vstore(b: ir.IRBuilder, v: ir.Value, base: ir.Value, idx: ir.Value) -> None:
    b.store(v, b.bitcast(b.gep(base, [idx]), v.type.as_pointer()), align=4)


def _splat(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    vec = _vec(b)
    v = b.insert_element(ir.Constant(vec, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return b.shuffle_vector(v, ir.Constant(vec, ir.Undefined),
                            ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count))


def _vfma(module: ir.Module, vec: ir.VectorType) -> ir.Function:
    name = f"llvm.fmuladd.v{vec.count}f32"
    return module.globals.get(name) or ir.Function(module, ir.FunctionType(vec, [vec, vec, vec]), name)


def _entry_alloca(b: ir.IRBuilder, ty: ir.Type, size: int | None = None) -> ir.Value:
    """An alloca in the function's entry block (one inside a loop would grow the stack per trip)."""
    if b.block is b.function.entry_basic_block:  # a second builder there would shift b's insertion point
        return b.alloca(ty, size=size)
    eb = ir.IRBuilder(b.function.entry_basic_block)
    eb.position_at_start(b.function.entry_basic_block)
    return eb.alloca(ty, size=size)


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


def _cut(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value, step: int) -> ir.Value:
    """lo + (hi - lo) rounded down to a multiple of step."""
    return b.add(lo, b.mul(b.sdiv(b.sub(hi, lo), c64(step)), c64(step)))


def emit_f32(module: ir.Module, b: ir.IRBuilder, A: ir.Value, B: ir.Value, C: ir.Value, K: int, N: int,
             a_index: Index, b_off: ir.Value, c_off: ir.Value, rows: tuple[ir.Value, ir.Value],
             cols: tuple[ir.Value, ir.Value], block_rows: int | None = None) -> None:
    """C[c_off + i*N + j] = sum_k A(i, k) * B[b_off + k*N + j] for float32 A, B, C over the tile
    rows x cols (starts on multiples of the micro-kernel's rows, `block_rows` or the ISA's, and columns)."""
    P = isa_of(module)
    VW, ROWS, VECS, VEC = P.lanes, block_rows or P.mm_rows, P.mm_vecs, _vec(b)
    fma = _vfma(module, VEC)
    sfma = module.declare_intrinsic("llvm.fmuladd", [F32], ir.FunctionType(F32, [F32, F32, F32]))
    (i_lo, i_hi), (j_lo, j_hi) = rows, cols
    m4, n64 = _cut(b, i_lo, i_hi, ROWS), _cut(b, j_lo, j_hi, VW * VECS)
    accs = [[_entry_alloca(b, VEC) for _ in range(VECS)] for _ in range(ROWS)]
    with for_range(b, b.sdiv(b.sub(m4, i_lo), c64(ROWS)), "ib") as ib:
        i0 = b.add(i_lo, b.mul(ib, c64(ROWS)))
        with for_range(b, b.sdiv(b.sub(n64, j_lo), c64(VW * VECS)), "jb") as jb:
            j0 = b.add(j_lo, b.mul(jb, c64(VW * VECS)))
            _register_block(b, fma, A, a_index, i0, K, accs,
                            lambda k, v: _vload(b, B, b.add(b.add(b_off, b.add(b.mul(k, c64(N)), j0)), c64(v * VW))))
            for r in range(ROWS):
                crow = b.add(c_off, b.add(b.mul(b.add(i0, c64(r)), c64(N)), j0))
                for v in range(VECS):
                    _vstore(b, b.load(accs[r][v]), C, b.add(crow, c64(v * VW)))

    def plain(i_lo: ir.Value, i_hi: ir.Value, j_lo: ir.Value, j_hi: ir.Value) -> None:
        with for_range(b, i_hi, "ti", start=i_lo) as i:
            crow = b.add(c_off, b.mul(i, c64(N)))
            with for_range(b, j_hi, "tj0", start=j_lo) as j:
                b.store(ir.Constant(F32, 0.0), b.gep(C, [b.add(crow, j)]))
            with for_range(b, K, "tk") as k:
                a = b.load(b.gep(A, [a_index(i, k)]))
                brow = b.add(b_off, b.mul(k, c64(N)))
                with for_range(b, j_hi, "tj", start=j_lo) as j:
                    cp = b.gep(C, [b.add(crow, j)])
                    b.store(b.call(sfma, [a, b.load(b.gep(B, [b.add(brow, j)])), b.load(cp)]), cp)

    E = N % (VW * VECS)  # the last columns, when this tile ends at the matrix's edge
    if E and K * -(-E // VW) * VW * 4 <= PACK_MAX_BYTES:  # their packed copy sits on the stack
        edge = b.icmp_signed("==", b.sub(j_hi, n64), c64(E))
        with b.if_else(edge) as (then, otherwise):
            with then:
                _edge_columns(module, b, A, B, C, K, N, a_index, b_off, c_off, (i_lo, m4), n64, E, ROWS)
            with otherwise:
                plain(i_lo, m4, n64, j_hi)
    else:
        plain(i_lo, m4, n64, j_hi)
    plain(m4, i_hi, j_lo, j_hi)


def _register_block(b: ir.IRBuilder, fma: ir.Function, A: ir.Value, a_index: Index, i0: ir.Value, K: int,
                    accs: list[list[ir.Value]], b_vec: Callable[[ir.Value, int], ir.Value]) -> None:
    """The micro-kernel's register block: accs[r][v] = the ordered chain over k of multiply-adds of
    A(i0 + r, k) (splat) by b_vec(k, v), from zero; B's vectors loaded once per k, reused by every row."""
    zero = ir.Constant(accs[0][0].type.pointee, [0.0] * accs[0][0].type.pointee.count)
    for row in accs:
        for acc in row:
            b.store(zero, acc)
    with for_range(b, K, "k") as k:
        bv = [b_vec(k, v) for v in range(len(accs[0]))]
        for r, row in enumerate(accs):
            a = _splat(b, b.load(b.gep(A, [a_index(b.add(i0, c64(r)), k)])))
            for v, acc in enumerate(row):
                b.store(b.call(fma, [a, bv[v], b.load(acc)]), acc)


def _edge_columns(module: ir.Module, b: ir.IRBuilder, A: ir.Value, B: ir.Value, C: ir.Value, K: int, N: int,
                  a_index: Index, b_off: ir.Value, c_off: ir.Value, rows: tuple[ir.Value, ir.Value],
                  j0: ir.Value, E: int, ROWS: int) -> None:
    """Columns [j0, j0 + E) of the row blocks in `rows` (E < the micro-kernel's width: a 10-class output
    layer is all edge): B's E columns are copied into zero-padded vectors once, then ROWS x ceil(E / lanes)
    accumulators run over k as in the micro-kernel. Each element is the same ordered chain of
    multiply-adds from 0 as in the scalar loop, so the results are too."""
    VEC = _vec(b)
    VW = VEC.count
    EV = -(-E // VW)
    fma = _vfma(module, VEC)
    zero = ir.Constant(VEC, [0.0] * VW)
    packed = _entry_alloca(b, VEC, K * EV)
    accs = [[_entry_alloca(b, VEC) for _ in range(EV)] for _ in range(ROWS)]
    with for_range(b, K, "ek") as k:
        brow = b.add(b_off, b.add(b.mul(k, c64(N)), j0))
        for v in range(EV):
            vec = zero
            for lane in range(min(VW, E - v * VW)):
                x = b.load(b.gep(B, [b.add(brow, c64(v * VW + lane))]))
                vec = b.insert_element(vec, x, ir.Constant(ir.IntType(32), lane))
            b.store(vec, b.gep(packed, [b.add(b.mul(k, c64(EV)), c64(v))]))
    with for_range(b, b.sdiv(b.sub(rows[1], rows[0]), c64(ROWS)), "eb") as ib:
        i0 = b.add(rows[0], b.mul(ib, c64(ROWS)))
        _register_block(b, fma, A, a_index, i0, K, accs,
                        lambda k, v: b.load(b.gep(packed, [b.add(b.mul(k, c64(EV)), c64(v))])))
        for r in range(ROWS):
            crow = b.add(c_off, b.add(b.mul(b.add(i0, c64(r)), c64(N)), j0))
            for v in range(EV):
                acc = b.load(accs[r][v])
                if (v + 1) * VW <= E:
                    _vstore(b, acc, C, b.add(crow, c64(v * VW)))
                else:
                    for lane in range(E - v * VW):
                        b.store(b.extract_element(acc, ir.Constant(ir.IntType(32), lane)),
                                b.gep(C, [b.add(crow, c64(v * VW + lane))]))


def _hsum(b: ir.IRBuilder, module: ir.Module, v: ir.Value) -> ir.Value:
    name = f"llvm.vector.reduce.fadd.v{v.type.count}f32"
    fn = module.globals.get(name) or ir.Function(module, ir.FunctionType(F32, [F32, v.type]), name)
    return b.call(fn, [ir.Constant(F32, 0.0), v], fastmath=("reassoc",))


def emit_f32_nt(module: ir.Module, b: ir.IRBuilder, A: ir.Value, B: ir.Value, C: ir.Value, K: int, N: int,
                a_off: ir.Value, b_off: ir.Value, c_off: ir.Value, rows: tuple[ir.Value, ir.Value],
                cols: tuple[ir.Value, ir.Value]) -> None:
    """C[i, j] = dot(A[i, :], B[j, :]) for float32 row-major A (M, K) and B (N, K) over the tile rows x
    cols (starts on multiples of the ISA's block): nt_rows x nt_cols blocks of dot products accumulate
    one-vector partial sums over k, reduced once at the end."""
    P = isa_of(module)
    VW, R, Q, VEC = P.lanes, P.nt_rows, P.nt_cols, _vec(b)
    fma = _vfma(module, VEC)
    k16 = K - K % VW
    (i_lo, i_hi), (j_lo, j_hi) = rows, cols
    m4, n4 = (_cut(b, i_lo, i_hi, R), _cut(b, j_lo, j_hi, Q)) if k16 else (i_lo, j_lo)
    zero = ir.Constant(VEC, [0.0] * VW)
    accs = [[_entry_alloca(b, VEC) for _ in range(Q)] for _ in range(R)]
    tail = _entry_alloca(b, F32)

    def dot_tail(i: ir.Value, j: ir.Value, start: int) -> ir.Value:
        b.store(ir.Constant(F32, 0.0), tail)
        if start < K:
            with for_range(b, K, "kt", start=start) as k:
                av = b.load(b.gep(A, [b.add(a_off, b.add(b.mul(i, c64(K)), k))]))
                bv = b.load(b.gep(B, [b.add(b_off, b.add(b.mul(j, c64(K)), k))]))
                b.store(b.fadd(b.load(tail), b.fmul(av, bv), flags=("reassoc", "contract")), tail)
        return b.load(tail)

    if k16:
        with for_range(b, b.sdiv(b.sub(m4, i_lo), c64(R)), "ib") as ib:
            i0 = b.add(i_lo, b.mul(ib, c64(R)))
            with for_range(b, b.sdiv(b.sub(n4, j_lo), c64(Q)), "jb") as jb:
                j0 = b.add(j_lo, b.mul(jb, c64(Q)))
                for r in range(R):
                    for q in range(Q):
                        b.store(zero, accs[r][q])
                with for_range(b, k16 // VW, "kb") as kb:
                    k0 = b.mul(kb, c64(VW))
                    av = [_vload(b, A, b.add(a_off, b.add(b.mul(b.add(i0, c64(r)), c64(K)), k0))) for r in range(R)]
                    bv = [_vload(b, B, b.add(b_off, b.add(b.mul(b.add(j0, c64(q)), c64(K)), k0))) for q in range(Q)]
                    for r in range(R):
                        for q in range(Q):
                            b.store(b.call(fma, [av[r], bv[q], b.load(accs[r][q])]), accs[r][q])
                for r in range(R):
                    for q in range(Q):
                        i, j = b.add(i0, c64(r)), b.add(j0, c64(q))
                        s = b.fadd(_hsum(b, module, b.load(accs[r][q])), dot_tail(i, j, k16))
                        b.store(s, b.gep(C, [b.add(c_off, b.add(b.mul(i, c64(N)), j))]))

    def plain(i_lo: ir.Value, i_hi: ir.Value, j_lo: ir.Value, j_hi: ir.Value) -> None:
        with for_range(b, i_hi, "pi", start=i_lo) as i:
            with for_range(b, j_hi, "pj", start=j_lo) as j:
                b.store(dot_tail(i, j, 0), b.gep(C, [b.add(c_off, b.add(b.mul(i, c64(N)), j))]))

    plain(i_lo, m4, n4, j_hi)
    plain(m4, i_hi, j_lo, j_hi)


def row_step(path: str, P: Isa, M: int, K: int) -> int:
    """Rows of the micro-kernel's grid on `path` for an M x K operand: tile row starts on multiples of
    it keep every element on the same code path whatever the tiling."""
    return {"nn": P.mm_rows_for(M, K), "ntp": P.mm_rows_for(M, K), "nt": P.nt_rows, "plain": 1}[path]


def tiles(M: int, K: int, N: int, path: str, parallel_ok: bool, P: Isa) -> tuple[int, int]:
    """(rows, columns) per tile: the whole matrix unless it runs in parallel; then tiles of at least
    TILE_MIN_MACS multiply-adds whose edges lie on the micro-kernel's grid."""
    if not parallel_ok:
        return M, N
    cap = {"nn": 4 * P.mm_cols, "ntp": 4 * P.mm_cols, "nt": 16 * P.nt_cols, "plain": N}[path]  # multiples of the kernels' widths
    tn = N if N <= cap else cap
    step = row_step(path, P, M, K)
    tm = -(-TILE_MIN_MACS // max(tn * K, 1))
    tm = max(-(-tm // step) * step, step)
    return (M if tm >= M else tm), tn


@dataclass(frozen=True)
class Plan:
    """What a matmul's code depends on: C (batch..., M, N) = op(A) @ op(B), contraction K; the
    micro-kernel path ("nn", "nt", "ntp" or "plain") and whether its tiles may be shared among threads.
    "ntp" is B transposed with k too short for the dot products' vectors (the output layer's gradient,
    k = 10 classes): op(B) is packed into (K, N) once per tile call (packed_b) and the i-k-j
    micro-kernels run on it; elementwise the sums are the same ordered chains of multiply-adds as "nn"."""

    M: int
    K: int
    N: int
    batch: tuple[int, ...]
    a_b: tuple[int, ...]  # A's and B's strides (in matrices) along the batch dims (0 = broadcast)
    w_b: tuple[int, ...]
    ta: bool
    tb: bool
    path: str
    par: bool

    @property
    def nb(self) -> int:
        return prod(self.batch)


def plan(op: Op) -> Plan:
    a, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    ta, tb = bool(op.attrs.get("transpose_a")), bool(op.attrs.get("transpose_b"))
    dt = y.dtype
    if not dt.is_float:
        raise NotImplementedError(f"{op.label}: integer matmul is not supported by the LLVM backend")
    ash = (1,) + a.shape if len(a.shape) == 1 else a.shape
    wsh = w.shape + (1,) if len(w.shape) == 1 else w.shape
    M, K = (ash[-1], ash[-2]) if ta else (ash[-2], ash[-1])
    N = wsh[-2] if tb else wsh[-1]
    batch = tuple(y.shape[: len(y.shape) - (2 - (len(a.shape) == 1) - (len(w.shape) == 1))])
    a_b = broadcast_strides(ash[:-2], batch) if batch else ()
    w_b = broadcast_strides(wsh[:-2], batch) if batch else ()
    f32 = a.dtype == w.dtype == dt == DType.float32
    path = "nn" if f32 and not tb else "nt" if f32 and not ta else "plain"
    if path == "nt" and K < PACK_MAX_K and K * N * 4 <= PACK_MAX_BYTES and not any(w_b):
        path = "ntp"
    par = prod(batch) * M * N * K >= PARALLEL_MIN_MACS
    return Plan(M, K, N, batch, a_b, w_b, ta, tb, path, par)


def emit_tile(m: "ModuleLowering", b: ir.IRBuilder, op: Op, p: Plan, A: ir.Value, W: ir.Value, Y: ir.Value,
              t: ir.Value, tm: int, tn: int, local: bool = False, a_local: bool = False
              ) -> tuple[ir.Value, tuple[ir.Value, ir.Value], tuple[ir.Value, ir.Value]]:
    """Tile t of the result (tm x tn tiles, batch-major): returns (batch index, rows, cols). With `local`
    (whole-row tiles only), Y holds just this tile's rows: row i of the tile at Y[(i - rows[0]) * N].
    With `a_local` (whole-row tiles), A holds just this tile's rows of op(A) in the tile's batch matrix:
    (tm, K), or (K, tm) when transposed (a matmul prologue's buffer); the micro-kernel path is the same."""
    M, K, N = p.M, p.K, p.N
    tiles_m, tiles_n = -(-M // tm) if M else 0, -(-N // tn) if N else 0
    per_batch = c64(max(tiles_m * tiles_n, 1))
    bi, r = b.sdiv(t, per_batch), b.srem(t, per_batch)
    i0 = b.mul(b.sdiv(r, c64(max(tiles_n, 1))), c64(tm))
    j0 = b.mul(b.srem(r, c64(max(tiles_n, 1))), c64(tn))
    rows = (i0, _min(b, b.add(i0, c64(tm)), c64(M)))
    cols = (j0, _min(b, b.add(j0, c64(tn)), c64(N)))
    ab, wb = c64(0), c64(0)
    inner = 1
    for d in reversed(range(len(p.batch))):  # unflatten the batch index into each operand's offset
        idx = b.srem(b.sdiv(bi, c64(inner)), c64(p.batch[d]))
        ab, wb = b.add(ab, b.mul(idx, c64(p.a_b[d]))), b.add(wb, b.mul(idx, c64(p.w_b[d])))
        inner *= p.batch[d]
    a_off, w_off = b.mul(ab, c64(M * K)), b.mul(wb, c64(K * N))
    y_off = b.sub(c64(0), b.mul(i0, c64(N))) if local else b.mul(bi, c64(M * N))
    lda = M  # the row length of A when transposed
    if a_local:
        a_off, lda = b.sub(c64(0), i0 if p.ta else b.mul(i0, c64(K))), tm if p.ta else M
    if p.path in ("nn", "ntp"):  # "ntp": W is packed_b's (K, N) buffer, the same for every batch matrix
        def a_index(i: ir.Value, k: ir.Value) -> ir.Value:
            return b.add(a_off, b.add(b.mul(k, c64(lda)), i) if p.ta else b.add(b.mul(i, c64(K)), k))
        emit_f32(m.module, b, A, W, Y, K, N, a_index, w_off if p.path == "nn" else c64(0), y_off, rows, cols,
                 isa_of(m.module).mm_rows_for(M, K))
    elif p.path == "nt":
        emit_f32_nt(m.module, b, A, W, Y, K, N, a_off, w_off, y_off, rows, cols)
    else:
        _plain_rows(m, b, op, A, W, Y, lda, K, N, p.ta, p.tb, (a_off, w_off, y_off), rows)  # M: A's indexing only
    return bi, rows, cols


def packed_b(b: ir.IRBuilder, p: Plan, W: ir.Value, lo: ir.Value, hi: ir.Value) -> ir.Value:
    """The B operand the tiles read: W itself, or on path "ntp" W's (N, K) matrix transposed into a
    (K, N) buffer on this call's stack, filled once before the first of tiles [lo, hi)."""
    if p.path != "ntp":
        return W
    K, N = p.K, p.N
    buf = _entry_alloca(b, F32, max(K * N, 1))
    with b.if_then(b.icmp_signed("<", lo, hi)):
        with for_range(b, N, "pj") as j:
            with for_range(b, K, "pk") as k:
                b.store(b.load(b.gep(W, [b.add(b.mul(j, c64(K)), k)])), b.gep(buf, [b.add(b.mul(k, c64(N)), j)]))
    return buf


@special("MatMul")
def _matmul(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """C = op(A) @ op(B). Without transpose_b: i-k-j loops (the j loop is contiguous and vectorises);
    with transpose_b: dot products over contiguous rows (a reassociating reduction that vectorises)."""
    a, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    p = plan(op)
    tm, tn = tiles(p.M, p.K, p.N, p.path, p.par, isa_of(m.module))
    count = p.nb * (-(-p.M // tm) if p.M else 0) * (-(-p.N // tn) if p.N else 0)

    fnty = ir.FunctionType(ir.VoidType(), [PTR] * 3 + [I64, I64])
    fn = ir.Function(m.module, fnty, m.kernel_name() + ".tiles")
    fn.linkage = "internal"
    for arg in fn.args[:3]:
        arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    A, W, Y = typed(b, fn.args[0], a.dtype), typed(b, fn.args[1], w.dtype), typed(b, fn.args[2], y.dtype)
    W = packed_b(b, p, W, fn.args[3], fn.args[4])
    with for_range(b, fn.args[4], "tile", start=fn.args[3]) as t:
        emit_tile(m, b, op, p, A, W, Y, t, tm, tn)
    b.ret_void()
    run_tiles(m, gl, fn, [gl.p(a), gl.p(w), gl.p(y)], count, p.par)


def run_tiles(m: "ModuleLowering", gl: "GraphLowering", fn: ir.Function, args: list[ir.Value], count: int,
              par: bool) -> None:
    """Call the tile function fn(*args, lo, hi) over tiles [0, count): shared out among the threads when
    `par` and there are at least two tiles."""
    if par and count >= 2:
        def work(wb: ir.IRBuilder, cap: list[ir.Value], tid: ir.Value, nt: ir.Value) -> None:
            lo, hi = share(wb, count, tid, nt)
            wb.call(fn, cap + [lo, hi])
        parallel(m.module, gl.b, gl.threads(), args, work, fn.name)
    else:
        gl.b.call(fn, args + [c64(0), c64(count)])


def _plain_rows(m: "ModuleLowering", b: ir.IRBuilder, op: Op, A: ir.Value, W: ir.Value, Y: ir.Value, M: int,
                K: int, N: int, ta: bool, tb: bool, offs: tuple[ir.Value, ir.Value, ir.Value],
                rows: tuple[ir.Value, ir.Value]) -> None:
    """Rows [rows) of one matrix of the result, any float dtypes, accumulating in the compute type
    (narrow results in a float32 row)."""
    a, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    dt = y.dtype
    a_off, w_off, y_off = offs
    ct = compute_type(dt)
    zero = ir.Constant(ct, 0.0)
    fmuladd = m.module.declare_intrinsic("llvm.fmuladd", [ct], ir.FunctionType(ct, [ct, ct, ct]))
    acc = _entry_alloca(b, ct)
    narrow = dt not in (DType.float32, DType.float64)
    row = _entry_alloca(b, F32, size=N) if narrow and not tb else None

    def a_at(i: ir.Value, k: ir.Value) -> ir.Value:  # element (i, k) of op(A)
        return b.add(a_off, b.add(b.mul(k, c64(M)), i) if ta else b.add(b.mul(i, c64(K)), k))

    def w_at(k: ir.Value, j: ir.Value) -> ir.Value:  # element (k, j) of op(B)
        return b.add(w_off, b.add(b.mul(j, c64(K)), k) if tb else b.add(b.mul(k, c64(N)), j))

    with for_range(b, rows[1], "i", start=rows[0]) as i:
        crow = b.add(b.mul(i, c64(N)), y_off)
        if tb:
            with for_range(b, N, "j") as j:
                b.store(zero, acc)
                with for_range(b, K, "k") as k:
                    av = load(b, A, a_at(i, k), a.dtype)
                    bv = load(b, W, w_at(k, j), w.dtype)
                    b.store(b.fadd(b.load(acc), b.fmul(av, bv), flags=("reassoc", "contract")), acc)
                store(b, round_to(b, b.load(acc), dt), Y, b.add(crow, j), dt)
        else:
            C, base = (row, c64(0)) if row is not None else (Y, crow)
            with for_range(b, N, "j0") as j:
                b.store(zero, b.gep(C, [b.add(base, j)]))
            with for_range(b, K, "k") as k:
                av = load(b, A, a_at(i, k), a.dtype)
                with for_range(b, N, "j") as j:
                    cp = b.gep(C, [b.add(base, j)])
                    bv = load(b, W, w_at(k, j), w.dtype)
                    b.store(b.call(fmuladd, [av, bv, b.load(cp)]), cp)
            if row is not None:
                with for_range(b, N, "j1") as j:
                    store(b, round_to(b, b.load(b.gep(row, [j])), dt), Y, b.add(crow, j), dt)
