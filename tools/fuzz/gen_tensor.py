"""Random tensor-op steps: reductions, matmuls, reshapes, transposes, softmax (see steps.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .program import Builder

if TYPE_CHECKING:
    from .generate import Generator


def reduce(gen: "Generator", b: Builder) -> dict | bool:
    p = gen.pick(b, lambda e: e.t.rank >= 1 and (e.t.dtype.is_float or e.t.dtype.name == "int32"))
    if p is None:
        return False
    i, e = p
    fns = ["sum", "mean", "max", "min", "sumsquare"] if e.t.dtype.is_float else ["sum", "max", "min"]
    fn = gen.rng.choice(fns)
    r = gen.rng.random()
    axes = None if r < 0.3 else sorted(gen.rng.sample(range(e.t.rank), gen.rng.randint(1, e.t.rank)))
    n = int(np.prod([e.t.shape[a] for a in (axes if axes is not None else range(e.t.rank))]))
    bound = {"sum": n * e.bound, "sumsquare": n * e.bound ** 2}.get(fn, e.bound)
    step = {"op": "reduce", "fn": fn, "axes": axes, "keepdims": gen.rng.random() < 0.3, "in": [i]}
    return gen._apply(b, gen._out(step, bound, e.t.dtype.is_float))


def matmul(gen: "Generator", b: Builder) -> dict | bool:
    p = gen.pick(b, lambda e: e.t.rank >= 2 and e.t.dtype.is_float and e.t.nelms <= 50_000)
    if p is None:
        return False
    i, x = p
    form = gen.rng.choice(["abT", "aTb", "vec"])
    if form == "vec":
        q = gen.pick(b, lambda e: e.t.shape == (x.t.shape[-1],) and e.t.dtype.is_float)
    else:
        q = gen.pick(b, lambda e: e.t.shape == x.t.shape and e.t.dtype.is_float)
    if q is None:
        return False
    j, y = q
    k = x.t.shape[-2] if form == "aTb" else x.t.shape[-1]
    return gen._apply(b, gen._out({"op": "matmul", "form": form, "in": [i, j]}, k * x.bound * y.bound, True))


def reshape(gen: "Generator", b: Builder) -> dict | bool:
    p = gen.pick(b, lambda e: e.t.rank >= 1)
    if p is None:
        return False
    i, e = p
    shape = [-1] if e.t.rank > 1 or gen.rng.random() < 0.5 else [1, e.t.shape[0]]
    return gen._apply(b, gen._out({"op": "reshape", "shape": shape, "in": [i]}, e.bound, True))


def transpose(gen: "Generator", b: Builder) -> dict | bool:
    p = gen.pick(b, lambda e: e.t.rank >= 2)
    if p is None:
        return False
    i, e = p
    perm = list(range(e.t.rank))
    gen.rng.shuffle(perm)
    return gen._apply(b, gen._out({"op": "transpose", "perm": perm, "in": [i]}, e.bound, True))


def softmax(gen: "Generator", b: Builder) -> dict | bool:
    p = gen.pick(b, lambda e: e.t.rank >= 1 and e.t.dtype.is_float)
    if p is None:
        return False
    i, e = p
    axis = gen.rng.choice([-1, 0])
    return gen._apply(b, gen._out({"op": "softmax", "axis": axis, "in": [i]}, 1.0, True))
