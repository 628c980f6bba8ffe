"""Non-elementwise tensor ops: matmul, reductions, shape ops, softmax, cross-entropy."""
from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from compiler.ir import DType, Op, TensorSpec

from .primitives import cast_array
from .registry import OpDef, OpError, register
from .rules import same_dtype

A = dict[str, np.ndarray]
S = dict[str, TensorSpec]
D = dict[str, Any]


# ------------------------------------------------------------------ MatMul
def _mm_shapes(s: S, a: D) -> tuple[TensorSpec, TensorSpec]:
    """Operand specs after the optional transposes (attrs transpose_a / transpose_b swap the last two dims)."""
    x, w = s["a"], s["b"]
    for flag, v in (("transpose_a", x), ("transpose_b", w)):
        if a.get(flag) and v.rank < 2:
            raise OpError(f"MatMul: {flag} needs an operand of rank >= 2, got {v}")
    sw = lambda v: TensorSpec(v.shape[:-2] + (v.shape[-1], v.shape[-2]), v.dtype)  # noqa: E731
    return (sw(x) if a.get("transpose_a") else x), (sw(w) if a.get("transpose_b") else w)


def _infer_matmul(s: S, a: D) -> list[TensorSpec]:
    x, w = _mm_shapes(s, a)
    dt = same_dtype("MatMul", s, "a", "b")
    if x.rank == 0 or w.rank == 0:
        raise OpError(f"MatMul: operands must have rank >= 1, got a {x} and b {w}")
    k1 = x.shape[-1]
    k2 = w.shape[0] if w.rank == 1 else w.shape[-2]
    if k1 != k2:
        raise OpError(f"MatMul: contraction dims differ: a {x} has {k1}, b {w} has {k2}")
    out = np.matmul(np.empty(x.shape, np.int8), np.empty(w.shape, np.int8)).shape
    return [TensorSpec(out, dt)]


def accumulator(v: np.ndarray) -> np.ndarray:
    """float16 and bfloat16 data summed in float32, as the cpu backend and poplibs do (a bfloat16
    running sum stops growing at 256 ones: a mean of 20,000 ones would come out 0.0128)."""
    return v.astype(np.float32) if v.dtype == np.float16 or str(v.dtype) == "bfloat16" else v


def _ref_matmul(x: A, a: D, op: Op) -> list[np.ndarray]:
    l, r = x["a"], x["b"]
    if a.get("transpose_a"):
        l = np.swapaxes(l, -1, -2)
    if a.get("transpose_b"):
        r = np.swapaxes(r, -1, -2)
    if l.dtype in (np.float16,) or str(l.dtype) == "bfloat16":  # accumulate in float32, as poplin does
        return [np.matmul(l.astype(np.float32), r.astype(np.float32)).astype(l.dtype)]
    return [np.matmul(l, r)]


def _grad_matmul(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """C = A'B' with A' = op(A), B' = op(B): dA' = dY B'^T, dB' = A'^T dY, as MatMuls with transpose flags
    (no transpose copies), undoing op() on the way back; batch dims broadcast back by summing."""
    (dy,) = dys
    a, b = op.inputs
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise NotImplementedError("the MatMul gradient needs operands of rank >= 2; reshape vectors to (1, n) or "
                                  "(n, 1) matrices before the matmul")
    ta, tb = bool(op.attrs.get("transpose_a")), bool(op.attrs.get("transpose_b"))
    da = db = None
    if c.needs(a):
        fb = c.fwd(b)
        da = (c.one("MatMul", {"a": dy, "b": fb}, {"transpose_b": not tb}) if not ta else
              c.one("MatMul", {"a": fb, "b": dy}, {"transpose_a": tb, "transpose_b": True}))
        da = c.reduce_to(da, a.shape)
    if c.needs(b):
        fa = c.fwd(a)
        db = (c.one("MatMul", {"a": fa, "b": dy}, {"transpose_a": not ta}) if not tb else
              c.one("MatMul", {"a": dy, "b": fa}, {"transpose_a": True, "transpose_b": ta}))
        db = c.reduce_to(db, b.shape)
    return [da, db]


register(OpDef(kind="MatMul", formula="out = op(a) @ op(b), op = transpose of the last two dims when asked",
               infer=_infer_matmul, reference=_ref_matmul, grad=_grad_matmul))


# --------------------------------------------------------------- reductions
def norm_axes(kind: str, rank: int, axes: Any) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    out = []
    for ax in axes:
        if not -rank <= ax < max(rank, 1):
            raise OpError(f"{kind}: axis {ax} is out of range for rank {rank}")
        out.append(ax % rank if rank else 0)
    return tuple(sorted(set(out)))


def _expand(c: Any, op: Op, dy: Any) -> Any:
    """The gradient of a reduction's output broadcast back to the input's shape."""
    x = op.inputs[0]
    axes = norm_axes(op.kind, len(x.shape), op.attrs.get("axes"))
    if not op.attrs.get("keepdims", False):
        dy = c.one("Reshape", {"x": dy}, {"shape": tuple(1 if i in axes else d for i, d in enumerate(x.shape))})
    return c.broadcast_to(dy, x.shape)


def _grad_reduce(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """sum: dx = dy; mean: dy / n; sum of squares: 2x dy; max/min: dy where x equals the result (as PopART,
    every tied element gets the whole gradient)."""
    g = _expand(c, op, dys[0])
    x = op.inputs[0]
    if op.kind == "ReduceMean":
        n = prod(x.shape[a] for a in norm_axes(op.kind, len(x.shape), op.attrs.get("axes")))
        return [c.mul(g, c.const(1.0 / max(n, 1), g.dtype))]
    if op.kind == "ReduceSumSquare":
        return [c.mul(g, c.mul(c.fwd(x), c.const(2.0, g.dtype)))]
    if op.kind in ("ReduceMax", "ReduceMin"):
        hit = c.one("Equal", {"a": c.fwd(x), "b": _expand(c, op, c.fwd(op.outputs[0]))})
        return [c.where(hit, g, c.const(0.0, g.dtype))]
    return [g]


def _reduce(kind: str, fn: Any, formula: str, grad: Any = None, floats: bool = False) -> None:
    """A reduction over attr `axes` (all when None), keeping them as 1s when attr `keepdims`; `fn(acc, axis=,
    keepdims=)` computes it in the accumulator dtype (float32 for float16). floats: float inputs only."""
    def infer(s: S, a: D) -> list[TensorSpec]:
        x = s["x"]
        if floats and not x.dtype.is_float:
            raise OpError(f"{kind}: x must be a floating-point tensor, got {x}")
        axes = norm_axes(kind, x.rank, a.get("axes"))
        if kind in ("ReduceMax", "ReduceMin") and any(i < x.rank and x.shape[i] == 0 for i in axes):
            raise OpError(f"{kind}: the reduced axes {sorted(axes)} of {x} include one of length 0, and a "
                          "max or min of nothing has no value; reduce over non-empty axes")
        keep = bool(a.get("keepdims", False))
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else tuple(
            d for i, d in enumerate(x.shape) if i not in axes)
        return [TensorSpec(shape, x.dtype)]

    def ref(x: A, a: D, op: Op) -> list[np.ndarray]:
        v = x["x"]
        axes = norm_axes(kind, v.ndim, a.get("axes"))
        acc = accumulator(v)
        r = fn(acc, axis=axes, keepdims=bool(a.get("keepdims", False)))
        return [np.asarray(r).astype(v.dtype)]

    register(OpDef(kind=kind, formula=formula, infer=infer, reference=ref, grad=grad or _grad_reduce))


_reduce("ReduceSum", np.sum, "out = sum(x, axes)")
_reduce("ReduceMean", np.mean, "out = mean(x, axes)")
_reduce("ReduceMax", np.max, "out = max(x, axes)")
_reduce("ReduceMin", np.min, "out = min(x, axes)")
_reduce("ReduceSumSquare", lambda v, axis, keepdims: np.sum(v * v, axis=axis, keepdims=keepdims),
        "out = sum(x*x, axes)")


define_reduction = _reduce  # reductions.py adds PopXL's other reductions with it
expand_reduced = _expand


# --------------------------------------------------------------- shape ops
def _infer_reshape(s: S, a: D) -> list[TensorSpec]:
    x = s["x"]
    shape = list(a["shape"])
    if shape.count(-1) > 1:
        raise OpError(f"Reshape shape can contain at most one '-1' value, got {tuple(shape)}")
    if any(d < -1 for d in shape):
        raise OpError(f"Invalid shape value in reshape: {tuple(shape)} (dims must be >= 0, or -1 once)")
    if -1 in shape:
        rest = prod(d for d in shape if d != -1)
        if rest == 0:  # -1 next to a 0: no size gives the element count (PopXL's wording)
            raise OpError(f"Invalid shape value in reshape: {tuple(shape)}: -1 cannot be inferred next to a 0 "
                          f"(reshaping {x})")
        if x.nelms % rest:
            raise OpError(f"Reshape: cannot reshape {x} to {tuple(shape)}")
        shape[shape.index(-1)] = x.nelms // rest
    if prod(shape) != x.nelms:
        raise OpError(f"Reshape: cannot reshape {x} ({x.nelms} elements) to {tuple(shape)} ({prod(shape)} elements)")
    return [TensorSpec(tuple(shape), x.dtype)]


register(OpDef(kind="Reshape", formula="out = reshape(x, shape)", infer=_infer_reshape,
               reference=lambda x, a, op: [x["x"].reshape(op.outputs[0].shape).copy()],
               grad=lambda c, op, dys: [c.one("Reshape", {"x": dys[0]}, {"shape": op.inputs[0].shape})]))


def _perm(s: S, a: D) -> tuple[int, ...]:
    r = s["x"].rank
    p = tuple(a["perm"]) if a.get("perm") is not None else tuple(reversed(range(r)))
    if sorted(p) != list(range(r)):
        raise OpError(f"Transpose: permutation {p} is not a permutation of the {r} axes of {s['x']}. Values in "
                      f"permutation must be less than the rank {r} and appear once")
    return p


def _infer_transpose(s: S, a: D) -> list[TensorSpec]:
    p = _perm(s, a)
    return [TensorSpec(tuple(s["x"].shape[i] for i in p), s["x"].dtype)]


def _grad_transpose(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    p = _perm({"x": op.inputs[0].spec}, op.attrs)
    return [c.one("Transpose", {"x": dys[0]}, {"perm": tuple(p.index(i) for i in range(len(p)))})]


register(OpDef(kind="Transpose", formula="out = transpose(x, perm)", infer=_infer_transpose, grad=_grad_transpose,
               reference=lambda x, a, op: [np.array(np.transpose(x["x"], _perm({"x": op.inputs[0].spec}, a)), order="C")]))


# ------------------------------------------------------------------ softmax
def _infer_softmax(s: S, a: D) -> list[TensorSpec]:
    norm_axes("Softmax", s["x"].rank, a.get("axis", -1))
    return [s["x"]]


def softmax_ref(v: np.ndarray, axis: int) -> np.ndarray:
    acc = accumulator(v)
    m = np.max(acc, axis=axis, keepdims=True)
    ex = np.exp(acc - m)
    return (ex / np.sum(ex, axis=axis, keepdims=True)).astype(v.dtype)


def _grad_softmax(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """dx = y * (dy - sum(dy * y, axis))."""
    (dy,) = dys
    y = c.fwd(op.outputs[0])
    s = c.one("ReduceSum", {"x": c.mul(dy, y)}, {"axes": (op.attrs.get("axis", -1),), "keepdims": True})
    return [c.mul(y, c.sub(dy, s))]


register(OpDef(kind="Softmax", formula="out = exp(x - max) / sum(exp(x - max)) along axis", grad=_grad_softmax,
               infer=_infer_softmax, reference=lambda x, a, op: [softmax_ref(x["x"], a.get("axis", -1))]))


# --------------------------------------------------------- cross-entropy
def _infer_nll(s: S, a: D) -> list[TensorSpec]:
    p, lab = s["probs"], s["labels"]
    if p.shape[:-1] != lab.shape:
        raise OpError(f"NllLoss: labels {lab} must have the shape of probs {p} without its last (class) dim")
    red = a.get("reduction", "mean")
    if red not in ("mean", "sum", "none"):
        raise OpError(f"NllLoss: reduction must be 'mean', 'sum' or 'none', got {red!r}")
    loss = TensorSpec(lab.shape if red == "none" else (), p.dtype)
    return [loss, p]


def _ref_nll(x: A, a: D, op: Op) -> list[np.ndarray]:
    probs, labels = x["probs"], cast_array(x["labels"], DType.int64)  # float labels truncate, as PopXL takes them
    dt = probs.dtype
    p2 = probs.reshape(-1, probs.shape[-1]).astype(np.float32)
    l1 = labels.reshape(-1)
    ignore = a.get("ignore_index")
    keep = np.ones_like(l1, dtype=bool) if ignore is None else (l1 != ignore)
    if np.any(keep & ((l1 < 0) | (l1 >= probs.shape[-1]))):  # uint64 labels >= 2**63 are negative here
        raise IndexError(f"{op.name!r} ({op.label}): a label is outside [0, number of classes) and is not "
                         "ignore_index")
    safe = np.where(keep, l1, 0)
    red = a.get("reduction", "mean")
    n = max(int(keep.sum()), 1) if red == "mean" else 1
    scale = float(x["loss_grad"]) if "loss_grad" in x else float(a.get("loss_grad", 1.0))
    picked = p2[np.arange(len(l1)), safe]
    per = np.where(keep, -np.log(picked + np.float32(1e-7)), 0).astype(np.float32)
    loss = per.reshape(labels.shape) if red == "none" else np.asarray(per.sum() / n, np.float32)
    onehot = np.zeros_like(p2)
    onehot[np.arange(len(l1)), safe] = 1.0
    dx = (p2 - onehot) * np.float32(scale / n)
    dx[~keep] = 0
    return [np.asarray(loss).astype(dt), dx.reshape(probs.shape).astype(dt)]


register(OpDef(
    kind="NlllWithSoftmaxGradDirect",
    formula="loss = -mean(log(p[label] + 1e-7)); dx = (p - onehot(label)) * loss_grad / N",
    infer=_infer_nll, reference=_ref_nll,
))
