"""Session runtime functions need `with session:`; host_store builds inside a subgraph (the Session refuses
it); the misuse errors carry PopXL's words; slice_ of nothing is the input; a bad VariableFactory callable."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import addons, popxl
from compiler.popxl import ops


def _accumulating_session(device: str = "cpu"):
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.float32(2.0), name="w")
        ops.var_updates.accumulate_(w, popxl.constant(np.float32(3.0)))
    return popxl.Session(ir, device), w


def test_runtime_functions_need_an_attached_session():
    s, w = _accumulating_session()
    for fn in (s.run, s.weights_from_host, s.weights_to_host, lambda: s.run_with_outputs({}, {})):
        with pytest.raises(ValueError, match="Must be attached"):
            fn()
    s.write_variable_data(w, np.float32(1.0))  # allowed detached, as PopXL
    assert s.get_tensor_data(w) == 1.0
    with s:
        s.run()
        s.weights_to_host()
    assert s.get_tensor_data(w) == 4.0


def test_misuse_errors_name_the_tensor_type():
    ir = popxl.Ir()
    with ir.main_graph:
        c = popxl.constant(np.ones(3, np.float32), name="c")
        v = popxl.variable(np.ones(3, np.float32), name="v")
        act = c + v
    s = popxl.Session(ir, "interpreter")
    with pytest.raises(TypeError, match="is not of type Constant or Variable"):
        s.get_tensor_data(act)
    with s, pytest.raises(TypeError, match=f"^Tensor {c.id} is not of type"):
        s.write_variable_data(c, np.zeros(3, np.float32))


def test_host_store_builds_inside_a_subgraph_and_the_session_refuses_it():
    """PopXL builds it; here host transfers happen in the main graph only, and the Session says so."""
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.arange(3, dtype=np.float32), name="x")
        d = popxl.d2h_stream((3,), popxl.float32, name="doubled")

        def body(t):
            ops.host_store(d, t + t)
            return t * 3.0

        g = ir.create_graph(body, x)
        ops.call(g, x)
    assert "HostStore" in [op.kind for op in g._g.ops]
    with pytest.raises(Exception, match="outside the main graph"):
        popxl.Session(ir, "interpreter")


def test_slice_inplace_of_nothing_is_the_input():
    with popxl.Ir().main_graph as g:
        t = popxl.variable(np.ones((2, 3), np.float32))
        assert ops.slice_(t, axis=0) is t and ops.slice(t, axis=0) is t
        assert len(g.tensors) == 1


def test_variable_factory_with_a_broken_callable():
    with pytest.raises(ValueError, match="data_iter did not give the initial data"):
        addons.VariableFactory(lambda: sum(1))
