"""Replicated training steps for the shard_weight_update tests: each replica loads its own gradient per
weight from a stream, the gradients are averaged with replicated_all_reduce_, then an optimizer updates
every weight. Each weight is also stored to a stream before its update (a forward pass that reads it),
unless `read_weights` is False (then nothing but the update touches it and it is sharded too)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from custom_optimiser import Adam  # noqa: E402

# (7,) and (33, 5) do not divide by 2, 3 or 4 (padding); (300, 80) is above the packing threshold
SHAPES = [(7,), (33, 5), (64, 64), (300, 80), (3,)]
LR = 1e-2


def _sgd_momentum(w: popxl.Tensor, g: popxl.Tensor, state_dtype: Any) -> None:
    mom = popxl.variable(np.zeros(w.shape), state_dtype, name=f"{w.name}.momentum")
    ops.var_updates.accumulate_moving_average_(mom, g, f=0.9)
    ops.scaled_add_(w, mom, b=-LR)


def _adam(w: popxl.Tensor, g: popxl.Tensor, state_dtype: Any) -> None:
    facts, graph = Adam(cache=True).create_graph(w, w.spec, lr=LR, weight_decay=0.01,
                                                 first_order_dtype=state_dtype, bias_correction=True)
    graph.bind(facts.init(f"{w.name}.adam")).call(w, g)


def _lamb(w: popxl.Tensor, g: popxl.Tensor, state_dtype: Any) -> None:
    """LAMB: the trust ratio needs the norm of the whole update (refused, or a cross-shard reduction)."""
    m = popxl.variable(np.zeros(w.shape), state_dtype, name=f"{w.name}.m")
    v = popxl.variable(np.zeros(w.shape), popxl.float32, name=f"{w.name}.v")
    ops.var_updates.accumulate_moving_average_(m, g, f=0.9)
    ops.var_updates.accumulate_moving_average_square_(v, g, f=0.999)
    upd = ops.var_updates.lamb_updater(m, v, weight=w, weight_decay=0.01)
    r1, r2 = ops.lamb_square(w), ops.lamb_square(upd)
    ops.var_updates.copy_var_update_(w, w - LR * (r1 / r2) * upd)


OPTIMIZERS = {"sgd": _sgd_momentum, "adam": _adam, "lamb": _lamb}


def program(replicas: int, optimizer: str = "adam", shapes: list[tuple[int, ...]] = SHAPES,
            state_dtype: Any = popxl.float32, read_weights: bool = True, interleaved: bool = False, seed: int = 0
            ) -> tuple[popxl.Ir, dict]:
    """As the tutorial: every gradient all-reduced, then every update (interleaved: all-reduce and update
    one weight after another, so small collectives cannot be packed without breaking in_sequence)."""
    rng = np.random.default_rng(seed)
    ir = popxl.Ir(replication=replicas)
    h: dict = {"weights": [], "grads": [], "stores": []}
    with ir.main_graph, popxl.in_sequence(True):
        pairs = []
        for k, shape in enumerate(shapes):
            w = popxl.variable(rng.standard_normal(shape).astype(np.float32), name=f"w{k}")
            gs = popxl.h2d_stream(shape, popxl.float32, f"g{k}")
            if read_weights:
                ws = popxl.d2h_stream(shape, popxl.float32, f"w{k}_out")
                ops.host_store(ws, w)
                h["stores"].append(ws)
            g = ops.host_load(gs, f"grad{k}")
            ops.collectives.replicated_all_reduce_(g, op="mean")
            if interleaved:
                OPTIMIZERS[optimizer](w, g, state_dtype)
            pairs.append((w, g))
            h["weights"].append(w)
            h["grads"].append(gs)
        if not interleaved:
            for w, g in pairs:
                OPTIMIZERS[optimizer](w, g, state_dtype)
    return ir, h


def gradients(ir: popxl.Ir, h: dict, step: int) -> dict:
    """Each replica's gradients for one step (distinct per replica, replica-count independent per step)."""
    rng = np.random.default_rng(1000 + step)
    r = ir.replication_factor
    out = {}
    for s in h["grads"]:
        g = rng.standard_normal((r, *s.shape)).astype(np.float32)
        out[s] = g if r > 1 else g[0]
    return out


def train(replicas: int, steps: int, shard: bool, device: str = "cpu", **kw: Any
          ) -> tuple[dict[str, np.ndarray], popxl.Session]:
    """Every variable (by name) after `steps` steps, and the session."""
    ir, h = program(replicas, **kw)
    sess = popxl.Session(ir, device, options=CompileOptions(shard_weight_update=shard))
    with sess:
        for step in range(steps):
            sess.run(gradients(ir, h, step))
    return variables(sess), sess


def variables(sess: popxl.Session) -> dict[str, np.ndarray]:
    return {n: sess.get_tensor_data(sess.ir.core.main.values[vid]) for n, vid in sess._names().items()}
