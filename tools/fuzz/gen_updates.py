"""Random in-place update steps and optimizer steps (see updates.py for what they build)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .program import Builder
from .updates import NO_X, UPDATES

if TYPE_CHECKING:
    from .generate import Generator

# float hyper-parameter choices per update; "T" = a scalar Tensor with |value| <= 1
FACTORS: dict[str, list[dict]] = {
    "accumulate_": [{}, {"f": 0.5}, {"f": -0.25}, {"f": "T"}],
    "accumulate_square_": [{}, {"f": 0.5}, {"f": "T"}],
    "accumulate_mean_": [{"step": 2.0}, {"step": "S"}],
    "accumulate_moving_average_": [{"f": 0.9}, {"f": 0.5}, {"f": "T"}],
    "accumulate_moving_average_square_": [{"f": 0.99}, {"f": "T"}],
    "accumulator_scale_": [{"f": 0.5}, {"f": 0.0}, {"f": "T"}],
    "accumulator_zero_": [{}],
    "copy_var_update_": [{}],
    "scaled_add_": [{"a": 0.5, "b": -0.125}, {"b": 0.25}, {"b": "T"}, {"a": "T", "b": "T"}],
    "add_": [{}],
    "sparse_accumulate_": [{"f": 0.5}, {"f": "T"}],
}
# updates whose result numpy and native code need not agree on bit for bit
INEXACT = frozenset({"sparse_accumulate_"})


def _scale(bound: float) -> int:
    return int(np.ceil(np.log2(bound))) if bound > 1.0 else 0


def _tensor_hyper(gen: "Generator", b: Builder, exact: bool, kind: str) -> int | None:
    """A float scalar: "T" any |v| <= 1 (a factor), "B" a hyper-parameter variable in (0, 1) (a beta),
    "S" a hyper-parameter variable > 1 (accumulate_mean_'s step)."""
    if kind in ("S", "B"):
        p = gen.pick(b, lambda e: e.kind == "hyper" and (e.bound > 1.0) == (kind == "S"))
    else:
        p = gen.pick(b, lambda e: e.t.shape == () and e.t.dtype.is_float and e.bound <= 1.0
                     and (e.exact or not exact))
    return p[0] if p else None


def _hypers_into(gen: "Generator", b: Builder, step: dict, hypers: dict, exact: bool, choose: bool = False) -> bool:
    """Record each hyper-parameter in `step` (choose: first pick one of its listed choices): a float as is,
    a "T"/"B"/"S" kind as a tensor input found in the program (False if there is none)."""
    for name, v in hypers.items():
        if choose:
            v = gen.rng.choice(v)
        if isinstance(v, str):
            k = _tensor_hyper(gen, b, exact, v)
            if k is None:
                return False
            step["tensors"].append(name)
            step["in"].append(k)
        else:
            step["floats"][name] = v
    return True


def update_step(gen: "Generator", b: Builder) -> dict | bool:
    r = gen.rng
    fn = r.choice(list(UPDATES))
    p = gen.pick(b, lambda e: gen.can_update(e) and e.t.dtype.is_float
                 and (not e.exact or fn not in INEXACT) and (fn != "sparse_accumulate_" or e.t.rank >= 1))
    if p is None:
        return False
    i, t = p
    if fn in NO_X:
        j, x = i, t
    else:
        q = gen.pick(b, lambda e: e.t.shape == t.t.shape and e.t.dtype.is_float and (e.exact or not t.exact))
        if q is None:
            return False
        j, x = q
    step: dict = {"op": "update", "fn": fn, "in": [i, j], "floats": {}, "tensors": []}
    if not _hypers_into(gen, b, step, r.choice(FACTORS[fn]), t.exact):
        return False
    if fn not in NO_X and _scale(x.bound):
        step["xscale"] = _scale(x.bound)
    if fn == "sparse_accumulate_":
        axis = r.randrange(t.t.rank)
        n = t.t.shape[axis]
        step["axis"] = axis
        step["indices"] = [r.randrange(n) for _ in range(n)]
    return gen._apply(b, step)


ADAM_HYPERS = {"b1": [0.9, "B"], "b2": [0.999, 0.99], "lr": [0.01, 0.001, "B"], "wd": [0.0, 0.01, "T"]}


def adam_step(gen: "Generator", b: Builder) -> dict | bool:
    from .generate import MAX_UPDATES

    r = gen.rng
    p = gen.pick(b, lambda e: e.kind == "var" and e.t.dtype.is_float and not e.exact and e.updates < MAX_UPDATES)
    if p is None:
        return False
    i, w = p
    j, g = gen.pick(b, lambda e: e.t.shape == w.t.shape and e.t.dtype.is_float)
    step: dict = {"op": "adam", "variant": r.choice(["adam", "adam", "lamb", "adamax", "nobias"]), "in": [i, j],
                  "dtype_m": r.choice([w.t.dtype.name, "float32", "float16"]),
                  "dtype_v": r.choice([w.t.dtype.name, "float32"]), "graph": r.random() < 0.5,
                  "floats": {}, "tensors": []}
    if not _hypers_into(gen, b, step, ADAM_HYPERS, False, choose=True):
        return False
    if _scale(g.bound):
        step["xscale"] = _scale(g.bound)
    step["out"] = [gen.new_id(), gen.new_id(), gen.new_id()]
    done = gen._apply(b, step)
    if done and step["graph"] and r.random() < 0.8:
        _same_step_elsewhere(gen, b, step, w)
    return done


def _same_step_elsewhere(gen: "Generator", b: Builder, step: dict, w0) -> None:
    """The same optimizer graph (variant, state dtypes, hyper-parameters) on another parameter, as a model
    with many weights does: what horizontal fusion (level 3) turns into one MultiKernel launch."""
    from .generate import MAX_UPDATES

    p = gen.pick(b, lambda e: e.kind == "var" and e is not w0 and e.t.dtype == w0.t.dtype and not e.exact
                 and e.updates < MAX_UPDATES)
    if p is None:
        return
    i, w = p
    q = gen.pick(b, lambda e: e.t.shape == w.t.shape and e.t.dtype.is_float)
    if q is None:
        return
    j, g = q
    again = {**step, "in": [i, j] + step["in"][2:], "out": [gen.new_id(), gen.new_id(), gen.new_id()]}
    again.pop("xscale", None)
    if _scale(g.bound):
        again["xscale"] = _scale(g.bound)
    gen._apply(b, again)
