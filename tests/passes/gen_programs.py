"""Random popxl programs for the pass tests, as hypothesis strategies.

A recipe is plain data (so hypothesis shrinks and prints it): a shape, a dtype and a list of steps that
refer to earlier tensors by index (modulo the pool size, so every shrunk recipe still builds). Steps:
elementwise DAGs with broadcasting scalars, duplicated expressions (CSE), constant chains (folding),
in-place updates of variables and of temporaries, ScaledAdd with Neg / Mul(-1) / Sub(-0.0) / constant
scales (folding), reductions between elementwise ops (fusion blockers), calls of small elementwise graphs
with by-reference inputs (inlining, dedup), calls of one-kernel Adam graphs, one per variable (horizontal fusion), and
in_sequence blocks. Every temporary is copied into an output variable, so comparing variables compares
everything the program computed.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from compiler import popxl
from compiler.popxl import ops

SHAPES = [(5,), (2, 3)]
DTYPES = [np.float32, np.float32, np.float16]
UNARY = ["neg", "tanh", "abs", "relu", "sigmoid", "exp", "sqrt"]
BINARY = ["add", "sub", "mul", "max", "div"]
UPDATES = ["acc", "acc_f", "ma", "mas", "scale", "copy"]
SCALE_FORMS = ["neg", "mul", "subz", "subp", "const", "float"]

idx = st.integers(0, 50)
step = st.one_of(
    st.tuples(st.just("un"), st.sampled_from(UNARY), idx),
    st.tuples(st.just("bin"), st.sampled_from(BINARY), idx, idx, st.booleans()),
    st.tuples(st.just("dup"), idx),
    st.tuples(st.just("const"), st.sampled_from([0.5, -2.0, 3.0])),
    st.tuples(st.just("upd_var"), st.sampled_from(UPDATES), idx, idx),
    st.tuples(st.just("upd_tmp"), st.sampled_from(UPDATES), idx, idx),
    st.tuples(st.just("scaled"), idx, idx, st.sampled_from(SCALE_FORMS)),
    st.tuples(st.just("reduce"), idx),
    st.tuples(st.just("call_ew"), idx, idx, st.booleans()),
    st.tuples(st.just("call_adam"), idx, idx, st.booleans()),
    st.tuples(st.just("adam_each"), st.integers(1, 5), st.booleans()),
    st.tuples(st.just("seq"), st.integers(1, 4), st.just(True)),
)
recipes = st.fixed_dictionaries({
    "shape": st.sampled_from(SHAPES),
    "dtype": st.sampled_from(DTYPES),
    "n_vars": st.integers(2, 4),
    "steps": st.lists(step, min_size=1, max_size=12),
})


def _unary(kind: str, t: Any) -> Any:
    if kind == "neg":
        return -t
    if kind == "exp":
        return ops.exp(ops.tanh(t))
    if kind == "sqrt":
        return ops.sqrt(ops.abs(t))
    return getattr(ops, kind)(t)


def _binary(kind: str, a: Any, b: Any) -> Any:
    if kind == "div":
        return a / (ops.abs(b) + 1.0)
    return {"add": ops.add, "sub": ops.sub, "mul": ops.mul, "max": ops.maximum}[kind](a, b)


def _update(kind: str, t: Any, x: Any, s: Any) -> None:
    u = ops.var_updates
    if kind == "acc":
        u.accumulate_(t, x)
    elif kind == "acc_f":
        u.accumulate_(t, x, f=s)
    elif kind == "ma":
        u.accumulate_moving_average_(t, x, f=0.9)
    elif kind == "mas":
        u.accumulate_moving_average_square_(t, x, f=0.99)
    elif kind == "scale":
        u.accumulator_scale_(t, 0.5)
    else:
        u.copy_var_update_(t, x)


def _scale(form: str, lr: Any) -> Any:
    if form == "neg":
        return -lr
    if form == "mul":
        return lr * -1.0
    if form == "subz":
        return popxl.constant(np.asarray(-0.0, lr.dtype.numpy)) - lr
    if form == "subp":
        return popxl.constant(np.asarray(0.0, lr.dtype.numpy)) - lr
    if form == "const":
        return popxl.constant(np.asarray(0.25, lr.dtype.numpy))
    return -0.125


def _ew_graph(w: popxl.TensorByRef, g: popxl.Tensor):
    ops.var_updates.accumulate_moving_average_(w, ops.tanh(g), f=0.8)
    return ops.tanh(w * g)


def _adam_graph(w: popxl.TensorByRef, g: popxl.Tensor, m: popxl.TensorByRef, v: popxl.TensorByRef):
    ops.var_updates.accumulate_moving_average_(m, g, f=0.9)
    ops.var_updates.accumulate_moving_average_square_(v, g, f=0.999)
    dw = ops.var_updates.adam_updater(m, v, weight=w, weight_decay=0.0, epsilon=1e-5)
    ops.scaled_add_(w, dw, b=-0.01)


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def build(recipe: dict) -> popxl.Ir:
    shape, dt = recipe["shape"], recipe["dtype"]
    rng = np.random.default_rng(len(recipe["steps"]))
    ir = popxl.Ir()
    cache: dict[str, Any] = {}
    with ir.main_graph:
        variables = [popxl.variable(rng.uniform(-1, 1, shape).astype(dt), dt, name=f"v{i}")
                     for i in range(recipe["n_vars"])]
        lr = popxl.variable(np.asarray(0.125, dt), dt, name="lr")
        pool: list[Any] = list(variables)
        scalars: list[Any] = [lr]
        seq_left, ctx = 0, _Null()

        def pick(i: int) -> Any:
            return pool[i % len(pool)]

        for s in recipe["steps"]:
            kind = s[0]
            if kind == "seq":
                if seq_left == 0:
                    ctx = popxl.in_sequence(s[2])
                    ctx.__enter__()
                    seq_left = s[1]
            elif kind == "un":
                pool.append(_unary(s[1], pick(s[2])))
            elif kind == "bin":
                rhs = scalars[s[3] % len(scalars)] if s[4] else pick(s[3])
                pool.append(ops.tanh(_binary(s[1], pick(s[2]), rhs)))
            elif kind == "dup":
                pool += [ops.exp(ops.tanh(pick(s[1]))), ops.exp(ops.tanh(pick(s[1])))]
            elif kind == "const":
                c = popxl.constant(np.full(shape, s[1], dt))
                pool.append(c * 2.0 + 1.0)
            elif kind in ("upd_var", "upd_tmp"):
                t = variables[s[2] % len(variables)] if kind == "upd_var" else pick(s[2])
                x = pick(s[3])
                if x is t:
                    x = ops.tanh(t)
                _update(s[1], t, x, lr)
            elif kind == "scaled":
                ops.scaled_add_(variables[s[1] % len(variables)], ops.tanh(pick(s[2])), b=_scale(s[3], lr))
            elif kind == "reduce":
                scalars.append(ops.tanh(ops.sum(pick(s[1]))))
            elif kind == "call_ew":
                w, g = variables[s[1] % len(variables)], pick(s[2])
                if g is w:
                    g = ops.tanh(w)
                if s[3] or "ew" not in cache:
                    cache["ew"] = ir.create_graph(_ew_graph, w, g.spec)
                pool.append(ops.call(cache["ew"], w, g)[0])
            elif kind == "call_adam":
                w = variables[s[1] % len(variables)]
                g = popxl.variable(rng.uniform(-1, 1, shape).astype(dt), dt, name="g") if s[2] % 2 else pick(s[2])
                if g is w:
                    g = lr * 2.0 + w
                m = popxl.variable(np.zeros(shape, dt), dt, name="m")
                v = popxl.variable(np.zeros(shape, dt), dt, name="v")
                if s[3] or "adam" not in cache:
                    cache["adam"] = ir.create_graph(_adam_graph, w, g.spec, m, v)
                ops.call(cache["adam"], w, g, m, v)
            elif kind == "adam_each":  # one optimizer step per variable (the same variable twice if n > n_vars)
                for k in range(s[1]):
                    w = variables[k % len(variables)]
                    g = popxl.variable(rng.uniform(-1, 1, shape).astype(dt), dt, name="g")
                    m = popxl.variable(np.zeros(shape, dt), dt, name="m")
                    v = popxl.variable(np.zeros(shape, dt), dt, name="v")
                    if s[2] or "adam" not in cache:
                        cache["adam"] = ir.create_graph(_adam_graph, w, g.spec, m, v)
                    ops.call(cache["adam"], w, g, m, v)
            if kind != "seq" and seq_left:
                seq_left -= 1
                if seq_left == 0:
                    ctx.__exit__(None, None, None)
                    ctx = _Null()
        if seq_left:
            ctx.__exit__(None, None, None)
        outs = pool[len(variables):] + scalars[1:]
        for k, t in enumerate(outs):
            o = popxl.variable(np.zeros(t.shape, t.dtype.numpy), t.dtype, name=f"out{k}")
            ops.var_updates.copy_var_update_(o, t)
    return ir
