"""Random valid programs for differential testing (passes and backends against the interpreter).

`generate(seed)` builds a popxl Ir from a seeded recipe: variables of a few shapes and dtypes, random
DAGs of elementwise ops with broadcasting, in-place var updates, in_sequence blocks, calls of subgraphs
with by-reference inputs, matmuls and reductions. Values stay bounded (tanh, abs+1 before sqrt/div/log)
so every program is finite. Every computed tensor is copied into an output variable, so comparing the
variables after a run compares everything.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np

from compiler import popxl
from compiler.popxl import ops

SHAPES = [(7,), (3, 5), (2, 3, 4), (64,), (1000,)]
DTYPES = [np.float32, np.float32, np.float16, np.float64]


def _bounded(t: Any) -> Any:
    return ops.tanh(t)


def _unary(rng: random.Random, t: Any) -> Any:
    kind = rng.choice(["neg", "tanh", "relu", "gelu", "sqrt", "exp", "log", "sigmoid", "abs", "square"])
    if kind == "neg":
        return -t
    if kind == "tanh":
        return ops.tanh(t)
    if kind == "relu":
        return ops.relu(t)
    if kind == "gelu":
        return ops.gelu(t)
    if kind == "sqrt":
        return ops.sqrt(ops.abs(t) + 1.0)
    if kind == "exp":
        return ops.exp(ops.tanh(t))
    if kind == "log":
        return ops.log(ops.abs(t) + 1.0)
    if kind == "sigmoid":
        return ops.sigmoid(t)
    if kind == "abs":
        return ops.abs(t)
    return t * t


def _binary(rng: random.Random, a: Any, b: Any) -> Any:
    kind = rng.choice(["add", "sub", "mul", "div", "max", "min"])
    if kind == "add":
        return a + b
    if kind == "sub":
        return a - b
    if kind == "mul":
        return a * b
    if kind == "div":
        return a / (ops.abs(b) + 1.0)
    return ops.maximum(a, b) if kind == "max" else ops.minimum(a, b)


def generate(seed: int, n_ops: int | None = None) -> popxl.Ir:
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    ir = popxl.Ir()
    shape = rng.choice(SHAPES)
    dtype = rng.choice(DTYPES)
    n_ops = n_ops or rng.randint(3, 14)
    with ir.main_graph:
        variables = [popxl.variable(nprng.uniform(-1, 1, shape).astype(dtype), dtype, name=f"v{i}")
                     for i in range(rng.randint(2, 4))]
        scalar = popxl.variable(np.asarray(0.5, dtype), dtype, name="s")
        pool: list[Any] = list(variables) + [scalar]
        outs: list[Any] = []
        seq = rng.choice([None, True, "pass"])
        ctx = popxl.in_sequence(seq) if seq is not None else _Null()
        with ctx:
            for _ in range(n_ops):
                r = rng.random()
                if r < 0.3:
                    t = _unary(rng, rng.choice(pool))
                elif r < 0.6:
                    t = _binary(rng, rng.choice(pool), rng.choice(pool))
                elif r < 0.8:
                    _update(rng, variables, pool, scalar)
                    continue
                elif r < 0.9:
                    t = _call(ir, rng, variables, pool)
                else:
                    t = _reduce_or_matmul(rng, rng.choice(variables), shape)
                if t is not None:
                    if t.shape == shape:
                        t = _bounded(t)
                        pool.append(t)  # only same-shaped tensors feed later ops (they broadcast)
                    outs.append(t)
        for k, t in enumerate(outs):
            o = popxl.variable(np.zeros(t.shape, t.dtype.numpy), t.dtype, name=f"out{k}")
            ops.var_updates.copy_var_update_(o, t)
    return ir


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _update(rng: random.Random, variables: list, pool: list, scalar: Any) -> None:
    t = rng.choice(variables)
    x = rng.choice([p for p in pool if p.shape == t.shape] or [t])
    x = ops.cast(x, t.dtype) if x.dtype != t.dtype else x
    kind = rng.choice(["acc", "ma", "mas", "scaled", "scale", "copy", "acc_t"])
    if kind == "acc":
        ops.var_updates.accumulate_(t, ops.tanh(x), f=rng.choice([None, 0.5]))
    elif kind == "acc_t":
        ops.var_updates.accumulate_(t, ops.tanh(x), f=scalar)
    elif kind == "ma":
        ops.var_updates.accumulate_moving_average_(t, x, f=0.9)
    elif kind == "mas":
        ops.var_updates.accumulate_moving_average_square_(t, ops.tanh(x), f=0.99)
    elif kind == "scaled":
        ops.scaled_add_(t, ops.tanh(x), a=rng.choice([1.0, 0.5]), b=-0.1)
    elif kind == "scale":
        ops.var_updates.accumulator_scale_(t, 0.9)
    else:
        ops.var_updates.copy_var_update_(t, ops.tanh(x))


def _call(ir: popxl.Ir, rng: random.Random, variables: list, pool: list) -> Any:
    t = rng.choice(variables)
    x = rng.choice([p for p in pool if p.shape == t.shape and p.dtype == t.dtype] or [t])

    def step(w: popxl.TensorByRef, g: popxl.Tensor):
        ops.var_updates.accumulate_moving_average_(w, ops.tanh(g), f=0.8)
        return ops.tanh(w * g)

    graph = ir.create_graph(step, t, x.spec)
    return ops.call(graph, t, x)[0]


def _reduce_or_matmul(rng: random.Random, t: Any, shape: tuple[int, ...]) -> Any:
    if len(shape) >= 2 and rng.random() < 0.5 and t.dtype != popxl.float16:
        k = shape[-1]
        m = t.reshape((-1, k))
        return ops.tanh(m @ ops.transpose(m))
    return ops.sum(t, axis=rng.randrange(len(shape)))
