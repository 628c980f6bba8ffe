"""Hostile fuzz steps (`random_program(..., hostile=True)`), each aimed at a guarantee that ordinary
programs never test:

- "hconst":      a constant (popxl.constant) used as an operand anywhere, also as a by-value argument of
                 a subgraph whose body updates that input in place: no run may change a constant;
- "const_write": an in-place write of a constant, directly or through a by-reference subgraph input:
                 building must refuse it (OpError); the program goes on without it;
- "host_index":  indices fed from a host stream (sparse_accumulate_ indices, cross-entropy labels),
                 sometimes through a reshape: a run fed one bad index (program "bad_runs") must raise
                 IndexError on every device with nothing changed, and the next run goes on from there.

Casts of out-of-range values and bfloat16 tensors are in generate.py / steps.py ("wild_cast").
The generator side (which operands) and the build side (what ops) of each are here, so a recipe
replays without the generator.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from compiler import popxl
from compiler.ops.registry import OpError
from compiler.popxl import ops

from .exactness import tolerance
from .program import Builder, Entry
from .steps import VU, _set, handler

if TYPE_CHECKING:
    from .generate import Generator

WEIGHTS = {"hconst": 5, "const_write": 3, "host_index": 8}


# ---------------------------------------------------------------- generator side
def hconst_step(gen: "Generator", b: Builder) -> dict | bool:
    return gen._apply(b, {"op": "hconst", "shape": list(gen.rng.choice(gen.family)), "dtype": gen.rng.choice(gen.dtypes),
                          "out": gen.new_id()})


def const_write_step(gen: "Generator", b: Builder) -> dict | bool:
    p = gen.pick(b, lambda e: e.kind == "const" and e.t.dtype.is_float)
    if p is None:
        return False
    return gen._apply(b, {"op": "const_write", "how": gen.rng.choice(["direct", "by_ref"]), "in": [p[0]]})


def host_index_step(gen: "Generator", b: Builder) -> dict | bool:
    if not b.main:  # host transfers happen in the main graph only
        return False
    r = gen.rng
    if r.random() < 0.5:
        p = gen.pick(b, lambda e: e.t.rank == 2 and e.t.dtype.is_float and e.t.shape[0] > 0 and e.t.shape[1] > 1)
        if p is None:
            return False
        i, e = p
        k, c = e.t.shape
        step = {"op": "host_index", "use": "labels", "in": [i], "lo": 0, "hi": c, "n": k,
                "reshape": r.random() < 0.3, "out": [gen.new_id(), gen.new_id(), gen.new_id()]}
        return gen._apply(b, step)
    # sparse_accumulate_ is inexact (duplicate indices add in any order): only into inexact tensors
    p = gen.pick(b, lambda e: gen.can_update(e) and e.t.dtype.is_float and not e.exact and e.t.rank >= 1)
    if p is None:
        return False
    i, t = p
    j, _ = gen.pick(b, lambda e: e.t.shape == t.t.shape and e.t.dtype.is_float)  # t itself qualifies
    axis = r.randrange(t.t.rank)
    n = t.t.shape[axis]
    step = {"op": "host_index", "use": "sparse", "in": [i, j], "axis": axis, "lo": -n, "hi": n, "n": n,
            "f": r.choice([0.5, -0.25, 1.0]), "reshape": r.random() < 0.3, "out": [gen.new_id()]}
    return gen._apply(b, step)


def bad_runs(gen: "Generator", has_index_streams: bool) -> list[int]:
    """Which runs get a bad index: none, the second (after a good one), or the first and the third."""
    if not has_index_streams:
        return []
    return gen.rng.choice([[], [1], [1], [0, 2]])


# ---------------------------------------------------------------- build side
@handler("hconst")
def _hconst(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    rng = np.random.default_rng([b.ctx.seed, s["out"], 7])
    dt = popxl.dtypes.DType[s["dtype"]]
    shape = tuple(s["shape"])
    data = rng.integers(-5, 6, shape) if not dt.is_float else rng.uniform(-1, 1, shape)
    c = popxl.constant(np.asarray(data).astype(dt.numpy), dt, name=f"c{s['out']}")
    b.env[s["out"]] = Entry(c, 0.0, 5.0, "const")


def _write_in_place(t: Any, x: Any) -> None:
    VU.accumulate_(t, x, f=0.5)


@handler("const_write")
def _const_write(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (c,) = ins
    try:
        if s["how"] == "direct":
            _write_in_place(c.t, c.t)
        else:
            def write(a: popxl.TensorByRef, x: popxl.Tensor) -> None:
                _write_in_place(a, x)

            g = b.ctx.ir.create_graph(write, c.t.spec, c.t.spec)
            ops.call(g, c.t, c.t)
    except OpError as e:
        if "constant" not in str(e):
            raise AssertionError(f"an in-place write of constant {c.t.name!r} was refused for another reason: {e}") from e
        b.ctx.refused += 1
        return
    raise AssertionError(f"an in-place write of constant {c.t.name!r} ({s['how']}) was accepted")


@handler("host_index")
def _host_index(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    n, out = s["n"], s["out"]
    name = f"in{out[0]}"
    shape = (1, n) if s["reshape"] else (n,)
    h = popxl.h2d_stream(shape, popxl.int32, name=name)
    b.ctx.loads[name] = h
    b.ctx.index_streams[name] = (s["lo"], s["hi"])
    idx = ops.host_load(h, name)
    if s["reshape"]:
        idx = idx.reshape((n,))
    if s["use"] == "labels":
        (e,) = ins
        t, tol = b.traced(lambda: ops.nll_loss_with_softmax_grad(ops.softmax(e.t, axis=-1), idx), e.tol)
        loss, dx = t
        tol = max(tol, tolerance("float32"))  # the op computes in float32 whatever the dtype (as PopART's)
        _set(b, {"out": out[1]}, loss, tol, float(np.log(s["hi"])) + 32.0)
        _set(b, {"out": out[2]}, dx, tol, 1.0)
        return
    t, x = ins
    _, tol = b.traced(lambda: VU.sparse_accumulate_(t.t, x.t if x.bound <= 1.0 else ops.tanh(x.t), idx,
                                                    axis=s["axis"], f=s["f"]), t.tol, x.tol)
    t.tol = max(t.tol, tol)
    t.updates += 1
    t.bound += n


__all__ = ["WEIGHTS", "bad_runs"]
