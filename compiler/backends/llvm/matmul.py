"""MatMul: register-blocked float32 micro-kernels (C[4 rows, 64 cols] held in 16 vector registers
while k runs, so each B vector loaded feeds four FMAs; 4x4 blocks of dot products when B is
transposed), plain loop nests for the edges and for other dtypes (float32 accumulation)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from compiler.ir import DType, Op

from .loops import Space, broadcast_strides, c64, for_range, nest
from .special import kernel, load, special, store, typed
from .types import F32, compute_type, round_to

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

VW = 16  # float32 lanes of one AVX-512 register (LLVM splits it on narrower machines)
# float32 matmuls with at least this many multiply-adds (~0.2 ms on one thread, well above the cost of
# starting a thread) split their rows over two threads (measured: benchmarks/mnist_train.py --threads 2)
PARALLEL_MIN_MACS = 1 << 23
ROWS, VECS = 4, 4
VEC = ir.VectorType(F32, VW)


def _vload(b: ir.IRBuilder, base: ir.Value, idx: ir.Value) -> ir.Value:
    p = b.bitcast(b.gep(base, [idx]), VEC.as_pointer())
    return b.load(p, align=4)


def _vstore(b: ir.IRBuilder, v: ir.Value, base: ir.Value, idx: ir.Value) -> None:
    b.store(v, b.bitcast(b.gep(base, [idx]), VEC.as_pointer()), align=4)


def _splat(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    v = b.insert_element(ir.Constant(VEC, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return b.shuffle_vector(v, ir.Constant(VEC, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), VW), [0] * VW))


def emit_f32(module: ir.Module, b: ir.IRBuilder, A: ir.Value, B: ir.Value, C: ir.Value, M: int, K: int, N: int,
             a_index: Callable[[ir.Value, ir.Value], ir.Value], b_off: ir.Value, c_off: ir.Value) -> None:
    """C[c_off + i*N + j] = sum_k A(i, k) * B[b_off + k*N + j] for float32 A, B, C."""
    fma = module.globals.get("llvm.fmuladd.v16f32") or ir.Function(
        module, ir.FunctionType(VEC, [VEC, VEC, VEC]), "llvm.fmuladd.v16f32")
    sfma = module.declare_intrinsic("llvm.fmuladd", [F32], ir.FunctionType(F32, [F32, F32, F32]))
    m4, n64 = M - M % ROWS, N - N % (VW * VECS)
    zero = ir.Constant(VEC, [0.0] * VW)
    accs = [[b.alloca(VEC) for _ in range(VECS)] for _ in range(ROWS)]
    if m4 and n64:
        with for_range(b, m4 // ROWS, "ib") as ib:
            i0 = b.mul(ib, c64(ROWS))
            with for_range(b, n64 // (VW * VECS), "jb") as jb:
                j0 = b.mul(jb, c64(VW * VECS))
                for r in range(ROWS):
                    for v in range(VECS):
                        b.store(zero, accs[r][v])
                with for_range(b, K, "k") as k:
                    brow = b.add(b_off, b.add(b.mul(k, c64(N)), j0))
                    bv = [_vload(b, B, b.add(brow, c64(v * VW))) for v in range(VECS)]
                    for r in range(ROWS):
                        a = _splat(b, b.load(b.gep(A, [a_index(b.add(i0, c64(r)), k)])))
                        for v in range(VECS):
                            b.store(b.call(fma, [a, bv[v], b.load(accs[r][v])]), accs[r][v])
                for r in range(ROWS):
                    crow = b.add(c_off, b.add(b.mul(b.add(i0, c64(r)), c64(N)), j0))
                    for v in range(VECS):
                        _vstore(b, b.load(accs[r][v]), C, b.add(crow, c64(v * VW)))

    def plain(i_lo: int, i_hi: int, j_lo: int, j_hi: int) -> None:
        if i_hi <= i_lo or j_hi <= j_lo:
            return
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

    plain(0, m4, n64, N)
    plain(m4, M, 0, N)


def _hsum(b: ir.IRBuilder, module: ir.Module, v: ir.Value) -> ir.Value:
    fn = module.globals.get("llvm.vector.reduce.fadd.v16f32") or ir.Function(
        module, ir.FunctionType(F32, [F32, VEC]), "llvm.vector.reduce.fadd.v16f32")
    return b.call(fn, [ir.Constant(F32, 0.0), v], fastmath=("reassoc",))


def emit_f32_nt(module: ir.Module, b: ir.IRBuilder, A: ir.Value, B: ir.Value, C: ir.Value, M: int, K: int,
                N: int, a_off: ir.Value, b_off: ir.Value, c_off: ir.Value) -> None:
    """C[i, j] = dot(A[i, :], B[j, :]) for float32 row-major A (M, K) and B (N, K): 4x4 blocks of dot
    products accumulate 16-lane partial sums over k, reduced once at the end."""
    fma = module.globals.get("llvm.fmuladd.v16f32") or ir.Function(
        module, ir.FunctionType(VEC, [VEC, VEC, VEC]), "llvm.fmuladd.v16f32")
    R = 4
    m4, n4, k16 = M - M % R, N - N % R, K - K % VW
    zero = ir.Constant(VEC, [0.0] * VW)
    accs = [[b.alloca(VEC) for _ in range(R)] for _ in range(R)]
    tail = b.alloca(F32)

    def dot_tail(i: ir.Value, j: ir.Value, start: int) -> ir.Value:
        b.store(ir.Constant(F32, 0.0), tail)
        if start < K:
            with for_range(b, K, "kt", start=start) as k:
                av = b.load(b.gep(A, [b.add(a_off, b.add(b.mul(i, c64(K)), k))]))
                bv = b.load(b.gep(B, [b.add(b_off, b.add(b.mul(j, c64(K)), k))]))
                b.store(b.fadd(b.load(tail), b.fmul(av, bv), flags=("reassoc", "contract")), tail)
        return b.load(tail)

    if m4 and n4 and k16:
        with for_range(b, m4 // R, "ib") as ib:
            i0 = b.mul(ib, c64(R))
            with for_range(b, n4 // R, "jb") as jb:
                j0 = b.mul(jb, c64(R))
                for r in range(R):
                    for q in range(R):
                        b.store(zero, accs[r][q])
                with for_range(b, k16 // VW, "kb") as kb:
                    k0 = b.mul(kb, c64(VW))
                    av = [_vload(b, A, b.add(a_off, b.add(b.mul(b.add(i0, c64(r)), c64(K)), k0))) for r in range(R)]
                    bv = [_vload(b, B, b.add(b_off, b.add(b.mul(b.add(j0, c64(q)), c64(K)), k0))) for q in range(R)]
                    for r in range(R):
                        for q in range(R):
                            b.store(b.call(fma, [av[r], bv[q], b.load(accs[r][q])]), accs[r][q])
                for r in range(R):
                    for q in range(R):
                        i, j = b.add(i0, c64(r)), b.add(j0, c64(q))
                        s = b.fadd(_hsum(b, module, b.load(accs[r][q])), dot_tail(i, j, k16))
                        b.store(s, b.gep(C, [b.add(c_off, b.add(b.mul(i, c64(N)), j))]))
    blocked_m, blocked_n = (m4, n4) if (m4 and n4 and k16) else (0, 0)

    def plain(i_lo: int, i_hi: int, j_lo: int, j_hi: int) -> None:
        if i_hi <= i_lo or j_hi <= j_lo:
            return
        with for_range(b, i_hi, "pi", start=i_lo) as i:
            with for_range(b, j_hi, "pj", start=j_lo) as j:
                b.store(dot_tail(i, j, 0), b.gep(C, [b.add(c_off, b.add(b.mul(i, c64(N)), j))]))

    plain(0, blocked_m, blocked_n, N)
    plain(blocked_m, M, 0, N)


@special("MatMul")
def _matmul(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """C = op(A) @ op(B). Without transpose_b: i-k-j loops (the j loop is contiguous and vectorises);
    with transpose_b: dot products over contiguous rows (a reassociating reduction that vectorises)."""
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
    if (a.dtype == w.dtype == dt == DType.float32 and not batch and not (ta and tb) and m.threads > 1
            and M >= 2 * ROWS and M * N * K >= PARALLEL_MIN_MACS):
        _matmul_two_threads(m, gl, op, M, K, N, ta, tb)
        return
    ct = compute_type(dt)
    fn, b = kernel(m, 3)
    A, W, Y = typed(b, fn.args[0], a.dtype), typed(b, fn.args[1], w.dtype), typed(b, fn.args[2], dt)
    zero = ir.Constant(ct, 0.0)
    fmuladd = m.module.declare_intrinsic("llvm.fmuladd", [ct], ir.FunctionType(ct, [ct, ct, ct]))
    acc = b.alloca(ct)

    def a_at(off, i, k):  # element (i, k) of op(A)
        return b.add(off, b.add(b.mul(k, c64(M)), i) if ta else b.add(b.mul(i, c64(K)), k))

    def w_at(off, k, j):  # element (k, j) of op(B)
        return b.add(off, b.add(b.mul(j, c64(K)), k) if tb else b.add(b.mul(k, c64(N)), j))

    bspace = Space.make(batch, [a_b, w_b, broadcast_strides(batch, batch)]) if batch else Space((), [(), (), ()])
    f32 = a.dtype == w.dtype == dt == DType.float32
    with nest(b, bspace) as (ab, wb, yb):
        a_off, w_off, y_off = b.mul(ab, c64(M * K)), b.mul(wb, c64(K * N)), b.mul(yb, c64(M * N))
        if f32 and not tb:
            emit_f32(m.module, b, A, W, Y, M, K, N, lambda i, k: a_at(a_off, i, k), w_off, y_off)
        elif f32 and not ta:
            emit_f32_nt(m.module, b, A, W, Y, M, K, N, a_off, w_off, y_off)
        else:
            with for_range(b, M, "i") as i:
                crow = b.add(b.mul(i, c64(N)), y_off)
                if tb:
                    with for_range(b, N, "j") as j:
                        b.store(zero, acc)
                        with for_range(b, K, "k") as k:
                            av = load(b, A, a_at(a_off, i, k), a.dtype)
                            bv = load(b, W, w_at(w_off, k, j), w.dtype)
                            b.store(b.fadd(b.load(acc), b.fmul(av, bv), flags=("reassoc", "contract")), acc)
                        store(b, round_to(b, b.load(acc), dt), Y, b.add(crow, j), dt)
                else:
                    C = Y if dt in (DType.float32, DType.float64) else None
                    if C is None:  # narrow types accumulate a float32 row on the stack
                        C = b.alloca(F32, size=N)
                        base = c64(0)
                    else:
                        base = crow
                    with for_range(b, N, "j0") as j:
                        b.store(zero, b.gep(C, [b.add(base, j)]))
                    with for_range(b, K, "k") as k:
                        av = load(b, A, a_at(a_off, i, k), a.dtype)
                        with for_range(b, N, "j") as j:
                            cp = b.gep(C, [b.add(base, j)])
                            bv = load(b, W, w_at(w_off, k, j), w.dtype)
                            b.store(b.call(fmuladd, [av, bv, b.load(cp)]), cp)
                    if C is not Y:
                        with for_range(b, N, "j1") as j:
                            store(b, round_to(b, b.load(b.gep(C, [j])), dt), Y, b.add(crow, j), dt)
    b.ret_void()
    gl.b.call(fn, [gl.p(a), gl.p(w), gl.p(y)])


def _rows_kernel(m: "ModuleLowering", op: Op, M: int, K: int, N: int, ta: bool, tb: bool, r0: int, rows: int
                 ) -> ir.Function:
    """A float32 kernel (A, W, Y) computing rows [r0, r0 + rows) of Y = op(A) @ op(W); every element is
    summed in the same order as by the whole-matrix kernel, so splitting changes no bit."""
    fn, b = kernel(m, 3)
    A, W, Y = (typed(b, fn.args[k], DType.float32) for k in range(3))
    if not tb:
        def a_index(i, k):  # element (r0 + i, k) of op(A)
            i = b.add(i, c64(r0))
            return b.add(b.mul(k, c64(M)), i) if ta else b.add(b.mul(i, c64(K)), k)
        emit_f32(m.module, b, A, W, Y, rows, K, N, a_index, c64(0), c64(r0 * N))
    else:
        emit_f32_nt(m.module, b, A, W, Y, rows, K, N, c64(r0 * K), c64(0), c64(r0 * N))
    b.ret_void()
    return fn


def _matmul_two_threads(m: "ModuleLowering", gl: "GraphLowering", op: Op, M: int, K: int, N: int, ta: bool,
                        tb: bool) -> None:
    """A large 2-d float32 matmul: the top rows of the result on this thread, the bottom ones on a second."""
    from .parallel import run_two

    cut = (M // 2 + ROWS - 1) // ROWS * ROWS
    args = [gl.p(v) for v in (op.inputs[0], op.inputs[1], op.outputs[0])]
    top = _rows_kernel(m, op, M, K, N, ta, tb, 0, cut)
    bottom = _rows_kernel(m, op, M, K, N, ta, tb, cut, M - cut)
    run_two(gl.b, m.module, [(top, args, [])], [(bottom, args, [])], m.kernel_name() + ".rows")
