"""Graph.tensors / variables / constants / inputs count what PopXL counts; hooks and context helpers."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops


def test_var_update_adds_one_tensor():
    ir = popxl.Ir()
    g = ir.main_graph
    with g:
        a = popxl.variable(np.ones(3, np.float32))
        b = popxl.constant(np.ones(3, np.float32))
        ops.var_updates.accumulate_(a, b, 0.5)  # a float factor is an attribute, not a tensor
    assert len(g.tensors) == 3 and len(g.variables) == 1 and len(g.constants) == 1


def test_adam_step_write_is_not_a_tensor():
    ir = popxl.Ir()
    g = ir.main_graph
    with g:
        m = popxl.variable(np.ones(2, np.float32))
        v = popxl.variable(np.ones(2, np.float32))
        step = popxl.variable(np.float32(0))
        ops.var_updates.adam_updater(m, v, time_step=step, beta1=0.9, beta2=0.99, weight_decay=0.0)
    assert len(g.tensors) == 4  # m, v, step, updater


def test_stream_tensors_live_in_the_main_graph():
    ir = popxl.Ir()
    g = ir.main_graph
    sg = ir.create_empty_graph("sg")
    with g, sg:
        h2d = popxl.h2d_stream((), popxl.float32)
        ops.host_load(h2d, "x")
    assert len(g.tensors) == 1 and len(sg.tensors) == 2
    assert h2d.tensor_id == h2d.name


def test_by_ref_inputs():
    def f(a: popxl.TensorByRef, b: popxl.Tensor):
        ops.var_updates.accumulate_(a, b)

    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(2, np.float32))
        g = ir.create_graph(f, x, x)
    assert g._by_ref_inputs == {g.inputs[0]}


def test_op_created_hook_sees_only_its_graph():
    ir = popxl.Ir()
    g = ir.main_graph
    seen = []
    h = g.register_op_created_hook(lambda op: seen.append(op.kind))
    with g:
        x = popxl.variable(np.ones(2, np.float32)) + 1.0
        ir.create_graph(lambda y: y * 2.0, x)
    assert seen == ["Add"]
    g.remove_op_created_hook(h)
    with g:
        x + 1.0
    assert seen == ["Add"]


def test_gmg_and_nested_irs():
    ir = popxl.Ir()
    with ir.main_graph:
        sg = ir.create_empty_graph("sg")
    with sg:
        assert popxl.gmg() == ir.main_graph
    with pytest.raises(RuntimeError, match="another Ir"):
        with ir.main_graph, popxl.Ir().main_graph:
            pass
