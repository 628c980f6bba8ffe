"""PopXL's build-time dtype rules and None defaults: refuse only what PopXL refuses."""
from __future__ import annotations

import numpy as np

from compiler import popxl
from compiler.popxl import ops

VU = ops.var_updates


def _run(build):
    ir = popxl.Ir()
    with ir.main_graph:
        outs = build()
        ds = []
        for i, t in enumerate(outs):
            d = popxl.d2h_stream(t.shape, t.dtype, f"o{i}")
            ops.host_store(d, t)
            ds.append(d)
    res = []
    for dev in ("cpu", "interpreter"):
        with popxl.Session(ir, dev) as s:
            o = s.run()
        res.append([o[d] for d in ds])
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)
    return res[0]


def test_integer_accumulators_build_and_run():
    def build():
        a = popxl.variable(np.array([1, 2], np.int32))
        VU.accumulate_(a, popxl.constant(np.array([3, 4], np.int32)))
        b = popxl.variable(np.array([1, 2], np.int32))
        ops.add_(b, 5)
        return [a + 0, b + 0]
    a, b = _run(build)
    np.testing.assert_array_equal(a, [4, 6])
    np.testing.assert_array_equal(b, [6, 7])


def test_where_casts_an_integer_condition():
    (y,) = _run(lambda: [ops.where(popxl.variable(np.array([1, 0, 2], np.int32)), popxl.variable(np.ones(3)),
                                   popxl.variable(np.zeros(3)))])
    np.testing.assert_array_equal(y, [1, 0, 1])


def test_none_weight_decay_is_no_decay():
    def build(wd):
        m = popxl.variable(np.full(2, 0.5, np.float32))
        v = popxl.variable(np.full(2, 0.25, np.float32))
        return [VU.adam_updater(m, v, weight_decay=wd, epsilon=1e-7)]
    np.testing.assert_array_equal(_run(lambda: build(None))[0], _run(lambda: build(0.0))[0])


def test_none_sparse_factor_is_a_plain_add():
    def build():
        t = popxl.variable(np.zeros(4, np.float32))
        VU.sparse_accumulate_(t, popxl.constant(np.array([1.0, 2.0], np.float32)),
                              popxl.constant(np.array([3, 3], np.int32)))
        return [t + 0.0]
    np.testing.assert_array_equal(_run(build)[0], [0, 0, 0, 3])


def test_adam_var_update_none_defaults():
    """learning_rate=None is PopART's value-initialised 0 (no step); max_weight_norm=None does not clip."""
    def build(lr, mwn):
        t = popxl.variable(np.ones(2, np.float32))
        x = popxl.constant(np.ones(2, np.float32))
        r1, r2 = popxl.constant(np.float32(4.0)), popxl.constant(np.float32(1.0))
        VU.adam_var_update(t, x, r1, r2, learning_rate=lr, max_weight_norm=mwn)
        return [t + 0.0]
    np.testing.assert_array_equal(_run(lambda: build(None, None))[0], [1, 1])
    np.testing.assert_allclose(_run(lambda: build(0.1, None))[0], 1 - 0.1 * 2.0)  # ratio sqrt(4)/sqrt(1)


def test_weight_check_comes_before_beta_check():
    import pytest

    with popxl.Ir().main_graph:
        m = popxl.variable(np.ones(2, np.float32))
        with pytest.raises(ValueError, match="Weight decay requires weight"):
            VU.adam_updater(m, m, time_step=popxl.variable(0.0), weight_decay=0.1)
