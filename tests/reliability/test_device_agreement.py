"""Where the interpreter and the cpu backend used to disagree, there is now one meaning (or a refusal
when the program is built): bfloat16/float16 reductions accumulate in float32; float -> integer casts
truncate, saturate and send NaN to 0; in-place writes of constants, two host_stores to one stream and
a max over an empty axis are refused."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from compiler import popxl
from compiler.ops.registry import OpError
from compiler.popxl import ops

DEVICES = ["interpreter", "cpu"]


def _outputs(build, device: str) -> dict[str, np.ndarray]:
    ir = popxl.Ir()
    with ir.main_graph:
        outs = build()
        for k, t in enumerate(outs):
            ops.host_store(popxl.d2h_stream(t.shape, t.dtype, name=f"o{k}"), t)
    s = popxl.Session(ir, device)
    with s:
        return {k.name: v for k, v in s.run().items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [popxl.bfloat16, popxl.float16])
def test_low_precision_reductions_accumulate_in_float32(device, dtype):
    def build():
        c = ops.cast(popxl.variable(np.ones(20000, np.float32), name="w"), dtype)
        row = ops.reshape(c, (1, 20000))
        return [ops.mean(c), ops.sum(ops.softmax(row, axis=-1))]

    got = _outputs(build, device)
    # in bfloat16 arithmetic the running sum of ones sticks at 256 (mean 0.0128); softmax rows summed to 75
    assert float(got["o0"]) == 1.0
    assert abs(float(got["o1"]) - 1.0) < 0.01


SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e10, -1e10, -3.7, 3.7, 2.5e9, 300.0, -200.0, 1e19, -0.0])


@pytest.mark.parametrize("dst", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"])
@pytest.mark.parametrize("src", ["float64", "float32", "float16", "bfloat16"])
def test_float_to_int_casts_saturate_and_send_nan_to_zero_on_both_devices(src, dst):
    npsrc = ml_dtypes.bfloat16 if src == "bfloat16" else np.dtype(src)
    with np.errstate(over="ignore"):
        data = SPECIAL.astype(npsrc)
    info = np.iinfo(dst)
    f = data.astype(np.float64)
    want = [0 if np.isnan(x) else info.max if x >= float(info.max) else info.min if x <= float(info.min)
            else int(np.trunc(x)) for x in f]

    def build():
        w = popxl.variable(data, dtype=getattr(popxl, src), name="w")
        return [ops.cast(w, getattr(popxl, dst))]

    for device in DEVICES:
        got = _outputs(build, device)["o0"]
        assert got.dtype == np.dtype(dst) and got.tolist() == want, (device, got.tolist(), want)


def test_a_constant_cannot_be_updated_in_place():
    ir = popxl.Ir()
    with ir.main_graph, pytest.raises(OpError, match="'c' .* is a constant"):
        c = popxl.constant(np.ones(4, np.float32), name="c")
        ops.var_updates.accumulate_(c, popxl.variable(np.ones(4, np.float32)))


def test_a_constant_cannot_be_passed_to_a_by_reference_input():
    ir = popxl.Ir()

    def bump():
        t = popxl.graph_input((4,), popxl.float32, "t", by_ref=True)
        ops.var_updates.accumulate_(t, popxl.constant(np.ones(4, np.float32)))

    with ir.main_graph:
        g = ir.create_graph(bump)
        c = popxl.constant(np.ones(4, np.float32), name="c")
        with pytest.raises(OpError, match="is a constant"):
            ops.call(g, c)
    assert ir.core.constants and all(np.array_equal(a, np.ones(4)) for a in ir.core.constants.values())


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_two_host_stores_to_one_stream_are_two_host_transfers(device):
    """As in PopXL (the data-parallel tutorial stores the loss once per accumulated micro-batch): the k-th
    host_store of a stream in one execution sends that run's k-th transfer."""
    ir = popxl.Ir()
    with ir.main_graph:
        y = popxl.d2h_stream((2,), popxl.float32, name="y")
        w = popxl.variable(np.ones(2, np.float32))
        ops.host_store(y, w)
        ops.host_store(y, w * 2)
    with pytest.raises(ValueError, match="num_host_transfers = 1 does not fit the program"):
        popxl.Session(ir, device).__enter__().run()
    ir.num_host_transfers = 4  # two executions of the main graph
    sess = popxl.Session(ir, device)
    with sess:
        np.testing.assert_array_equal(sess.run()[y], [[1, 1], [2, 2], [1, 1], [2, 2]])


@pytest.mark.parametrize("kind", ["max", "min"])
def test_max_and_min_over_an_empty_axis_are_refused(kind):
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.ones((3, 0), np.float32))
        with pytest.raises(OpError, match="length 0"):
            getattr(ops, kind)(w, axis=1)
        assert getattr(ops, kind)(w, axis=0).shape == (0,)  # reducing the other axis is fine
