"""Nll: PopXL's negative log-likelihood op (ops.nll_loss), one op as PopXL builds it.

    per item: -log(p[label]) (-p[label] when attr log_prob: the input holds log-probabilities), 0 where
    label == ignore_index; reduction 'mean' (over the kept items, at least 1), 'sum' or 'none'.
Computed in float32 (float64 for float64 probs) and rounded once to the dtype of probs. Float labels
truncate toward zero, as a cast to an integer does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import DType, Op, TensorSpec

from .nn import accumulator
from .primitives import cast_array
from .registry import OpDef, OpError, register


def _infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    p, lab = s["probs"], s["labels"]
    if not p.dtype.is_float:
        raise OpError(f"Nll: probs must be a floating-point tensor, got {p}")
    if p.rank < 1 or p.shape[:-1] != lab.shape:
        raise OpError(f"Nll: labels {lab} must have the shape of probs {p} without its last (class) dim")
    red = a.get("reduction", "mean")
    if red not in ("mean", "sum", "none"):
        raise OpError(f"Nll: reduction must be 'mean', 'sum' or 'none', got {red!r}")
    return [TensorSpec(lab.shape if red == "none" else (), p.dtype)]


def _reference(x: dict[str, np.ndarray], a: dict[str, Any], op: Op) -> list[np.ndarray]:
    probs, labels = x["probs"], cast_array(x["labels"], DType.int64)
    p2 = accumulator(probs).reshape(-1, probs.shape[-1])
    l1 = labels.reshape(-1)
    ignore = a.get("ignore_index")
    keep = np.ones_like(l1, dtype=bool) if ignore is None else (l1 != ignore)
    if np.any(keep & ((l1 < 0) | (l1 >= probs.shape[-1]))):
        raise IndexError(f"{op.name!r} ({op.label}): a label is outside [0, number of classes) and is not "
                         "ignore_index")
    picked = p2[np.arange(len(l1)), np.where(keep, l1, 0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(keep, -(picked if a.get("log_prob") else np.log(picked)), 0).astype(p2.dtype)
    red = a.get("reduction", "mean")
    if red == "none":
        return [per.reshape(labels.shape).astype(probs.dtype)]
    total = per.sum(dtype=p2.dtype)
    if red == "mean":
        total = total / p2.dtype.type(max(int(keep.sum()), 1))
    return [np.asarray(total).astype(probs.dtype)]


def _grad(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """dp = -dy_item / p at the label (-dy_item for log-probabilities), 0 elsewhere and for ignored items;
    dy_item is dy ('sum'), dy / count ('mean') or dy's element ('none')."""
    probs, labels = op.inputs
    if not c.needs(probs):
        return [None, None]
    p, lab = c.fwd(probs), c.fwd(labels)
    if lab.dtype.is_float:
        lab = c.one("Cast", {"x": lab}, {"to": DType.int64})
    lab1 = c.one("Reshape", {"x": lab}, {"shape": labels.shape + (1,)})
    hit = c.one("Equal", {"a": lab1, "b": c.const(np.arange(probs.shape[-1]), lab.dtype)})
    ignore, red = op.attrs.get("ignore_index"), op.attrs.get("reduction", "mean")
    keep = None
    if ignore is not None:
        keep = c.one("NotEqual", {"a": lab1, "b": c.const(ignore, lab.dtype)})
        hit = c.one("And", {"a": hit, "b": keep})
    g = dys[0] if red != "none" else c.one("Reshape", {"x": dys[0]}, {"shape": labels.shape + (1,)})
    if red == "mean":
        n = c.const(float(max(labels.spec.nelms, 1)), p.dtype) if keep is None else c.one("Max", {
            "a": c.one("ReduceSum", {"x": c.one("Cast", {"x": keep}, {"to": p.dtype})}, {"axes": None}),
            "b": c.const(1.0, p.dtype)})
        g = c.div(g, n)
    num = g if op.attrs.get("log_prob") else c.div(g, p)
    return [c.where(hit, c.neg(num), c.const(0.0, p.dtype)), None]


register(OpDef(kind="Nll", formula="loss = reduce(-log(p[label])) over items with label != ignore_index",
               infer=_infer, reference=_reference, grad=_grad))
