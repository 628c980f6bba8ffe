"""Bad input gets a clear error; host streams and num_host_transfers work."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.ops import OpError
from compiler.popxl import ops


def test_shape_mismatch_names_both_tensors_and_source_line():
    ir = popxl.Ir()
    with ir.main_graph:
        a = popxl.variable(np.ones((2, 3), np.float32), name="alpha")
        b = popxl.variable(np.ones((4,), np.float32), name="beta")
        with pytest.raises(OpError) as e:
            ops.add(a, b)
    msg = str(e.value)
    assert "(2, 3)" in msg and "(4,)" in msg and "'alpha'" in msg and "'beta'" in msg
    assert "test_errors_and_streams.py" in msg


def test_dtype_mismatch_names_both_tensors():
    ir = popxl.Ir()
    with ir.main_graph:
        a = popxl.variable(np.ones(3, np.float32), name="alpha")
        b = popxl.variable(np.ones(3, np.float16), name="beta")
        with pytest.raises(OpError, match=r"float32.*float16.*ops.cast[\s\S]*'alpha'.*'beta'"):
            ops.mul(a, b)
        t = popxl.variable(np.ones((2, 2), np.float32), name="t")
        x = popxl.variable(np.ones((3,), np.float32), name="x")
        with pytest.raises(OpError, match=r"same shape"):
            ops.var_updates.accumulate_(t, x)


def test_variable_outside_main_graph():
    ir = popxl.Ir()

    def sub(x: popxl.Tensor):
        popxl.variable(np.ones(3), name="inner")

    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32))
        with pytest.raises(ValueError, match="only be created in the main graph"):
            ir.create_graph(sub, x)


def test_missing_call_input_and_wrong_spec():
    ir = popxl.Ir()

    def f(x: popxl.Tensor, y: popxl.Tensor):
        return x + y

    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32), name="x")
        g = ir.create_graph(f, x, x)
        with pytest.raises(ValueError, match="Not enough inputs.*'y'"):
            ops.call(g, x)
        z = popxl.variable(np.ones(4, np.float32), name="z")
        with pytest.raises(ValueError, match=r"expects \[\(3,\) float32\], got 'z' \[\(4,\) float32\]"):
            ops.call(g, x, z)


def test_hyperparameter_combinations_popart_rejects():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32))
        y = popxl.variable(np.ones(3, np.float32))
        with pytest.raises(OpError, match="Unsupported tensor scale0 with non-tensor scale1"):
            ops.scaled_add(x, y, a=popxl.constant(2.0), b=1.0)
        with pytest.raises(OpError, match="Unsupported scale0"):
            ops.scaled_add_(x, y, a=2.0, b=popxl.constant(2.0))
        with pytest.raises(ValueError, match="Bias correction requires both beta1 and beta2"):
            ops.var_updates.adam_updater(x, y, time_step=popxl.variable(0.0), beta1=0.9, weight_decay=0.0)
        with pytest.raises(ValueError, match="AdaMax requires time_step"):
            ops.var_updates.adamax_updater(x, y, weight_decay=0.0)
        with pytest.raises(ValueError, match="Weight decay requires weight"):
            ops.var_updates.adam_updater(x, y, weight_decay=0.1, beta1=0.9, beta2=0.9)
        with pytest.raises(OpError, match="f=0.0"):
            ops.var_updates.accumulate_(x, y, f=0.0)


def _stream_ir(nht: int):
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream((2, 3), popxl.float32, name="x")
        d = popxl.d2h_stream((2, 3), popxl.float32, name="y")
        acc = popxl.variable(np.zeros((2, 3), np.float32), name="acc")
        x = ops.host_load(h, "x")
        ops.var_updates.accumulate_(acc, x)
        ops.host_store(d, x * 2.0)
    ir.num_host_transfers = nht
    return ir, h, d, acc


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
@pytest.mark.parametrize("nht", [1, 3])
def test_streams_and_num_host_transfers(device, nht):
    ir, h, d, acc = _stream_ir(nht)
    data = np.arange(nht * 6, dtype=np.float32).reshape((nht, 2, 3) if nht > 1 else (2, 3))
    sess = popxl.Session(ir, device)
    with sess:
        out = sess.run({h: data})
    np.testing.assert_array_equal(out[d], data * 2)
    want = data.sum(0) if nht > 1 else data
    np.testing.assert_array_equal(sess.get_tensor_data(acc), want)


def test_run_input_errors():
    ir, h, d, acc = _stream_ir(1)
    sess = popxl.Session(ir, "interpreter")
    with sess:
        with pytest.raises(ValueError, match=r"shape \(2, 3\).*got \(3, 2\)"):
            sess.run({h: np.zeros((3, 2), np.float32)})
        with pytest.raises(TypeError, match="needs dtype float32, got int32"):
            sess.run({h: np.zeros((2, 3), np.int32)})
        sess.run({h: np.zeros((2, 3), np.float64)})  # 64-bit host data is downcast, as PopXL
        with pytest.raises(ValueError, match="no data given for stream"):
            sess.run({})
        with pytest.raises(TypeError, match="keys must be host-to-device streams"):
            sess.run({"x": np.zeros((2, 3), np.float32)})
        with pytest.raises(ValueError, match="write_variable_data"):
            sess.write_variable_data(acc, np.zeros((2, 2), np.float32))


def test_weights_move_between_sessions():
    """Weights read from one session (get_tensors_data) and written into another (write_variables_data)
    continue there; each session keeps its own copy."""
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream((2, 3), popxl.float32, name="x")
        acc = popxl.variable(np.zeros((2, 3), np.float32), name="acc")
        cnt = popxl.variable(np.zeros((), np.float32), name="count")
        ops.var_updates.accumulate_(acc, ops.host_load(h, "x"))
        ops.var_updates.accumulate_(cnt, popxl.constant(np.float32(1)))
    ones = np.ones((2, 3), np.float32)
    s1 = popxl.Session(ir, "interpreter")
    s1.write_variable_data(acc, np.full((2, 3), 5.0, np.float32))
    with s1:
        s1.run({h: ones})
    moved = s1.get_tensors_data([acc, cnt])
    np.testing.assert_array_equal(moved[acc], np.full((2, 3), 6.0, np.float32))
    s2 = popxl.Session(ir, "cpu")
    np.testing.assert_array_equal(s2.get_tensor_data(acc), np.zeros((2, 3), np.float32))  # not s1's weights
    s2.write_variables_data(moved)
    with s2:
        s2.run({h: ones})
        s2.run({h: ones})
    np.testing.assert_array_equal(s2.get_tensor_data(acc), np.full((2, 3), 8.0, np.float32))
    assert s2.get_tensor_data(cnt) == 3
    np.testing.assert_array_equal(s1.get_tensor_data(acc), np.full((2, 3), 6.0, np.float32))  # s1 untouched
    assert s1.get_tensor_data(cnt) == 1
