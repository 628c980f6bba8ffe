"""Every gradient rule against central finite differences (float64) and the compiled backend."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from compiler import popxl
from compiler.autodiff import AutodiffError
from compiler.driver import CompileOptions
from compiler.popxl import ops

rng = np.random.default_rng(11)


def _grad_program(fn: Callable, shapes: list[tuple[int, ...]], dtype=np.float64):
    """Main graph: xs -> call fwd -> loss = sum(out * w); call bwd with dloss; returns (ir, xs, w, grads)."""
    ir = popxl.Ir()
    with ir.main_graph:
        xs = [popxl.variable(rng.standard_normal(s), dtype, name=f"x{i}") for i, s in enumerate(shapes)]
        specs = [x.spec for x in xs]
        fwd = ir.create_graph(lambda *ts: fn(*ts), *specs)
        bwd = popxl.transforms.autodiff(fwd)
        info = ops.call_with_info(fwd, *xs)
        out = info.outputs[0]  # the activations follow as extra outputs
        w = popxl.variable(rng.standard_normal(out.shape), dtype, name="w")
        acts = bwd.inputs_dict(info)
        gin = ops.call_with_info(bwd.graph, w, inputs_dict=acts)
        grads = bwd.fwd_parent_ins_to_grad_parent_outs(info, gin)
        outs = []
        for i, x in enumerate(xs):
            g = popxl.variable(np.zeros(x.shape), dtype, name=f"g{i}")
            ops.var_updates.copy_var_update_(g, grads[x])
            outs.append(g)
        o = popxl.variable(np.zeros(out.shape), dtype, name="out")
        ops.var_updates.copy_var_update_(o, out)
    return ir


def _value(ir, device, override=None):
    sess = popxl.Session(ir, device, options=CompileOptions())
    if override:
        for t, d in override.items():
            sess.write_variable_data(t, d)
    with sess:
        sess.run()
    names = {v.name: v for v in (ir.main.values[i] for i in ir.variables)}
    return {n: sess._host[v.id].copy() for n, v in names.items()}


def check(fn: Callable, shapes: list[tuple[int, ...]], positive: bool = False, eps: float = 1e-6):
    ir = _grad_program(fn, shapes)
    xs = {f"x{i}": ir.variables[[v for v in ir.variables if ir.main.values[v].name == f"x{i}"][0]]
          for i in range(len(shapes))}
    if positive:
        for k in xs:
            xs[k][...] = np.abs(xs[k]) + 0.5
    w = ir.variables[[v for v in ir.variables if ir.main.values[v].name == "w"][0]]
    got = _value(ir, "interpreter")
    for i in range(len(shapes)):
        x = xs[f"x{i}"]
        num = np.zeros_like(x)
        it = np.nditer(x, flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            old = x[idx]
            x[idx] = old + eps
            up = float(np.sum(_value(ir, "interpreter")["out"] * w))
            x[idx] = old - eps
            dn = float(np.sum(_value(ir, "interpreter")["out"] * w))
            x[idx] = old
            num[idx] = (up - dn) / (2 * eps)
        np.testing.assert_allclose(got[f"g{i}"], num, rtol=1e-5, atol=1e-7, err_msg=f"gradient of input {i}")
    compiled = _value(ir, "cpu")
    for i in range(len(shapes)):
        np.testing.assert_allclose(compiled[f"g{i}"], got[f"g{i}"], rtol=1e-9, atol=1e-12)


CASES = {
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)], False),
    "add_broadcast": (lambda a, b: a + b, [(3, 4), (4,)], False),
    "sub_broadcast": (lambda a, b: a - b, [(3, 4), (3, 1)], False),
    "mul_broadcast": (lambda a, b: a * b, [(2, 3), (3,)], False),
    "div": (lambda a, b: a / b, [(2, 3), (2, 3)], True),
    "reshape": (lambda a: a.reshape((6, 2)) * a.reshape((6, 2)), [(3, 4)], False),
    "transpose": (lambda a: a.T @ a, [(3, 2)], False),
    "gelu": (lambda a: ops.gelu(a), [(3, 5)], False),
    "geluerf": (lambda a: ops.geluerf(a), [(3, 5)], False),
    "relu": (lambda a: ops.relu(a), [(3, 5)], False),
    "tanh": (lambda a: ops.tanh(a), [(3, 5)], False),
    "exp": (lambda a: ops.exp(a), [(3, 5)], False),
    "log": (lambda a: ops.log(a), [(3, 5)], True),
    "sqrt": (lambda a: ops.sqrt(a), [(4,)], True),
    "sigmoid": (lambda a: ops.sigmoid(a), [(4,)], False),
    "softmax": (lambda a: ops.softmax(a, axis=-1), [(3, 5)], False),
    "softmax_axis0": (lambda a: ops.softmax(a, axis=0), [(3, 5)], False),
    "sum": (lambda a: ops.sum(a, axis=1, keepdims=True) * a, [(3, 4)], False),
    "mean": (lambda a: ops.mean(a, axis=0), [(3, 4)], False),
    "neg_cast": (lambda a: ops.cast(-a, popxl.float64), [(3,)], False),
    "mlp": (lambda x, w1, b1, w2: ops.gelu(x @ w1 + b1) @ w2, [(2, 3), (3, 4), (4,), (4, 2)], False),
    "call": (lambda x, w: ops.tanh(ops.call(_layer_graph(x, w), x, w)[0]) * x, [(2, 3), (3, 3)], False),
}


def _layer_graph(x, w):
    """A subgraph (built once per Ir) computing gelu(x @ w), called from the differentiated graph."""
    ir = x.ir
    cache = ir.meta.setdefault("test_layer", {})
    if "g" not in cache:
        cache["g"] = ir.create_graph(lambda a, b: ops.gelu(a @ b), x.spec, w.spec)
    return cache["g"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_finite_differences(case):
    fn, shapes, positive = CASES[case]
    check(fn, shapes, positive)


def test_inplace_graph_is_refused():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3))

        def f(a: popxl.Tensor):
            ops.var_updates.accumulate_(a, a)
            return a * 2.0

        g = ir.create_graph(f, x.spec)
        with pytest.raises(AutodiffError, match="inplace modifying ops"):
            popxl.transforms.autodiff(g)


def test_activations_become_forward_outputs():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones((2, 3)))
        g = ir.create_graph(lambda a: ops.tanh(ops.exp(a)), x.spec)
        n_out = len(g.outputs)
        info = popxl.transforms.autodiff(g)
    assert len(g.outputs) > n_out
    kinds = [c.connection_type for c in info.expected_inputs]
    assert kinds[0] == "FwdGrad" and set(kinds[1:]) == {"Fwd"}
