"""Session as PopXL: run inputs converted like PopXL (64-bit host data downcast, lists, scalars, torch),
write_variable_data takes host scalars, non-variables raise TypeError, run_with_outputs, expected_inputs."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops


def _echo(shape, dtype):
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream(shape, dtype, "x")
        d = popxl.d2h_stream(shape, dtype, "y")
        x = ops.host_load(h)  # one load: a second host_load of a stream is the next host transfer
        ops.host_store(d, x + x)
    return ir, h, d


@pytest.mark.parametrize("data,shape,dtype", [
    ([0.0, 1.0, 2.0], (3,), popxl.float32),
    (np.array([0.0, 1.5, 2.0]), (3,), popxl.float32),  # float64 -> float32
    (np.array([1, 2, 3], np.int64), (3,), popxl.int32),
    (3, (), popxl.int32),
    (0.5, (), popxl.float32),
])
def test_run_input_conversion(data, shape, dtype):
    ir, h, d = _echo(shape, dtype)
    with popxl.Session(ir, "cpu") as s:
        out = s.run({h: data})[d]
    np.testing.assert_array_equal(out, (np.asarray(data) * 2).astype(dtype.numpy))


def test_run_input_of_another_dtype_is_refused():
    ir, h, _ = _echo((3,), popxl.float16)
    with popxl.Session(ir, "cpu") as s, pytest.raises(TypeError, match="float16"):
        s.run({h: np.zeros(3, np.float32)})


def test_run_with_outputs_and_expected_inputs():
    ir, h, d = _echo((2,), popxl.float32)
    s = popxl.Session(ir, "cpu")
    assert s.expected_inputs() == [h]
    outs = s.create_host_outputs()
    with s:
        s.run_with_outputs({h: np.array([1.0, 2.0], np.float32)}, outs)
    np.testing.assert_array_equal(outs[d], [2.0, 4.0])
    with s, pytest.raises(ValueError, match="shape"):
        s.run_with_outputs({h: np.zeros(2, np.float32)}, {d: np.zeros(3, np.float32)})


def test_variable_access_rules():
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.zeros(2, np.float32), name="w")
        c = popxl.constant(np.ones(2, np.float32), name="c")
        x = w + c
    s = popxl.Session(ir, "cpu")
    s.write_variable_data(w, [1, 2])  # array-likes take the variable's dtype
    np.testing.assert_array_equal(s.get_tensor_data(w), np.array([1, 2], np.float32))
    np.testing.assert_array_equal(s.get_tensor_data(c), [1, 1])
    with pytest.raises(TypeError):
        s.get_tensor_data(x)
    with pytest.raises(TypeError):
        s.write_variable_data(c, np.zeros(2, np.float32))
    with pytest.raises(ValueError):
        s.write_variable_data(w, np.zeros(3, np.float32))


def test_scalar_variable_write():
    ir = popxl.Ir()
    with ir.main_graph:
        step = popxl.variable(0.0, name="step")
    s = popxl.Session(ir, "cpu")
    s.write_variable_data(step, 7)
    assert s.get_tensor_data(step) == np.float32(7)


def test_strides_and_numpy_matmul():
    ir = popxl.Ir()
    with ir.main_graph:
        t = popxl.variable(np.ones((2, 3), np.float32))
        assert t.strides() == (12, 4) and t.strides((4, 5, 6)) == (120, 24, 4)
        y = np.ones((4, 2), np.float32) @ t  # numpy defers to Tensor.__rmatmul__
        assert isinstance(y, popxl.Tensor) and y.shape == (4, 3)
