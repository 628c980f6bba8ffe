"""Calls and in-place updates, compiled, bit for bit against the interpreter: by-reference write-back,
call by value, one buffer passed to several inputs, nested calls, calls on two threads, aliasing
in-place ops, and the tutorial Adam over several steps (unfused and fused)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "examples"))
import custom_optimiser  # noqa: E402
from llvmcheck import compare  # noqa: E402

LEVELS = (0, 2)


def _vars(**arrays):
    return {k: popxl.variable(np.asarray(v, np.float32), name=k) for k, v in arrays.items()}


def test_by_ref_write_back_and_call_by_value():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            t = _vars(w=np.full(5, 2.0), v=np.arange(5.0))

            def bump(a: popxl.TensorByRef, v: popxl.Tensor):
                ops.var_updates.accumulate_(a, v)
                ops.var_updates.accumulate_(v, v)  # by value: must not reach the caller
                return v * 3.0

            g = ir.create_graph(bump, t["w"], t["v"])
            (y,) = ops.call(g, t["w"], t["v"])
            out = popxl.variable(np.zeros(5, np.float32), name="out")
            ops.var_updates.copy_var_update_(out, y + t["w"])
        return ir
    ref = compare(build, LEVELS, exact=True, runs=2)
    np.testing.assert_array_equal(ref["v"], np.arange(5.0, dtype=np.float32))


@pytest.mark.parametrize("case", ["ref and value", "two refs", "two values", "ref twice unmodified last"])
def test_one_buffer_passed_to_several_inputs(case):
    """The interpreter copies every input in and writes by-ref inputs back in input order."""
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            w = _vars(w=np.arange(1.0, 7.0))["w"]
            if case == "ref and value":
                def f(a: popxl.TensorByRef, b: popxl.Tensor):
                    ops.var_updates.accumulate_(a, b)
                    ops.var_updates.accumulate_(b, b)
                    return a + b  # reads the by-value copy after the by-ref write
            elif case == "two refs":
                def f(a: popxl.TensorByRef, b: popxl.TensorByRef):
                    ops.var_updates.accumulate_(a, a)
                    ops.var_updates.accumulator_scale_(b, 3.0)
                    return a * b
            elif case == "two values":
                def f(a: popxl.Tensor, b: popxl.Tensor):
                    ops.var_updates.accumulate_(a, b)
                    return a - b
            else:
                def f(a: popxl.TensorByRef, b: popxl.TensorByRef):
                    ops.var_updates.accumulator_scale_(a, 5.0)
                    return b + 1.0  # b is written back last, unchanged
            g = ir.create_graph(f, w, w)
            (y,) = ops.call(g, w, w)
            out = popxl.variable(np.zeros(6, np.float32), name="out")
            ops.var_updates.copy_var_update_(out, y)
        return ir
    compare(build, LEVELS, exact=True, runs=2)


def test_nested_calls_pass_references_through():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            t = _vars(w=np.linspace(-1, 1, 9), g=np.linspace(2, 3, 9))

            def inner(a: popxl.TensorByRef, x: popxl.Tensor):
                ops.scaled_add_(a, x, 0.5, -0.25)
                return ops.sqrt(ops.abs(a))

            gi = ir.create_graph(inner, t["w"], t["g"])

            def outer(a: popxl.TensorByRef, x: popxl.Tensor):
                (r,) = ops.call(gi, a, x)
                (r2,) = ops.call(gi, a, r)
                return r2 * 2.0

            go = ir.create_graph(outer, t["w"], t["g"])
            (y,) = ops.call(go, t["w"], t["g"])
            out = popxl.variable(np.zeros(9, np.float32), name="out")
            ops.var_updates.copy_var_update_(out, y)
        return ir
    compare(build, LEVELS, exact=True, runs=3)


@pytest.mark.parametrize("threads", [1, 2])
def test_independent_calls_on_two_threads(threads):
    """Eight same-graph calls on distinct variables (a parallel call group at threads=2), and calls whose
    outputs feed later calls (which must not run concurrently with their producers)."""
    n = 1 << 14

    def build():
        rng = np.random.default_rng(0)
        ir = popxl.Ir()
        with ir.main_graph:
            ws = [popxl.variable(rng.standard_normal(n).astype(np.float32), name=f"w{i}") for i in range(8)]
            gs = [popxl.variable(rng.standard_normal(n).astype(np.float32), name=f"g{i}") for i in range(8)]

            def step(w: popxl.TensorByRef, g: popxl.Tensor):
                ops.scaled_add_(w, g, 0.9, 0.1)
                return g * 2.0

            sg = ir.create_graph(step, ws[0], gs[0])
            outs = [ops.call(sg, w, g)[0] for w, g in zip(ws, gs)]
            for w, y in zip(ws[::-1], outs):  # consumers of earlier calls' outputs
                ops.call(sg, w, y)
        return ir
    compare(build, (2,), exact=True, threads=threads)


@pytest.mark.parametrize("case", ["accumulate x into itself", "scaled add of itself", "read before update",
                                  "broadcast into in-place"])
def test_aliasing_in_place_updates(case):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            t = _vars(v=np.linspace(-2, 2, 1003).reshape(17, 59), b=np.linspace(0, 1, 59))
            v, b = t["v"], t["b"]
            res = None
            if case == "accumulate x into itself":
                ops.var_updates.accumulate_(v, v)
            elif case == "scaled add of itself":
                ops.scaled_add_(v, v, 0.5, 2.0)
            elif case == "read before update":
                res = v * 3.0
                ops.var_updates.accumulate_moving_average_(v, res, 0.75)
                res = res + v
            else:
                ops.var_updates.copy_var_update_(v, v * 0.5 + b)  # the in-place pass writes v while reading it
            if res is not None:
                out = popxl.variable(np.zeros(v.shape, np.float32), name="out")
                ops.var_updates.copy_var_update_(out, res)
        return ir
    compare(build, LEVELS, exact=True, runs=2)


@pytest.mark.parametrize("first_order", [popxl.float16, popxl.float32])
@pytest.mark.parametrize("n", [1, 7, 4099])
def test_tutorial_adam_steps(first_order, n):
    """The fused Adam kernel: the step counter is a uniform result, stored once after the loop."""
    def build():
        ir = popxl.Ir()
        rng = np.random.default_rng(n)
        with ir.main_graph:
            w = popxl.variable(rng.standard_normal(n).astype(np.float32), name="w")
            g = popxl.variable(rng.standard_normal(n).astype(np.float32), name="g")
            facts, graph = custom_optimiser.Adam(cache=True).create_graph(w, w.spec, lr=1e-2,
                                                                           first_order_dtype=first_order)
            graph.bind(facts.init()).call(w, g)
        return ir
    ref = compare(build, LEVELS, exact=True, runs=3)
    steps = [v for k, v in ref.items() if v.shape == ()]
    assert steps and all(float(s) == 3.0 for s in steps)
