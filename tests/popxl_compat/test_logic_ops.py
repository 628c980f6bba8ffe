"""ceil, fmod (%), logical and/or/not (&, |, ~), isnan/isinf/isfinite, swish, log2 against numpy."""
from __future__ import annotations

import numpy as np

from compiler import popxl
from compiler.popxl import ops

X = np.array([-2.5, -1.0, 0.0, 1.5, 7.25, np.inf, np.nan], np.float32)
I = np.array([-7, 7, 5, -5, 9, 0, 1], np.int32)


def test_against_numpy(matches_reference):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x, i = popxl.variable(X, name="x"), popxl.variable(I, name="i")
            outs = {"ceil": ops.ceil(x), "fmod": x % 2.0, "ifmod": i % 3, "and": (x > 0.0) & (x < 2.0),
                    "or": (x > 1.0) | (x < -1.0), "not": ~(x > 0.0), "isnan": ops.isnan(x), "isinf": ops.isinf(x),
                    "isfinite": ops.isfinite(x), "log2": ops.log2(ops.abs(x) + 1.0), "swish": ops.swish(x)}
            for k, t in outs.items():
                ops.host_store(popxl.d2h_stream(t.shape, t.dtype, k), t)
        return ir
    matches_reference(build)
    with popxl.Session(build(), "cpu") as s:
        got = {k.name: v for k, v in s.run().items()}
    with np.errstate(all="ignore"):
        want = {"ceil": np.ceil(X), "fmod": np.fmod(X, 2.0), "ifmod": np.fmod(I, 3), "and": (X > 0) & (X < 2),
                "or": (X > 1) | (X < -1), "not": ~(X > 0), "isnan": np.isnan(X), "isinf": np.isinf(X),
                "isfinite": np.isfinite(X), "log2": np.log2(np.abs(X) + 1), "swish": X / (1 + np.exp(-X))}
    for k, w in want.items():
        np.testing.assert_allclose(got[k], w.astype(got[k].dtype), rtol=1e-6, err_msg=k)


def test_logic_ops_cast_to_bool():
    """As PopXL, non-bool operands are cast to bool (nonzero -> True)."""
    ir = popxl.Ir()
    with ir.main_graph:
        i = popxl.variable(I, name="i")
        outs = {"and": ops.logical_and(i, 1), "or": ops.logical_or(i, False), "not": ops.logical_not(i)}
        for k, t in outs.items():
            assert t.dtype == popxl.bool
            ops.host_store(popxl.d2h_stream(t.shape, t.dtype, k), t)
    with popxl.Session(ir, "cpu") as s:
        got = {k.name: v for k, v in s.run().items()}
    np.testing.assert_array_equal(got["and"], I != 0)
    np.testing.assert_array_equal(got["or"], I != 0)
    np.testing.assert_array_equal(got["not"], I == 0)
