"""Helpers: build `loss = sum(fn(xs) * w)` through popxl.transforms.autodiff, check the gradients it
computes against central finite differences (float64) on the interpreter, then the compiled backend
against the interpreter."""
from __future__ import annotations

from typing import Callable

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops


def grad_program(fn: Callable, shapes: list[tuple[int, ...]], seed: int = 11, positive: bool = False):
    """Main graph: xs -> call fwd -> out; call bwd with w = d loss / d out; copy grads and out to variables."""
    rng = np.random.default_rng(seed)
    ir = popxl.Ir()
    with ir.main_graph:
        xs = []
        for i, s in enumerate(shapes):
            data = rng.standard_normal(s)
            xs.append(popxl.variable(np.abs(data) + 0.5 if positive else data, popxl.float64, name=f"x{i}"))
        fwd = ir.create_graph(lambda *ts: fn(*ts), *[x.spec for x in xs])
        bwd = popxl.transforms.autodiff(fwd)
        info = ops.call_with_info(fwd, *xs)
        out = info.outputs[0]  # the activations follow as extra outputs
        w = popxl.variable(rng.standard_normal(out.shape), popxl.float64, name="w")
        gin = ops.call_with_info(bwd.graph, w, inputs_dict=bwd.inputs_dict(info))
        grads = bwd.fwd_parent_ins_to_grad_parent_outs(info, gin)
        for i, x in enumerate(xs):
            g = popxl.variable(np.zeros(x.shape), popxl.float64, name=f"g{i}")
            ops.var_updates.copy_var_update_(g, grads[x])
        o = popxl.variable(np.zeros(out.shape), popxl.float64, name="out")
        ops.var_updates.copy_var_update_(o, out)
    return ir


def _by_name(ir) -> dict[str, int]:
    return {ir.core.main.values[v].name: v for v in ir.core.variables}


def run(ir, device: str) -> dict[str, np.ndarray]:
    sess = popxl.Session(ir, device, options=CompileOptions())
    with sess:
        sess.run()
    return {n: sess._host[v].copy() for n, v in _by_name(ir).items()}


def check(fn: Callable, shapes: list[tuple[int, ...]], positive: bool = False, eps: float = 1e-6) -> None:
    ir = grad_program(fn, shapes, positive=positive)
    names = _by_name(ir)
    w = ir.core.variables[names["w"]]
    got = run(ir, "interpreter")
    for i in range(len(shapes)):
        x = ir.core.variables[names[f"x{i}"]]
        num = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            old = x[idx]
            x[idx] = old + eps
            up = float(np.sum(run(ir, "interpreter")["out"] * w))
            x[idx] = old - eps
            dn = float(np.sum(run(ir, "interpreter")["out"] * w))
            x[idx] = old
            num[idx] = (up - dn) / (2 * eps)
        np.testing.assert_allclose(got[f"g{i}"], num, rtol=1e-5, atol=1e-7, err_msg=f"gradient of input {i}")
    compiled = run(ir, "cpu")
    for i in range(len(shapes)):
        np.testing.assert_allclose(compiled[f"g{i}"], got[f"g{i}"], rtol=1e-9, atol=1e-12,
                                   err_msg=f"cpu vs interpreter, gradient of input {i}")
