"""Data movement: Slice, Concat, Gather, and PopXL's in-place (view) variants of shape ops.

PopXL's `*Inplace` view ops (SliceInplace, TransposeInplace, ReshapeInplace, ConcatInplace,
DetachInplace) return a tensor that aliases its input. Here they compute the same values as their
out-of-place kinds; the front end refuses a later in-place write through either side of such a view
(popxl/ops/views.py), so no program can observe the difference.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import Op, TensorSpec

from .registry import OPS, OpDef, OpError, register

S = dict[str, TensorSpec]
# the data-movement kinds of this family (plus the in-place view variants) that only the LLVM backend and
# the interpreter run; the IPU emitters refuse them by this list
KINDS = ("Concat", "ConcatInplace", "Gather", "ReshapeInplace", "Slice", "SliceGrad", "SliceInplace",
         "TransposeInplace")
D = dict[str, Any]


# ------------------------------------------------------------------- Slice
def slice_dims(shape: tuple[int, ...], a: D) -> list[tuple[int, int, int]]:
    """(start, stop, step) per dim, normalised as Python's slice.indices does; attrs hold `starts`,
    `stops`, `steps` (None = open) and `axes`."""
    out = [(0, d, 1) for d in shape]
    starts, stops, steps, axes = a["starts"], a["stops"], a["steps"], a["axes"]
    for st, sp, step, ax in zip(starts, stops, steps, axes):
        if not -len(shape) <= ax < len(shape):
            raise OpError(f"Slice: axis {ax} is out of range for shape {shape}")
        if step == 0:
            raise OpError("Slice: step must not be 0")
        ax %= len(shape)
        out[ax] = slice(st, sp, step).indices(shape[ax])
    return out


def _py_slices(dims: list[tuple[int, int, int]]) -> tuple[slice, ...]:
    """numpy slices for normalised (start, stop, step): a backward slice to the start has stop -1,
    which numpy would read as the last element, so it becomes None."""
    return tuple(slice(a, None if b < 0 else b, c) for a, b, c in dims)


def _infer_slice(s: S, a: D) -> list[TensorSpec]:
    x = s["x"]
    dims = slice_dims(x.shape, a)
    return [TensorSpec(tuple(len(range(*d)) for d in dims), x.dtype)]


def _ref_slice(x: dict[str, np.ndarray], a: D, op: Op) -> list[np.ndarray]:
    v = x["x"]
    return [np.array(v[_py_slices(slice_dims(v.shape, a))], order="C")]


def _grad_slice(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    """dx = zeros with dy written at the sliced positions (SliceGrad)."""
    return [c.one("SliceGrad", {"dy": dys[0]}, {**op.attrs, "in_shape": op.inputs[0].shape})]


def _infer_slice_grad(s: S, a: D) -> list[TensorSpec]:
    return [TensorSpec(tuple(a["in_shape"]), s["dy"].dtype)]


def _ref_slice_grad(x: dict[str, np.ndarray], a: D, op: Op) -> list[np.ndarray]:
    out = np.zeros(a["in_shape"], x["dy"].dtype)
    out[_py_slices(slice_dims(tuple(a["in_shape"]), a))] = x["dy"]
    return [out]


for _k in ("Slice", "SliceInplace"):
    register(OpDef(kind=_k, formula="out = x[start:stop:step] per axis", infer=_infer_slice,
                   reference=_ref_slice, grad=_grad_slice))
register(OpDef(kind="SliceGrad", formula="dx = zeros(in_shape); dx[slices] = dy", infer=_infer_slice_grad,
               reference=_ref_slice_grad))


# ------------------------------------------------------------------ Concat
def _concat_inputs(s: S) -> list[TensorSpec]:
    return [s[k] for k in sorted(s, key=lambda r: int(r[2:]))]


def _infer_concat(s: S, a: D) -> list[TensorSpec]:
    xs = _concat_inputs(s)
    if not xs:
        raise OpError("Concat: needs at least one tensor")
    r = xs[0].rank
    if r == 0:
        raise OpError("Concat: cannot concatenate scalars; reshape them to (1,) first")
    ax = a["axis"]
    if not -r <= ax < r:
        raise OpError(f"Concat: axis {ax} is out of range for rank {r}")
    ax %= r
    for x in xs:
        if x.dtype != xs[0].dtype or x.rank != r or any(x.shape[i] != xs[0].shape[i] for i in range(r) if i != ax):
            raise OpError(f"Concat: {x} does not match {xs[0]} outside axis {ax} (dtype and other dims must agree)")
    shape = list(xs[0].shape)
    shape[ax] = sum(x.shape[ax] for x in xs)
    return [TensorSpec(tuple(shape), xs[0].dtype)]


def _ref_concat(x: dict[str, np.ndarray], a: D, op: Op) -> list[np.ndarray]:
    return [np.concatenate([x[k] for k in sorted(x, key=lambda r: int(r[2:]))], axis=a["axis"])]


def _grad_concat(c: Any, op: Op, dys: list[Any]) -> list[Any]:
    ax = op.attrs["axis"] % len(op.outputs[0].shape)
    out, start = [], 0
    for v in op.inputs:
        n = v.shape[ax]
        out.append(c.one("Slice", {"x": dys[0]}, {"starts": (start,), "stops": (start + n,), "steps": (1,),
                                                   "axes": (ax,)}) if c.needs(v) else None)
        start += n
    return out


for _k in ("Concat", "ConcatInplace"):
    register(OpDef(kind=_k, formula="out = concatenate(xs, axis)", infer=_infer_concat, reference=_ref_concat,
                   grad=_grad_concat))


# ------------------------------------------------------------------ Gather
def _infer_gather(s: S, a: D) -> list[TensorSpec]:
    x, idx = s["x"], s["indices"]
    if not idx.dtype.is_int:
        raise OpError(f"Gather: indices must be an integer tensor, got {idx}")
    ax = a["axis"]
    if not -x.rank <= ax < x.rank:
        raise OpError(f"Gather: axis {ax} is out of range for {x}")
    ax %= x.rank
    return [TensorSpec(x.shape[:ax] + idx.shape + x.shape[ax + 1:], x.dtype)]


def _ref_gather(x: dict[str, np.ndarray], a: D, op: Op) -> list[np.ndarray]:
    v, idx = x["x"], x["indices"]
    ax = a["axis"] % v.ndim
    if np.any((idx < -v.shape[ax]) | (idx >= v.shape[ax])):
        raise IndexError(f"Gather: an index is out of range for axis {ax} of size {v.shape[ax]}")
    return [np.take(v, idx, axis=ax)]


register(OpDef(kind="Gather", formula="out = take(x, indices, axis)", infer=_infer_gather, reference=_ref_gather))


# --------------------------------------------------- in-place shape views
def _same_def(kind: str, base: str) -> None:
    b = OPS[base]
    register(OpDef(kind=kind, formula=b.formula + " (PopXL view; computed as a copy here)", infer=b.infer,
                   reference=b.reference, grad=b.grad, decompose=b.decompose, elementwise=b.elementwise))


def register_views() -> None:
    """Called after nn/elementwise registered the base kinds."""
    for kind, base in (("TransposeInplace", "Transpose"), ("ReshapeInplace", "Reshape")):
        _same_def(kind, base)
    d = OPS["Identity"]
    register(OpDef(kind="Detach", formula="out = x; no gradient flows back", infer=d.infer,
                   decompose=d.decompose, elementwise=True, grad=lambda c, op, dys: [None]))
    register(OpDef(kind="DetachInplace", formula="out = x; no gradient flows back (PopXL view; a copy here)",
                   infer=d.infer, decompose=d.decompose, elementwise=True, grad=lambda c, op, dys: [None]))

