"""in_sequence ordering, by-ref write-back, the ambiguity error, GraphCache reuse, program-order reads."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from session_helpers import run_session

from compiler import addons, popxl
from compiler.ir.ambiguity import InplaceAmbiguityError
from compiler.popxl import ops


def _labels(g, pairs):
    return {(a.label, b.label) for a, b in pairs}


def test_in_sequence_true_chains_ops():
    ir = popxl.Ir()
    with ir.main_graph, popxl.in_sequence():
        x = popxl.variable(np.ones(3, np.float32), name="x")
        a = x + 1.0
        b = a * 2.0
        ops.var_updates.accumulate_(x, b)
    g = ir.core.main
    kinds = [op.label for op in g.ops]
    # constants make no ops; Add, Mul, Accumulate each follow the previous one
    assert _labels(g, g.constraints) == {(kinds[0], kinds[1]), (kinds[1], kinds[2])}


def test_nested_false_block_is_one_unit():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32), name="x")
        with popxl.in_sequence(True):
            a = ops.negate(x)                     # A
            with popxl.in_sequence(False):
                b = ops.exp(a)                    # B
                c = ops.tanh(a)                   # C
            _ = b + c                             # D
    A, B, C, D = (op.label for op in ir.core.main.ops)
    # PopXL also adds the redundant A -> D (D follows everything in previous_ops)
    assert _labels(ir.core.main, ir.core.main.constraints) == {(A, B), (A, C), (A, D), (B, D), (C, D)}
    assert [[o.label for o in grp] for grp in ir.core.main.unordered_groups] == [[B, C]]
    popxl.Session(ir, "interpreter")  # B and C only read: no ambiguity


def test_in_sequence_pass_and_none():
    with pytest.raises(TypeError):
        with popxl.in_sequence(None):
            pass
    ir = popxl.Ir()
    with ir.main_graph, popxl.in_sequence("pass"):
        x = popxl.variable(np.ones(3, np.float32))
        ops.negate(ops.exp(x))
    assert ir.core.main.constraints == []


def test_ambiguity_error_names_both_ops_and_tensor():
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.ones(3, np.float32), name="w")
        g = popxl.variable(np.ones(3, np.float32), name="g")
        with popxl.in_sequence(False):
            ops.var_updates.accumulate_(w, g)
            y = ops.exp(w)
        del y
    acc, exp = (op.label for op in ir.core.main.ops)
    with pytest.raises(InplaceAmbiguityError, match=rf"'w'.*{acc}.*{exp}"):
        popxl.Session(ir, "interpreter")


def test_reads_see_program_order_and_by_ref_write_back():
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.full(3, 2.0, np.float32), name="w")
        before = w * 1.0                       # reads w before the update

        def bump(t: popxl.TensorByRef, v: popxl.Tensor):
            ops.var_updates.accumulate_(t, v)
            ops.var_updates.accumulate_(v, v)  # by value: must not reach the caller

        g = ir.create_graph(bump, w, w.spec)
        v = popxl.variable(np.full(3, 10.0, np.float32), name="v")
        ops.call(g, w, v)
        after = w * 1.0                         # reads the written-back w
        out_b = popxl.variable(np.zeros(3, np.float32), name="out_before")
        out_a = popxl.variable(np.zeros(3, np.float32), name="out_after")
        ops.var_updates.copy_var_update_(out_b, before)
        ops.var_updates.copy_var_update_(out_a, after)
    got, _ = run_session(ir, "interpreter")
    np.testing.assert_array_equal(got["w"], np.full(3, 12.0, np.float32))
    np.testing.assert_array_equal(got["v"], np.full(3, 10.0, np.float32))
    np.testing.assert_array_equal(got["out_before"], np.full(3, 2.0, np.float32))
    np.testing.assert_array_equal(got["out_after"], np.full(3, 12.0, np.float32))


class _Adam(addons.Module):
    @popxl.in_sequence()
    def build(self, weight: popxl.TensorByRef, grad: popxl.Tensor, *, lr: float, weight_decay: float = 0.0,
              bias_correction: bool = True):
        m = self.add_variable_input("first_order", partial(np.zeros, weight.shape), popxl.float16, by_ref=True)
        ops.var_updates.accumulate_moving_average_(m, grad, f=0.9)
        v = self.add_variable_input("second_order", partial(np.zeros, weight.shape), popxl.float32, by_ref=True)
        ops.var_updates.accumulate_moving_average_square_(v, grad, f=0.999)
        dw = ops.var_updates.adam_updater(m, v, weight=weight, weight_decay=weight_decay, beta1=0.9, beta2=0.999,
                                          epsilon=1e-5)
        ops.scaled_add_(weight, dw, b=-lr)


MNIST_SHAPES = [(784, 512), (512,), (512, 512), (512,), (512, 512), (512,), (512, 10), (10,)]


def test_graph_cache_gives_five_graphs_for_the_mnist_weights():
    ir = popxl.Ir()
    opt = _Adam(cache=True)
    with ir.main_graph:
        graphs = []
        for i, shape in enumerate(MNIST_SHAPES):
            var = popxl.variable(np.zeros(shape, np.float32), name=f"w{i}")
            _, g = opt.create_graph(var, var.spec, lr=1e-3, weight_decay=0.0, bias_correction=False)
            graphs.append(g.graph)
    assert len({id(g._g) for g in graphs}) == 5
    assert opt._graph_cache.hits == 3 and opt._graph_cache.misses == 5
    # keyword order and explicit defaults change the key, as in popxl.addons
    with ir.main_graph:
        var = popxl.variable(np.zeros((10,), np.float32))
        _, g1 = opt.create_graph(var, var.spec, weight_decay=0.0, lr=1e-3, bias_correction=False)
    assert g1.graph._g is not graphs[-1]._g


def test_no_cache_builds_every_time():
    ir = popxl.Ir()
    opt = _Adam()
    with ir.main_graph:
        var = popxl.variable(np.zeros((4,), np.float32))
        g1 = opt.create_graph(var, var.spec, lr=1e-3)[1]
        g2 = opt.create_graph(var, var.spec, lr=1e-3)[1]
    assert g1.graph.name == "_Adam_subgraph(0)" and g2.graph.name == "_Adam_subgraph(1)"
