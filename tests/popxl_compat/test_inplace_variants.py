"""In-place variants: relu_/exp_/gelu_/geluerf_/swish_/add_ write their input (compiled == interpreter ==
numpy); view ops read like their out-of-place kinds and refuse a write through the view."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.ops import OpError
from compiler.popxl import ops

X = np.array([-1.5, -0.25, 0.0, 0.5, 2.0], np.float32)
CASES = {
    "relu_": (ops.relu_, lambda x: np.maximum(x, 0)),
    "exp_": (ops.exp_, np.exp),
    "gelu_": (ops.gelu_, None),
    "geluerf_": (ops.geluerf_, None),
    "swish_": (ops.swish_, lambda x: x / (1 + np.exp(-x))),
    "add_": (lambda t: ops.add_(t, t), lambda x: x + x),
}


def _build(fn):
    ir = popxl.Ir()
    with ir.main_graph:
        v = popxl.variable(X, name="v")
        out = fn(v)
        assert out._value.storage == v._value.storage  # the result is the next version of v
        d = popxl.d2h_stream(X.shape, popxl.float32, "y")
        ops.host_store(d, v + 0.0)  # a read through the old handle sees the update
    return ir


@pytest.mark.parametrize("name", sorted(CASES))
def test_inplace_variant_writes_its_input(name, matches_reference):
    fn, want = CASES[name]
    matches_reference(lambda: _build(fn))
    if want is not None:
        with popxl.Session(_build(fn), "cpu") as s:
            out = s.run()
        np.testing.assert_allclose(next(iter(out.values())), want(X), rtol=1e-5)


def test_write_through_a_view_is_refused():
    ir = popxl.Ir()
    with ir.main_graph:
        v = popxl.variable(np.ones((2, 3), np.float32), name="v")
        t = ops.transpose_(v)
        with pytest.raises(OpError, match="aliases"):
            ops.var_updates.accumulate_(t, t)
        with pytest.raises(OpError, match="transpose"):
            ops.relu_(v)


def test_views_read_as_copies(matches_reference):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            v = popxl.variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="v")
            parts = [ops.transpose_(v), ops.reshape_(v, (3, 2)), ops.flatten_(v), ops.detach_(v),
                     ops.slice_(v, start=1, axis=1), ops.concat_([v, v], axis=0)]
            for i, p in enumerate(parts):
                ops.host_store(popxl.d2h_stream(p.shape, p.dtype, f"p{i}"), p)
        return ir
    matches_reference(build, exact=True)
