"""Ops that index memory with data: the cross-entropy gradient (labels) and sparse accumulation
(indices). Negative sparse indices wrap once, as numpy indexing does; labels must be in [0, classes)
(a negative label is a bug, as in torch and PopART). Anything else out of range is never
dereferenced: the kernel stores the op's error code in the status word (the run then reports it)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from compiler.ir import DType, Op
from compiler.ops.primitives import Node, Prim

from .loops import c64, for_range
from .reduce import split_axis
from .rules import Ctx, lower_node
from .special import kernel, load, operands, special, store, typed
from .types import F32, F64, I1, I32, I64, PTR, const, round_to, to_compute

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering


def _index(b: ir.IRBuilder, base: ir.Value, k: ir.Value, dt: DType) -> ir.Value:
    """Element k of an index tensor as an int64; float labels truncate as a cast to int64 does."""
    v = b.load(b.gep(base, [k]))
    if dt.is_float:
        return lower_node(Ctx(b, b.module), Node(Prim.cast, (0,), DType.int64), [dt], [to_compute(b, v, dt)])
    if v.type.width < 64:
        v = b.sext(v, I64) if dt.is_signed and dt is not DType.bool else b.zext(v, I64)
    return v


def _wrap_and_check(b: ir.IRBuilder, j: ir.Value, n: int, status: ir.Value, code: ir.Constant, wrap: bool = True,
                    used: ir.Value | None = None) -> tuple[ir.Value, ir.Value]:
    """(j wrapped into [0, n) if it was in [-n, 0) and `wrap`, whether it is valid); invalid sets the status
    (only where `used`: an ignored label may be anything)."""
    if wrap:
        j = b.select(b.icmp_signed("<", j, c64(0)), b.add(j, c64(n)), j)
    ok = b.and_(b.icmp_signed(">=", j, c64(0)), b.icmp_signed("<", j, c64(n)))
    with b.if_then(b.not_(ok) if used is None else b.and_(used, b.not_(ok))):
        b.store(code, b.bitcast(status, I32.as_pointer()))
    return b.select(ok, j, c64(0)), ok


@special("NlllWithSoftmaxGradDirect")
def _nll(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """loss = -mean(log(p[label] + 1e-7)) over kept rows; dx = (p - onehot(label)) * float32(loss_grad / n)."""
    probs, labels, lg = op.input("probs"), op.input("labels"), op.input("loss_grad")
    loss, dx = op.outputs
    assert probs is not None and labels is not None
    C = probs.shape[-1]
    R = probs.spec.nelms // C if C else 0
    red = op.attrs.get("reduction", "mean")
    ignore = op.attrs.get("ignore_index")
    fn, b = kernel(m, 6)
    P, L = typed(b, fn.args[0], probs.dtype), typed(b, fn.args[1], labels.dtype)
    LOSS, DX = typed(b, fn.args[3], loss.dtype), typed(b, fn.args[4], dx.dtype)
    status = fn.args[5]
    logf = Ctx(b, m.module).libm("log", F32)

    def prob(k: ir.Value) -> ir.Value:
        """probs[k] as float32: the op computes in float32 for every dtype, as the reference does."""
        v = load(b, P, k, probs.dtype)
        return b.fptrunc(v, F32) if v.type == F64 else v

    def result(v: ir.Value, dt: DType) -> ir.Value:
        return b.fpext(v, F64) if dt is DType.float64 else round_to(b, v, dt)

    def kept(r: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(the row's label, whether the row counts)."""
        lv = _index(b, L, r, labels.dtype)
        return lv, (ir.Constant(I1, 1) if ignore is None else b.icmp_signed("!=", lv, c64(int(ignore))))

    cnt = b.alloca(I64)
    b.store(c64(0), cnt)
    with for_range(b, R, "r0") as r:
        b.store(b.add(b.load(cnt), b.zext(kept(r)[1], I64)), cnt)
    n = b.load(cnt)
    n = b.select(b.icmp_signed(">", n, c64(1)), n, c64(1)) if red == "mean" else c64(1)
    if lg is not None:
        scale = to_compute(b, b.load(typed(b, fn.args[2], lg.dtype)), lg.dtype)
        scale = scale if scale.type == F64 else b.fpext(scale, F64)
    else:
        scale = ir.Constant(F64, float(op.attrs.get("loss_grad", 1.0)))
    coef = b.fptrunc(b.fdiv(scale, b.sitofp(n, F64)), F32)  # float32(scale / n), as the reference
    total = b.alloca(F32)
    b.store(ir.Constant(F32, 0.0), total)
    if C:
        with for_range(b, R, "r") as r:
            lv, keep = kept(r)
            safe, valid = _wrap_and_check(b, lv, C, status, m.error_code(op), wrap=False, used=keep)
            keep = b.and_(keep, valid) if ignore is not None else valid
            picked = prob(b.add(b.mul(r, c64(C)), safe))
            per = b.fneg(b.call(logf, [b.fadd(picked, ir.Constant(F32, 1e-7))]))
            per = b.select(keep, per, ir.Constant(F32, 0.0))
            if red == "none":
                store(b, result(per, loss.dtype), LOSS, r, loss.dtype)
            b.store(b.fadd(b.load(total), per), total)
            with for_range(b, C, "c") as c:
                idx = b.add(b.mul(r, c64(C)), c)
                one = b.uitofp(b.icmp_signed("==", c, safe), F32)
                g = b.fmul(b.fsub(prob(idx), one), coef)
                store(b, result(b.select(keep, g, ir.Constant(F32, 0.0)), dx.dtype), DX, idx, dx.dtype)
    if red != "none":
        tot = b.fdiv(b.load(total), b.sitofp(n, F32))
        store(b, result(tot, loss.dtype), LOSS, c64(0), loss.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(probs), gl.p(labels), gl.p(lg) if lg is not None else ir.Constant(PTR, None),
                   gl.p(loss), gl.p(dx), gl.status()])


@special("Nll")
def _nll_plain(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """loss = reduce(-log(p[label])) (-p[label] for log-probabilities) over the kept rows, in float32
    (float64 for float64), rows in order; a label out of range that is not ignored sets the status."""
    probs, labels = op.input("probs"), op.input("labels")
    (loss,) = op.outputs
    assert probs is not None and labels is not None
    C = probs.shape[-1]
    R = probs.spec.nelms // C if C else 0
    red, ignore = op.attrs.get("reduction", "mean"), op.attrs.get("ignore_index")
    adt = DType.float64 if probs.dtype is DType.float64 else DType.float32
    at = F64 if adt is DType.float64 else F32
    fn, b = kernel(m, 4)
    P, L, LOSS = typed(b, fn.args[0], probs.dtype), typed(b, fn.args[1], labels.dtype), typed(b, fn.args[2], loss.dtype)
    ctx = Ctx(b, m.module)
    total, cnt = b.alloca(at), b.alloca(I64)
    b.store(ir.Constant(at, 0.0), total)
    b.store(c64(0), cnt)
    with for_range(b, R, "r") as r:
        lv = _index(b, L, r, labels.dtype)
        keep = ir.Constant(I1, 1) if ignore is None else b.icmp_signed("!=", lv, c64(int(ignore)))
        safe, valid = _wrap_and_check(b, lv, C, fn.args[3], m.error_code(op), wrap=False, used=keep)
        keep = b.and_(keep, valid)
        picked = load(b, P, b.add(b.mul(r, c64(C)), safe), probs.dtype)
        if probs.dtype != adt:
            picked = lower_node(ctx, Node(Prim.cast, (0,), adt), [probs.dtype], [picked])
        if not op.attrs.get("log_prob"):
            picked = lower_node(ctx, Node(Prim.log, (0,), adt), [adt], [picked])
        per = b.select(keep, b.fneg(picked), ir.Constant(at, 0.0))
        if red == "none":
            store(b, round_to(b, _to(ctx, per, adt, loss.dtype), loss.dtype), LOSS, r, loss.dtype)
        b.store(b.fadd(b.load(total), per), total)
        b.store(b.add(b.load(cnt), b.zext(keep, I64)), cnt)
    if red != "none":
        tot = b.load(total)
        if red == "mean":
            n = b.load(cnt)
            tot = b.fdiv(tot, b.sitofp(b.select(b.icmp_signed(">", n, c64(1)), n, c64(1)), at))
        store(b, round_to(b, _to(ctx, tot, adt, loss.dtype), loss.dtype), LOSS, c64(0), loss.dtype)
    b.ret_void()
    gl.b.call(fn, [gl.p(probs), gl.p(labels), gl.p(loss), gl.status()])


def _to(ctx: Ctx, v: ir.Value, src: DType, dst: DType) -> ir.Value:
    return v if src == dst else lower_node(ctx, Node(Prim.cast, (0,), dst), [src], [v])


@special("PopartSparseAccumulate")
def _sparse_acc(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """t[.., indices[k], ..] += f * X[.., k, ..] along axis, in index order (duplicates accumulate)."""
    t, x, idx, f = op.input("t"), op.input("X"), op.input("indices"), op.input("f")
    assert t is not None and x is not None and idx is not None
    pre, dim, post = split_axis(t.shape, op.attrs.get("axis", 0))
    nidx = idx.shape[0]
    dt = t.dtype
    fn, b = kernel(m, 5)
    T, X, IDX = typed(b, fn.args[0], dt), typed(b, fn.args[1], x.dtype), typed(b, fn.args[2], idx.dtype)
    ctx = Ctx(b, m.module)

    def cast(v: ir.Value, src: DType) -> ir.Value:
        return round_to(b, lower_node(ctx, Node(Prim.cast, (0,), dt), [src], [v]), dt)

    if f is not None:
        fv = cast(load(b, typed(b, fn.args[3], f.dtype), c64(0), f.dtype), f.dtype)
    else:
        fv = const(dt, float(op.attrs.get("f", 1.0)))
    mul = b.fmul if dt.is_float else b.mul
    add = b.fadd if dt.is_float else b.add
    with for_range(b, pre, "p") as p:
        with for_range(b, nidx, "k") as k:
            j, ok = _wrap_and_check(b, _index(b, IDX, k, idx.dtype), dim, fn.args[4], m.error_code(op))
            with b.if_then(ok):
                with for_range(b, post, "q") as q:
                    ti = b.add(b.mul(b.add(b.mul(p, c64(dim)), j), c64(post)), q)
                    xi = b.add(b.mul(b.add(b.mul(p, c64(nidx)), k), c64(post)), q)
                    upd = round_to(b, mul(fv, cast(load(b, X, xi, x.dtype), x.dtype)), dt)
                    store(b, round_to(b, add(load(b, T, ti, dt), upd), dt), T, ti, dt)
    b.ret_void()
    ptrs = dict(zip(op.roles, operands(m, gl, op)))
    gl.b.call(fn, [ptrs["t"], ptrs["X"], ptrs["indices"], ptrs.get("f", ir.Constant(PTR, None)), gl.status()])



@special("Gather")
def _gather(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    """out[p, k.., q] = x[p, indices[k..], q] (negative indices wrap once; others set the status)."""
    x, idx, y = op.inputs[0], op.inputs[1], op.outputs[0]
    pre, dim, post = split_axis(x.shape, op.attrs.get("axis", 0))
    nidx = idx.spec.nelms
    fn, b = kernel(m, 4)
    X, IDX, Y = typed(b, fn.args[0], x.dtype), typed(b, fn.args[1], idx.dtype), typed(b, fn.args[2], y.dtype)
    with for_range(b, pre, "p") as p:
        with for_range(b, nidx, "k") as k:
            j, ok = _wrap_and_check(b, _index(b, IDX, k, idx.dtype), dim, fn.args[3], m.error_code(op))
            with b.if_then(ok):
                with for_range(b, post, "q") as q:
                    xi = b.add(b.mul(b.add(b.mul(p, c64(dim)), j), c64(post)), q)
                    yi = b.add(b.mul(b.add(b.mul(p, c64(nidx)), k), c64(post)), q)
                    b.store(b.load(b.gep(X, [xi])), b.gep(Y, [yi]))
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.p(idx), gl.p(y), gl.status()])
