"""In-place var-update ops with PopART's exact formulas (see shared/reference/popxl_semantics.md).

Updates happen in the updated tensor's dtype: inputs are cast to it first.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import DType, Op, TensorSpec

from .primitives import Expr, Prim
from .registry import OpDef, OpError, register
from .rules import f32, float_only, hyper, numeric_only, same_shape, scalar

ACCUMULATION_TYPES = ("Add", "DampenedAdd", "DampenedAddSquare", "Mean", "MovingAverage", "MovingAverageSquare")


def _infer_accumulate(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    kind = f"Accumulate({a['type']})"
    if a["type"] not in ACCUMULATION_TYPES:
        raise OpError(f"{kind}: unknown accumulation type; use one of {ACCUMULATION_TYPES}")
    same_shape(kind, s, "t", "X")
    numeric_only(kind, s, "t")  # PopXL builds integer accumulators too
    for r in ("f", "step"):
        scalar(kind, s, r)
    if a["type"] == "DampenedAdd" and "f" not in s and float(a.get("f", 1.0)) == 0.0:
        raise OpError("accumulate_: a constant factor f=0.0 is rejected by PopART (internal error at lowering); "
                      "use accumulator_zero_ to clear a tensor")
    return [s["t"]]


def _decompose_accumulate(e: Expr, n: dict[str, int], s: dict[str, TensorSpec], a: dict[str, Any]) -> list[int]:
    dt = s["t"].dtype
    t, x = n["t"], e.cast(n["X"], dt)
    typ = a["type"]
    if typ == "Add":
        return [e.add(t, x)]
    if typ == "DampenedAdd":
        return [e.add(t, e.mul(hyper(e, n, a, "f", dt), x))]
    if typ == "DampenedAddSquare":
        return [e.add(t, e.mul(e.mul(hyper(e, n, a, "f", dt), x), x))]
    if typ == "Mean":
        st = e.cast(n["step"], DType.float32)
        b32 = e.div(e.const(1.0, DType.float32), e.add(st, e.const(1.0, DType.float32)))
        b = e.cast(b32, dt)
        a_ = e.cast(e.sub(e.const(1.0, DType.float32), b32), dt)
        return [e.add(e.mul(a_, t), e.mul(b, x))]
    # moving averages: t = f*t + (1-f)*x [*x]
    if "f" in n:
        f = e.cast(n["f"], dt)
        one_minus_f = e.sub(e.c(1.0, f), f)
    else:
        f = e.const(f32(a["f"]), dt)
        one_minus_f = e.const(f32(f32(1.0) - f32(a["f"])), dt)  # formed on the host in float32
    upd = e.mul(one_minus_f, x)
    if typ == "MovingAverageSquare":
        upd = e.mul(upd, x)
    return [e.add(e.mul(f, t), upd)]


register(OpDef(
    kind="Accumulate",
    formula="t <- t + f*X | f*t + (1-f)*X | ... (attr type), in place on t, in t's dtype",
    infer=_infer_accumulate, modifies=("t",), aliases={0: "t"},
    decompose=_decompose_accumulate, elementwise=True, pure=False,
))


def _infer_scale(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    scalar("AccumulatorScale", s, "f")
    return [s["t"]]


def _decompose_scale(e: Expr, n: dict[str, int], s: dict[str, TensorSpec], a: dict[str, Any]) -> list[int]:
    dt = s["t"].dtype
    if "f" not in n and float(a["f"]) == 0.0:
        return [e.const(0, dt)]  # popops::zero: clears NaN and Inf too
    return [e.mul(n["t"], hyper(e, n, a, "f", dt))]


register(OpDef(
    kind="AccumulatorScale", formula="t <- f*t, in place on t (f == 0 zeroes t)",
    infer=_infer_scale, modifies=("t",), aliases={0: "t"}, decompose=_decompose_scale,
    elementwise=True, pure=False,
))


def _infer_copy(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    if s["t"] != s["X"]:
        raise OpError(f"CopyVarUpdate: t {s['t']} and X {s['X']} must have the same shape and dtype")
    return [s["t"]]


register(OpDef(
    kind="CopyVarUpdate", formula="t <- X, in place on t",
    infer=_infer_copy, modifies=("t",), aliases={0: "t"},
    decompose=lambda e, n, s, a: [n["X"]], elementwise=True, pure=False,
))

# ------------------------------------------------------------------ AdamUpdater
ADAM_MODES = ("Adam", "AdamNoBias", "Lamb", "LambNoBias", "AdaMax")
ADAM_ROLES = ("weight", "m", "v", "step", "wd", "b1", "b2", "eps")


def _infer_adam(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    if a["mode"] not in ADAM_MODES:
        raise OpError(f"AdamUpdater: unknown mode {a['mode']!r}; use one of {ADAM_MODES}")
    same_shape("AdamUpdater", s, "m", "v")
    if "weight" in s:
        same_shape("AdamUpdater", s, "weight", "m")
    numeric_only("AdamUpdater", s, "m", "v", "weight")
    for r in ("step", "wd", "b1", "b2", "eps"):
        scalar("AdamUpdater", s, r)
    elem = s["weight"] if "weight" in s else s["m"]
    return [TensorSpec(s["m"].shape, elem.dtype)]


def _decompose_adam(e: Expr, n: dict[str, int], s: dict[str, TensorSpec], a: dict[str, Any]) -> list[int]:
    mode = a["mode"]
    mdt, vdt = s["m"].dtype, s["v"].dtype
    elem = s["weight"].dtype if "weight" in s else mdt
    f = DType.float32
    new_step = None
    if mode in ("Adam", "Lamb", "AdaMax"):
        sdt = s["step"].dtype
        new_step = e.add(n["step"], e.const(1, sdt))  # incremented in place before use
        t = e.cast(new_step, f)
        one = e.const(1.0, f)
        b1c = e.cast(e.sub(one, e.pow(hyper(e, n, a, "b1", f), t)), mdt)
        mhat = e.div(n["m"], b1c)
        if mode == "AdaMax":
            vhat = n["v"]
        else:
            b2c = e.cast(e.sub(one, e.pow(hyper(e, n, a, "b2", f), t)), vdt)
            vhat = e.sqrt(e.div(n["v"], b2c))
    else:
        mhat, vhat = n["m"], e.sqrt(n["v"])
    x = e.div(e.cast(mhat, vdt), e.add(vhat, hyper(e, n, a, "eps", vdt)))
    if "weight" in n:
        x = e.add(e.cast(x, elem), e.mul(hyper(e, n, a, "wd", elem), e.cast(n["weight"], elem)))
    outs = [e.cast(x, elem)]
    if new_step is not None:
        outs.append(new_step)
    return outs


register(OpDef(
    kind="AdamUpdater",
    formula="step += 1; x = (m/(1-b1^step)) / (sqrt(v/(1-b2^step)) + eps) + wd*w (step in place)",
    infer=_infer_adam, modifies=("step",), decompose=_decompose_adam, elementwise=True, pure=False,
))

# ------------------------------------------------------------------ ScaledAdd


def _check_scales(kind: str, s: dict[str, TensorSpec], a: dict[str, Any]) -> None:
    if "a" in s and "b" not in s:
        raise OpError(f"{kind}: Unsupported tensor scale0 with non-tensor scale1. "
                      "Pass b as a Tensor too (e.g. popxl.constant(b))")
    if "b" in s and "a" not in s and float(a.get("a", 1.0)) != 1.0:
        raise OpError(f"{kind}: Unsupported scale0 {a['a']} with tensor scale1. Pass a as a Tensor too, or use a=1.0")


def _infer_scaled_add(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    kind = a.get("_kind", "ScaledAdd")
    _check_scales(kind, s, a)
    float_only(kind, s, "X", "Y")
    same_shape(kind, s, "X", "Y")
    scalar(kind, s, "a")
    scalar(kind, s, "b")
    return [s["X"]]


def _decompose_scaled_add(e: Expr, n: dict[str, int], s: dict[str, TensorSpec], a: dict[str, Any]) -> list[int]:
    dt = s["X"].dtype
    x, y = n["X"], e.cast(n["Y"], dt)
    if "a" in n or float(a.get("a", 1.0)) != 1.0:
        x = e.mul(hyper(e, n, a, "a", dt), x)
    if "b" in n or float(a.get("b", 1.0)) != 1.0:
        y = e.mul(hyper(e, n, a, "b", dt), y)
    if a.get("negate_b"):  # set by the fold_neg_into_scaled_add pass: X - b*Y
        return [e.sub(x, y)]
    return [e.add(x, y)]


def _grad_scaled_add(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """dX = a*dy, dY = +-b*dy (cast to Y's dtype); Tensor scales get no gradient."""
    (dy,) = dys
    ins = dict(zip(op.roles, op.inputs))

    def scale(k: str) -> Any:
        if k in ins:
            f = c.fwd(ins[k])
            return f if f.dtype == dy.dtype else c.one("Cast", {"x": f}, {"to": dy.dtype})
        return c.const(float(op.attrs.get(k, 1.0)), dy.dtype)

    out: list[Any] = []
    for r, v in zip(op.roles, op.inputs):
        if r not in ("X", "Y") or not c.needs(v):
            out.append(None)
            continue
        g = c.mul(dy, scale("a" if r == "X" else "b"))
        if r == "Y" and op.attrs.get("negate_b"):
            g = c.neg(g)
        out.append(g if g.dtype == v.dtype else c.one("Cast", {"x": g}, {"to": v.dtype}))
    return out


register(OpDef(
    kind="ScaledAdd", formula="out = a*X + b*Y",
    infer=_infer_scaled_add, decompose=_decompose_scaled_add, elementwise=True, grad=_grad_scaled_add,
))
register(OpDef(
    kind="ScaledAddLhsInplace", formula="X <- a*X + b*Y, in place on X",
    infer=lambda s, a: _infer_scaled_add(s, {**a, "_kind": "scaled_add_"}), modifies=("X",), aliases={0: "X"},
    decompose=_decompose_scaled_add, elementwise=True, pure=False,
))

# ------------------------------------------------------------ LAMB pieces


def _infer_adam_var_update(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    same_shape("AdamVarUpdate", s, "t", "x")
    for r in ("r1", "r2", "lr", "mwn"):
        scalar("AdamVarUpdate", s, r)
    for r in ("lr", "mwn"):
        if r not in s and a.get(r) is None:
            raise OpError(f"AdamVarUpdate: {r} needs a constant attribute or a tensor input")
    return [s["t"]]


def _decompose_adam_var_update(e: Expr, n: dict[str, int], s: dict[str, TensorSpec], a: dict[str, Any]) -> list[int]:
    f = DType.float32
    dt = s["t"].dtype
    r1 = e.sqrt(e.cast(n["r1"], f))
    r2 = e.sqrt(e.cast(n["r2"], f))
    mwn = hyper(e, n, a, "mwn", f)
    zero = e.const(0.0, f)
    ratio = e.div(e.min(r1, mwn), r2)
    degenerate = e.compare(Prim.eq, r1, zero)
    degenerate2 = e.compare(Prim.eq, r2, zero)
    one = e.const(1.0, f)
    ratio = e.select(degenerate, one, e.select(degenerate2, one, ratio))
    if "mwn" in n:  # a Tensor max-weight-norm of 0 disables the trust ratio
        ratio = e.select(e.compare(Prim.eq, mwn, zero), one, ratio)
    step = e.cast(e.mul(hyper(e, n, a, "lr", f), ratio), dt)
    return [e.sub(n["t"], e.mul(step, e.cast(n["x"], dt)))]


register(OpDef(
    kind="AdamVarUpdate",
    formula="t <- t - lr * (min(sqrt(r1), mwn) / sqrt(r2)) * x (ratio 1 if r1 or r2 is 0), in place on t",
    infer=_infer_adam_var_update, modifies=("t",), aliases={0: "t"},
    decompose=_decompose_adam_var_update, elementwise=True, pure=False,
))


def _infer_lamb_square(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    if "x" not in s:
        raise OpError(f"LambSquare reads one input named x, got {sorted(s)}")
    numeric_only("LambSquare", s, "x")
    return [TensorSpec((), DType.float32)]


register(OpDef(
    kind="LambSquare", formula="out = sum(x*x) in float32",
    infer=_infer_lamb_square,
    reference=lambda x, a, op: [np.asarray(np.sum(np.square(x["x"].astype(np.float32)), dtype=np.float32))],
))


def _infer_sparse_acc(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    t, x, idx = s["t"], s["X"], s["indices"]
    axis = a.get("axis", 0)
    if idx.dtype.is_float or idx.rank != 1:
        raise OpError(f"sparse_accumulate_: indices must be a 1-d integer tensor, got {idx}")
    if not 0 <= axis < t.rank or x.rank != t.rank or x.shape[axis] != idx.shape[0] or any(
            x.shape[d] != t.shape[d] for d in range(t.rank) if d != axis):
        raise OpError(f"sparse_accumulate_: X {x} must match t {t} except along axis {axis}, where it has "
                      f"len(indices) = {idx.shape[0]} rows")
    scalar("sparse_accumulate_", s, "f")
    return [t]


def _ref_sparse_acc(x: dict[str, np.ndarray], a: dict[str, Any], op: Any) -> list[np.ndarray]:
    t = x["t"].copy()
    f = x["f"] if "f" in x else np.asarray(a.get("f", 1.0), np.float32)
    upd = (np.asarray(f).astype(t.dtype) * x["X"].astype(t.dtype)).astype(t.dtype)
    idx = x["indices"].astype(np.int64)
    axis = a.get("axis", 0)
    moved = np.moveaxis(t, axis, 0)
    if np.any((idx < -moved.shape[0]) | (idx >= moved.shape[0])):
        raise IndexError(f"{op.name!r} ({op.label}): an index is outside [-n, n) for the accumulated axis of "
                         f"length n = {moved.shape[0]}")
    np.add.at(moved, idx, np.moveaxis(upd, axis, 0))  # duplicates accumulate
    return [t]


register(OpDef(
    kind="PopartSparseAccumulate", formula="t[.., indices[i], ..] += f * X[.., i, ..] along axis, in place on t",
    infer=_infer_sparse_acc, modifies=("t",), aliases={0: "t"}, reference=_ref_sparse_acc, pure=False,
))
