"""Fuzz steps for in-place updates: every `ops.var_updates` function, scaled_add_/add_, and whole
optimizer steps (Adam, LAMB, AdaMax, no-bias Adam), optionally traced into a subgraph that takes the
weight and its state by reference, as the PopXL custom-optimiser tutorial does.

Hyper-parameters are floats, or Tensors taken from the step's inputs after (t, X), in the order
named by the step's "tensors" list. X is scaled by 2**-xscale (exact) so |X| <= 1.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from compiler import popxl
from compiler.popxl import ops

from .program import Builder, Entry
from .steps import VU, _like, handler


def _hypers(s: dict, ins: list[Entry], first: int) -> dict[str, Any]:
    """Float hyper-parameters from the step, Tensor ones from the inputs after `first`."""
    out = dict(s.get("floats", {}))
    for k, name in enumerate(s.get("tensors", [])):
        out[name] = ins[first + k].t
    return out


UPDATES: dict[str, Callable[[Any, Any, dict[str, Any], dict], Any]] = {
    "accumulate_": lambda t, x, h, s: VU.accumulate_(t, x, f=h.get("f")),
    "accumulate_square_": lambda t, x, h, s: VU.accumulate_square_(t, x, f=h.get("f", 1.0)),
    "accumulate_mean_": lambda t, x, h, s: VU.accumulate_mean_(t, x, h["step"]),
    "accumulate_moving_average_": lambda t, x, h, s: VU.accumulate_moving_average_(t, x, h["f"]),
    "accumulate_moving_average_square_": lambda t, x, h, s: VU.accumulate_moving_average_square_(t, x, h["f"]),
    "accumulator_scale_": lambda t, x, h, s: VU.accumulator_scale_(t, h["f"]),
    "accumulator_zero_": lambda t, x, h, s: VU.accumulator_zero_(t),
    "copy_var_update_": lambda t, x, h, s: VU.copy_var_update_(t, _like(x, t)),
    "scaled_add_": lambda t, x, h, s: ops.scaled_add_(t, x, a=h.get("a", 1.0), b=h.get("b", 1.0)),
    "add_": lambda t, x, h, s: ops.add_(t, _like(x, t)),
    "sparse_accumulate_": lambda t, x, h, s: VU.sparse_accumulate_(
        t, x, popxl.constant(np.asarray(s["indices"], np.int32), popxl.int32, name="idx"), axis=s["axis"],
        f=h.get("f", 1.0)),
}
# updates that never read X
NO_X = ("accumulator_scale_", "accumulator_zero_")


@handler("update")
def _update(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    t, x = ins[0], ins[1]
    hyp = _hypers(s, ins, 2)
    xt = x.t * (2.0 ** -s["xscale"]) if s.get("xscale") else x.t
    _, tol = b.traced(lambda: UPDATES[s["fn"]](t.t, xt, hyp, s),
                      *(e.tol for e in ins[2:]), 0.0 if s["fn"] in NO_X else x.tol)
    t.tol = max(t.tol, tol)
    t.updates += 1
    if t.kind == "value":
        t.bound += len(s.get("indices", [0]))


# ---------------------------------------------------------------- optimizers
def _optimizer_step(variant: str, w: Any, g: Any, m: Any, v: Any, step: Any, h: dict[str, Any]) -> None:
    """One optimizer update of w from gradient g, with state m, v, step (all updated in place)."""
    b1, b2, lr, wd = h["b1"], h["b2"], h["lr"], h["wd"]
    VU.accumulate_moving_average_(m, g, f=b1)
    VU.accumulate_moving_average_square_(v, g, f=b2)
    if variant == "adamax":
        upd = VU.adamax_updater(m, v, weight=w, time_step=step, weight_decay=wd, beta1=b1, epsilon=1e-4)
    elif variant == "nobias":
        upd = VU.adam_updater(m, v, weight=w, weight_decay=wd, beta1=b1, beta2=b2, epsilon=1e-4)
    elif variant == "lamb":
        upd = VU.lamb_updater(m, v, weight=w, time_step=step, weight_decay=wd, beta1=b1, beta2=b2, epsilon=1e-4)
        r1, r2 = ops.lamb_square(w), ops.lamb_square(upd)
        VU.adam_var_update(w, upd, r1, r2, learning_rate=lr, max_weight_norm=h.get("mwn", 10.0))
        return
    else:
        upd = VU.adam_updater(m, v, weight=w, time_step=step, weight_decay=wd, beta1=b1, beta2=b2, epsilon=1e-4)
    ops.scaled_add_(w, upd, b=-lr)


@handler("adam")
def _adam(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    """Creates the state variables m, v, step (ids in "out") and applies one optimizer step to w."""
    w, g = ins[0], ins[1]
    shape = w.t.shape
    m = popxl.variable(np.zeros(shape, s["dtype_m"]), s["dtype_m"], name=f"v{s['out'][0]}")
    v = popxl.variable(np.zeros(shape, s["dtype_v"]), s["dtype_v"], name=f"v{s['out'][1]}")
    st = popxl.variable(np.zeros((), np.float32), popxl.float32, name=f"v{s['out'][2]}")
    hyp = _hypers(s, ins, 2)
    gt = g.t * (2.0 ** -s["xscale"]) if s.get("xscale") else g.t
    if not s["graph"]:
        _optimizer_step(s["variant"], w.t, gt, m, v, st, hyp)
    else:
        names = list(hyp)
        R, T = popxl.TensorByRef, popxl.Tensor
        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=a)
                  for n, a in [("w", R), ("g", T), ("m", R), ("v", R), ("step", R)]]
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     annotation=T if isinstance(hyp[n], popxl.Tensor) else Any) for n in names]

        def opt(w: Any, g: Any, m: Any, v: Any, step: Any, *hs: Any) -> None:
            with popxl.in_sequence(True):
                _optimizer_step(s["variant"], w, g, m, v, step, dict(zip(names, hs)))

        opt.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        opt.__annotations__ = {p.name: p.annotation for p in params}
        opt.__name__ = opt.__qualname__ = f"{s['variant']}_step"
        args = [w.t, gt, m, v, st, *[hyp[n] for n in names]]
        graph = b.ctx.ir.create_graph(opt, *[a.spec if isinstance(a, popxl.Tensor) else a for a in args])
        ops.call(graph, *[a for a in args if isinstance(a, popxl.Tensor)])
    w.tol = max(w.tol, b.ctx.var_tol)
    w.updates += 1
    for i, t in zip(s["out"], (m, v, st)):
        b.env[i] = Entry(t, b.ctx.var_tol, 16.0, "state")
