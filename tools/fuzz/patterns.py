"""Fuzz steps shaped for particular passes (enabled by `random_program(..., patterns=True)`):

- "dup":        the same expression built twice               (cse finds one)
- "const":      arithmetic on a constant only                 (constant_fold evaluates it)
- "scaled_neg": scaled_add_ with b = -lr, lr*-1, (-0.0)-lr,   (fold_neg_into_scaled_add)
                0.0-lr or a constant

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

WEIGHTS = {"dup": 4, "const": 2, "scaled_neg": 5}
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
    p = gen.pick(b, lambda e: gen.can_update(e) and e.t.dtype.is_float)
    if p is None:
        return False
    i, t = p
    j, _ = gen.pick(b, lambda e: e.t.shape == t.t.shape and e.t.dtype.is_float)  # t itself qualifies
    h = gen.pick(b, lambda e: e.kind == "hyper" and e.bound <= 1.0)
    if h is None:
        return False
    return gen._apply(b, {"op": "scaled_neg", "form": gen.rng.choice(SCALE_FORMS), "in": [i, j, h[0]]})


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
