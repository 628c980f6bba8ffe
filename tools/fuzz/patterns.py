"""Fuzz steps shaped for particular passes (enabled by `random_program(..., patterns=True)`):

- "dup":        the same expression built twice               (cse finds one)
- "const":      arithmetic on a constant only                 (constant_fold evaluates it)
- "scaled_neg": scaled_add_ with b = -lr, lr*-1, (-0.0)-lr,   (fold_neg_into_scaled_add)
                0.0-lr or a constant
- "prologue":   tanh(x) * 0.5 and/or y * 0.5 as the operands   (fuse_matmul_prologue)
                of a matmul (2-d, batched with broadcast batch dims,
                or 1-d operands), transpose attributes random

The generator side (which operands) and the build side (what ops) of each are here, so a recipe
replays without the generator.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from compiler import popxl
from compiler.popxl import ops

from .program import Builder, Entry
from .steps import _set, handler

if TYPE_CHECKING:
    from .generate import Generator

WEIGHTS = {"dup": 4, "const": 2, "scaled_neg": 5, "prologue": 8}
SCALE_FORMS = ("neg", "mul", "subz", "subp", "const")


def _scale(form: str, lr: Any) -> Any:
    if form == "neg":
        return -lr
    if form == "mul":
        return lr * -1.0
    if form in ("subz", "subp"):
        return popxl.constant(np.asarray(-0.0 if form == "subz" else 0.0, lr.dtype.numpy)) - lr
    return popxl.constant(np.asarray(0.25, lr.dtype.numpy))


# ---------------------------------------------------------------- generator side
def dup_step(gen: "Generator", b: Builder) -> dict | bool:
    p = gen.pick(b, lambda e: e.t.dtype.is_float)
    if p is None:
        return False
    return gen._apply(b, {"op": "dup", "in": [p[0]], "out": [gen.new_id(), gen.new_id()]})


def const_step(gen: "Generator", b: Builder) -> dict | bool:
    return gen._apply(b, {"op": "const", "c": gen.rng.choice([0.5, -2.0, 3.0]), "dtype": gen.rng.choice(gen.dtypes),
                          "shape": list(gen.rng.choice(gen.family)), "out": gen.new_id()})


def scaled_neg_step(gen: "Generator", b: Builder) -> dict | bool:
    # tanh(x) is inexact: only a tensor already compared within a tolerance may take it (an exact one is
    # read bit for bit, also by steps before this update in the next run)
    p = gen.pick(b, lambda e: gen.can_update(e) and e.t.dtype.is_float and not e.exact)
    if p is None:
        return False
    i, t = p
    j, _ = gen.pick(b, lambda e: e.t.shape == t.t.shape and e.t.dtype.is_float)  # t itself qualifies
    h = gen.pick(b, lambda e: e.kind == "hyper" and e.bound <= 1.0)
    if h is None:
        return False
    return gen._apply(b, {"op": "scaled_neg", "form": gen.rng.choice(SCALE_FORMS), "in": [i, j, h[0]]})


def _contracts(xs: tuple[int, ...], ys: tuple[int, ...], ta: bool, tb: bool) -> bool:
    """op(x) @ op(y) is a valid matmul of at most 1M result elements (1-d operands take no transpose;
    batch dims broadcast)."""
    if (ta and len(xs) < 2) or (tb and len(ys) < 2):
        return False
    k = xs[-2] if ta else xs[-1]
    ky = ys[0] if len(ys) == 1 else ys[-1] if tb else ys[-2]
    try:
        batch = np.broadcast_shapes(xs[:-2], ys[:-2])
    except ValueError:
        return False
    m = 1 if len(xs) == 1 else xs[-1] if ta else xs[-2]
    n = 1 if len(ys) == 1 else ys[-2] if tb else ys[-1]
    return k == ky and int(np.prod(batch)) * m * n <= 1 << 20


def prologue_step(gen: "Generator", b: Builder) -> dict | bool:
    r = gen.rng
    low = 1 if r.random() < 0.25 else 2  # vectors abound in the families: a dot product now and then
    p = gen.pick(b, lambda e: e.t.rank >= low and e.t.dtype.is_float and e.t.nelms <= 50_000)
    if p is None:
        return False
    i, x = p
    ta, tb = r.random() < 0.5 and x.t.rank >= 2, r.random() < 0.5
    k = x.t.shape[-2] if ta else x.t.shape[-1]
    q = gen.pick(b, lambda e: e.t.rank >= 1 and e.t.dtype == x.t.dtype and e.t.nelms <= 50_000
                 and _contracts(x.t.shape, e.t.shape, ta, tb))
    if q is None:
        return False
    j, y = q
    on = r.choice(["a", "b", "ab"])
    bound = k * (0.5 if "a" in on else x.bound) * (0.5 * y.bound if "b" in on else y.bound)
    step = {"op": "prologue", "on": on, "ta": ta, "tb": tb, "in": [i, j]}
    return gen._apply(b, gen._out(step, bound, True))


# ---------------------------------------------------------------- build side
@handler("dup")
def _dup(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    for out in s["out"]:
        t, tol = b.traced(lambda: ops.exp(ops.tanh(a.t)), a.tol)
        _set(b, {"out": out}, t, tol, float(np.e))


@handler("const")
def _const(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    dt = np.dtype(s["dtype"])
    c = popxl.constant(np.full(tuple(s["shape"]), s["c"]).astype(dt), dt)
    k = 2.0 if dt.kind == "f" else 2
    t, tol = b.traced(lambda: c * k + k)
    _set(b, s, t, tol, 2 * abs(s["c"]) + 2)


@handler("scaled_neg")
def _scaled_neg(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    t, x, lr = ins
    _, tol = b.traced(lambda: ops.scaled_add_(t.t, ops.tanh(x.t), b=_scale(s["form"], lr.t)), t.tol, x.tol, lr.tol)
    t.tol = max(t.tol, tol)
    t.bound += 1.0
    t.updates += 1


@handler("prologue")
def _prologue(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    from compiler.popxl.ops._emit import emit_op, out

    x, y = ins

    def fn() -> Any:
        a = ops.tanh(x.t) * 0.5 if "a" in s["on"] else x.t
        w = y.t * 0.5 if "b" in s["on"] else y.t
        return out(emit_op("MatMul", {"a": a, "b": w}, {"transpose_a": s["ta"], "transpose_b": s["tb"]}))
    t, tol = b.traced(fn, x.tol, y.tol)
    k = x.t.shape[-2] if s["ta"] else x.t.shape[-1]
    _set(b, s, t, tol, k * (0.5 if "a" in s["on"] else x.bound) * (0.5 * y.bound if "b" in s["on"] else y.bound))
