"""Slicing, concat, gather and Tensor.__getitem__ compute what numpy computes (compiled and interpreted)."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops

A = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
KEYS = {"int": 1, "slice": np.s_[1:3], "neg_step": np.s_[::-2], "mixed": np.s_[2, 1:4:2, -1],
        "negative_int": np.s_[-1, :, 1:-1]}


@pytest.mark.parametrize("key", sorted(KEYS))
def test_getitem_slices_like_numpy(key, matches_reference):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            y = popxl.variable(A, name="a")[KEYS[key]]
            ops.host_store(popxl.d2h_stream(y.shape, y.dtype, "y"), y)
        return ir
    matches_reference(build, exact=True)
    with popxl.Session(build(), "cpu") as s:
        got = next(iter(s.run().values()))
    np.testing.assert_array_equal(got, A[KEYS[key]])


def test_getitem_gathers_and_masks():
    ir = popxl.Ir()
    with ir.main_graph:
        a = popxl.variable(A, name="a")
        g = a[[[2, 0], [-1, 1]]]
        m = a[np.array([True, False, True, False, True])]  # broadcast mask: False -> 0, shape kept
        for n, t in (("g", g), ("m", m)):
            ops.host_store(popxl.d2h_stream(t.shape, t.dtype, n), t)
    with popxl.Session(ir, "cpu") as s:
        out = {k.name: v for k, v in s.run().items()}
    np.testing.assert_array_equal(out["g"], A[[[2, 0], [-1, 1]]])
    np.testing.assert_array_equal(out["m"], np.where([True, False, True, False, True], A, 0))


@pytest.mark.parametrize("key", ["a", True, 1.5])
def test_bad_keys_raise_type_error(key):
    with popxl.Ir().main_graph:
        x = popxl.variable(np.arange(3))
        with pytest.raises(TypeError):
            x[key]


def test_concat_and_gather_ops(matches_reference):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            a = popxl.variable(A, name="a")
            c = ops.concat([a, a * 2.0], axis=2)
            g = ops.gather(a, popxl.constant(np.array([3, 0, 3], np.int32)), axis=1)
            for n, t in (("c", c), ("g", g)):
                ops.host_store(popxl.d2h_stream(t.shape, t.dtype, n), t)
        return ir
    matches_reference(build, exact=True)


def test_gather_out_of_range_is_reported():
    ir = popxl.Ir()
    with ir.main_graph:
        g = ops.gather(popxl.variable(A), popxl.constant(np.array([4], np.int32)), axis=0)
        ops.host_store(popxl.d2h_stream(g.shape, g.dtype, "g"), g)
    with pytest.raises(IndexError, match="gather"):
        with popxl.Session(ir, "cpu") as s:
            s.run()
