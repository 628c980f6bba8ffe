"""Lowering rules for the ops that are not elementwise: data movement, calls, matmul,
reductions, softmax, cross-entropy, sparse accumulation. One function per op kind."""
from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from compiler.ir import DType, Op
from compiler.ops.nn import norm_axes
from compiler.ops.primitives import Node, Prim

from .loops import Space, broadcast_strides, c64, for_range, nest
from .matmul import emit_f32, emit_f32_nt
from .rules import Ctx, lower_node
from .types import F32, F64, I1, I64, PTR, compute_type, const, round_to, storage_type, to_compute, to_storage

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

SpecialRule = Callable[["ModuleLowering", "GraphLowering", Op], None]
SPECIAL: dict[str, SpecialRule] = {}


def special(*kinds: str) -> Callable[[SpecialRule], SpecialRule]:
    def deco(fn: SpecialRule) -> SpecialRule:
        for k in kinds:
            SPECIAL[k] = fn
        return fn
    return deco


def typed(b: ir.IRBuilder, p: ir.Value, dt: DType) -> ir.Value:
    return b.bitcast(p, storage_type(dt).as_pointer())


def load(b: ir.IRBuilder, p: ir.Value, idx: ir.Value, dt: DType) -> ir.Value:
    return to_compute(b, b.load(b.gep(p, [idx])), dt)


def store(b: ir.IRBuilder, v: ir.Value, p: ir.Value, idx: ir.Value, dt: DType) -> None:
    b.store(to_storage(b, v, dt), b.gep(p, [idx]))


def kernel(m: "ModuleLowering", nparams: int) -> tuple[ir.Function, ir.IRBuilder]:
    fn = ir.Function(m.module, ir.FunctionType(ir.VoidType(), [PTR] * nparams), m.kernel_name())
    fn.linkage = "internal"
    for a in fn.args:
        a.add_attribute("noalias")
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))


def acc_type(dt: DType) -> DType:
    return DType.float64 if dt is DType.float64 else DType.float32 if dt.is_float else dt


# ------------------------------------------------------------- data movement
@special("Init")
def _init(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    v = op.outputs[0]
    m.zero(gl.b, gl.p(v), v.spec.nbytes)


@special("Reshape", "Identity")
def _reshape(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    src, dst = op.inputs[0], op.outputs[0]
    if src.storage != dst.storage:
        m.copy(gl.b, gl.p(dst), gl.p(src), dst.spec.nbytes)


@special("HostLoad")
def _host_load(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    b, v = gl.b, op.outputs[0]
    k = m.layout.h2d.index(op.attrs["stream"])
    base = b.load(b.gep(gl.fn.args[1], [c64(k)]))
    src = b.gep(base, [b.mul(gl.fn.args[4], c64(v.spec.nbytes))])
    m.copy(b, gl.p(v), src, v.spec.nbytes)


@special("HostStore")
def _host_store(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    b, v = gl.b, op.inputs[0]
    k = m.layout.d2h.index(op.attrs["stream"])
    base = b.load(b.gep(gl.fn.args[2], [c64(k)]))
    dst = b.gep(base, [b.mul(gl.fn.args[4], c64(v.spec.nbytes))])
    m.copy(b, dst, gl.p(v), v.spec.nbytes)


def call_args(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> ir.Value:
    """The pointer array a graph function takes: inputs (copies where the callee would write an alias) then outputs."""
    b = gl.b
    callee = op.called
    assert callee is not None
    n = len(op.inputs) + len(op.outputs)
    arr = b.alloca(PTR, size=n)
    ref_storages = [op.inputs[i].storage for i in sorted(callee.by_ref)]
    if len(set(ref_storages)) != len(ref_storages):
        raise NotImplementedError(f"{op.label}: the same tensor is passed to two by-reference inputs of "
                                  f"{callee.id!r}; pass distinct tensors")
    for i, v in enumerate(op.inputs):
        p = gl.p(v)
        if i not in callee.by_ref and v.storage in ref_storages:  # the callee writes it through another input
            tmp = gl.slot(v.spec.nbytes)
            m.copy(b, tmp, p, v.spec.nbytes)
            p = tmp
        b.store(p, b.gep(arr, [c64(i)]))
    for j, v in enumerate(op.outputs):
        b.store(gl.p(v), b.gep(arr, [c64(len(op.inputs) + j)]))
    return arr


@special("Call")
def _call(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    assert op.called is not None
    gl.b.call(m.graph_fns[op.called.id], [call_args(m, gl, op), gl.ws])


@special("Transpose")
def _transpose(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x, y = op.inputs[0], op.outputs[0]
    perm = op.attrs.get("perm") or tuple(reversed(range(len(x.shape))))
    in_strides = broadcast_strides(x.shape, x.shape)
    fn, b = kernel(m, 2)
    src, dst = typed(b, fn.args[0], x.dtype), typed(b, fn.args[1], y.dtype)
    space = Space.make(y.shape, [tuple(in_strides[p] for p in perm), broadcast_strides(y.shape, y.shape)])
    if y.spec.nelms:
        with nest(b, space) as (i, o):
            b.store(b.load(b.gep(src, [i])), b.gep(dst, [o]))
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.p(y)])


# ------------------------------------------------------------------- matmul
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


# --------------------------------------------------------------- reductions
def _reduction(m: "ModuleLowering", gl: "GraphLowering", op: Op, kind: str, axes: tuple[int, ...]) -> None:
    x, y = op.inputs[0], op.outputs[0]
    adt = acc_type(x.dtype)
    at = compute_type(adt)
    n_out = max(y.spec.nelms, 1)
    direct = y.dtype == adt
    tmp = None if direct else gl.slot(n_out * adt.itemsize)
    fn, b = kernel(m, 3)
    X, Y = typed(b, fn.args[0], x.dtype), typed(b, fn.args[1], y.dtype)
    ACC = Y if direct else typed(b, fn.args[2], adt)
    ctx = Ctx(b, m.module)
    ident = {"sum": 0.0, "sumsq": 0.0, "mean": 0.0, "max": float("-inf"), "min": float("inf")}[kind]
    if not adt.is_float:
        ident = {"sum": 0, "sumsq": 0, "mean": 0, "max": -(2 ** 31), "min": 2 ** 31 - 1}[kind]
    with for_range(b, n_out, "o0") as o:
        b.store(const(adt, ident), b.gep(ACC, [o]))
    out_strides = tuple(0 if d in axes else s for d, s in enumerate(
        broadcast_strides(tuple(1 if d in axes else n for d, n in enumerate(x.shape)), x.shape)))
    space = Space.make(x.shape, [broadcast_strides(x.shape, x.shape), out_strides])
    if x.spec.nelms:
        with nest(b, space) as (i, o):
            xv = load(b, X, i, x.dtype)
            if x.dtype != adt:
                xv = lower_node(ctx, Node(Prim.cast, (0,), adt), [x.dtype], [xv])
            p = b.gep(ACC, [o])
            cur = b.load(p)
            if kind in ("sum", "mean", "sumsq"):
                if kind == "sumsq":
                    xv = b.fmul(xv, xv) if adt.is_float else b.mul(xv, xv)
                r = b.fadd(cur, xv, flags=("reassoc",)) if adt.is_float else b.add(cur, xv)
            else:
                r = lower_node(ctx, Node(Prim.max if kind == "max" else Prim.min, (0, 1), adt), [adt, adt], [cur, xv])
            b.store(r, p)
    count = x.spec.nelms // n_out if n_out else 1
    if kind == "mean" or not direct:
        with for_range(b, n_out, "o1") as o:
            v = b.load(b.gep(ACC, [o]))
            if kind == "mean":
                v = b.fdiv(v, ir.Constant(at, float(count))) if adt.is_float else b.sdiv(v, ir.Constant(at, count))
            if not direct:
                v = lower_node(ctx, Node(Prim.cast, (0,), y.dtype), [adt], [v])
                v = round_to(b, v, y.dtype)
            store(b, v, Y, o, y.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.p(y), tmp if tmp is not None else ir.Constant(PTR, None)])


_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceSumSquare": "sumsq"}


@special(*_REDUCE)
def _reduce(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x = op.inputs[0]
    _reduction(m, gl, op, _REDUCE[op.kind], norm_axes(op.kind, len(x.shape), op.attrs.get("axes")))


@special("LambSquare")
def _lamb_square(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    _reduction(m, gl, op, "sumsq", tuple(range(len(op.inputs[0].shape))))


# ----------------------------------------------------------- softmax / nll
def _split(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    axis %= max(len(shape), 1)
    return prod(shape[:axis]), shape[axis] if shape else 1, prod(shape[axis + 1:])


@special("Softmax")
def _softmax(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x, y = op.inputs[0], op.outputs[0]
    pre, n, post = _split(x.shape, op.attrs.get("axis", -1))
    cdt = acc_type(x.dtype)
    ct = compute_type(cdt)
    fn, b = kernel(m, 2)
    X, Y = typed(b, fn.args[0], x.dtype), typed(b, fn.args[1], y.dtype)
    ctx = Ctx(b, m.module)
    expf = ctx.libm("exp", ct)
    mx_slot, s_slot = b.alloca(ct), b.alloca(ct)
    with for_range(b, pre, "p") as p:
        with for_range(b, post, "q") as q:
            base = b.add(b.mul(p, c64(n * post)), q)

            def at(i: ir.Value) -> ir.Value:
                return b.add(base, b.mul(i, c64(post)))

            b.store(ir.Constant(ct, float("-inf")), mx_slot)
            with for_range(b, n, "i0") as i:
                v = load(b, X, at(i), x.dtype)
                b.store(lower_node(ctx, Node(Prim.max, (0, 1), cdt), [cdt, cdt], [b.load(mx_slot), v]), mx_slot)
            b.store(ir.Constant(ct, 0.0), s_slot)
            mx = b.load(mx_slot)
            with for_range(b, n, "i1") as i:
                e = b.call(expf, [b.fsub(load(b, X, at(i), x.dtype), mx)])
                b.store(b.fadd(b.load(s_slot), e), s_slot)
            s = b.load(s_slot)
            with for_range(b, n, "i2") as i:
                e = b.call(expf, [b.fsub(load(b, X, at(i), x.dtype), mx)])
                store(b, round_to(b, b.fdiv(e, s), y.dtype), Y, at(i), y.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.p(y)])


@special("NlllWithSoftmaxGradDirect")
def _nll(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    probs, labels = op.input("probs"), op.input("labels")
    lg = op.input("loss_grad")
    loss, dx = op.outputs
    assert probs is not None and labels is not None
    C = probs.shape[-1]
    R = probs.spec.nelms // C if C else 0
    red = op.attrs.get("reduction", "mean")
    ignore = op.attrs.get("ignore_index")
    fn, b = kernel(m, 5)
    P, L = typed(b, fn.args[0], probs.dtype), typed(b, fn.args[1], labels.dtype)
    LOSS, DX = typed(b, fn.args[3], loss.dtype), typed(b, fn.args[4], dx.dtype)
    ctx = Ctx(b, m.module)
    logf = ctx.libm("log", F32)
    lab_ct = compute_type(labels.dtype)

    def label(r: ir.Value) -> ir.Value:
        v = b.load(b.gep(L, [r]))
        return b.sext(v, I64) if lab_ct.width < 64 else v

    def kept(lv: ir.Value) -> ir.Value:
        return ir.Constant(I1, 1) if ignore is None else b.icmp_signed("!=", lv, c64(int(ignore)))

    cnt = b.alloca(I64)
    b.store(c64(0), cnt)
    with for_range(b, R, "r0") as r:
        b.store(b.add(b.load(cnt), b.zext(kept(label(r)), I64)), cnt)
    n = b.load(cnt)
    if red == "mean":
        n = b.select(b.icmp_signed(">", n, c64(1)), n, c64(1))
    else:
        n = c64(1)
    scale = to_compute(b, b.load(typed(b, fn.args[2], lg.dtype)), lg.dtype) if lg is not None else \
        ir.Constant(F32, float(op.attrs.get("loss_grad", 1.0)))
    if scale.type != F32:
        scale = b.fptrunc(scale, F32) if scale.type == F64 else scale
    coef = b.fptrunc(b.fdiv(b.fpext(scale, F64), b.sitofp(n, F64)), F32)  # float32(scale / n), as the reference
    total = b.alloca(F32)
    b.store(ir.Constant(F32, 0.0), total)
    with for_range(b, R, "r") as r:
        lv = label(r)
        keep = kept(lv)
        safe = b.select(keep, lv, c64(0))
        picked = load(b, P, b.add(b.mul(r, c64(C)), safe), probs.dtype)
        per = b.fneg(b.call(logf, [b.fadd(picked, ir.Constant(F32, 1e-7))]))
        per = b.select(keep, per, ir.Constant(F32, 0.0))
        if red == "none":
            store(b, round_to(b, per, loss.dtype), LOSS, r, loss.dtype)
        b.store(b.fadd(b.load(total), per), total)
        with for_range(b, C, "c") as c:
            idx = b.add(b.mul(r, c64(C)), c)
            pv = load(b, P, idx, probs.dtype)
            one = b.uitofp(b.icmp_signed("==", c, safe), F32)
            g = b.fmul(b.fsub(pv, one), coef)
            g = b.select(keep, g, ir.Constant(F32, 0.0))
            store(b, round_to(b, g, dx.dtype), DX, idx, dx.dtype)
    if red != "none":
        tot = b.fdiv(b.load(total), b.sitofp(n, F32))
        store(b, round_to(b, tot, loss.dtype), LOSS, c64(0), loss.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(probs), gl.p(labels), gl.p(lg) if lg is not None else ir.Constant(PTR, None),
                   gl.p(loss), gl.p(dx)])


# ------------------------------------------------------- sparse accumulate
@special("PopartSparseAccumulate")
def _sparse_acc(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    t, x, idx = op.input("t"), op.input("X"), op.input("indices")
    f = op.input("f")
    assert t is not None and x is not None and idx is not None
    axis = op.attrs.get("axis", 0)
    pre, dim, post = _split(t.shape, axis)
    nidx = idx.shape[0]
    dt = t.dtype
    fn, b = kernel(m, 4)
    T, X, IDX = typed(b, fn.args[0], dt), typed(b, fn.args[1], x.dtype), typed(b, fn.args[2], idx.dtype)
    ctx = Ctx(b, m.module)
    if f is not None:
        fv = load(b, typed(b, fn.args[3], f.dtype), c64(0), f.dtype)
        fv = round_to(b, lower_node(ctx, Node(Prim.cast, (0,), dt), [f.dtype], [fv]), dt)
    else:
        fv = const(dt, float(op.attrs.get("f", 1.0)))
    with for_range(b, pre, "p") as p:
        with for_range(b, nidx, "k") as k:
            j = b.load(b.gep(IDX, [k]))
            j = b.sext(j, I64) if j.type.width < 64 else j
            ok = b.and_(b.icmp_signed(">=", j, c64(0)), b.icmp_signed("<", j, c64(dim)))
            with b.if_then(ok):  # out-of-range indices are skipped, never written
                with for_range(b, post, "q") as q:
                    ti = b.add(b.mul(b.add(b.mul(p, c64(dim)), j), c64(post)), q)
                    xi = b.add(b.mul(b.add(b.mul(p, c64(nidx)), k), c64(post)), q)
                    xv = round_to(b, lower_node(ctx, Node(Prim.cast, (0,), dt), [x.dtype], [load(b, X, xi, x.dtype)]), dt)
                    upd = round_to(b, b.fmul(fv, xv), dt)
                    store(b, round_to(b, b.fadd(load(b, T, ti, dt), upd), dt), T, ti, dt)
    b.ret_void()
    gl.b.call(fn, [gl.p(t), gl.p(x), gl.p(idx), gl.p(f) if f is not None else ir.Constant(PTR, None)])
