"""Runs that fail: a bad host-fed index is refused before anything changes (on both devices); after a
run that failed partway the session reports the state the next run continues from; an exception inside
`with session:` keeps the completed steps. Plus the silent wrap-arounds that are now errors."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops

DEVICES = ["interpreter", "cpu"]


def _training_step():
    """w += 1 first (an update before the index is used), then the cross-entropy gradient of host-fed labels."""
    ir = popxl.Ir()
    with ir.main_graph:
        lab = popxl.h2d_stream((4,), popxl.int32, name="labels")
        w = popxl.variable(np.zeros((4, 5), np.float32), name="w")
        probs = popxl.variable(np.full((4, 5), 0.2, np.float32), name="probs")
        ops.var_updates.accumulate_(w, popxl.constant(np.ones((4, 5), np.float32)))
        _, dx = ops.nll_loss_with_softmax_grad(probs, ops.reshape(ops.host_load(lab), (4,)))
        ops.var_updates.accumulate_(w, dx)
    return ir, lab, w


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("label", [-1, 5, 2 ** 31 - 1])
def test_a_bad_host_fed_label_changes_nothing(device, label):
    ir, lab, w = _training_step()
    s = popxl.Session(ir, device)
    with s:
        s.run({lab: np.array([0, 1, 2, 3], np.int32)})
        before = s.get_tensor_data(w)
        with pytest.raises(IndexError, match=r"element 2 is .*outside \[0, 5\).*before any variable changed"):
            s.run({lab: np.array([0, 1, label, 3], np.int32)})
        assert np.array_equal(s.get_tensor_data(w), before)
        s.run({lab: np.array([0, 1, 2, 3], np.int32)})  # and the session goes on from there
        assert np.allclose(s.get_tensor_data(w), 2 * before)


def test_ignore_index_is_not_out_of_range():
    ir = popxl.Ir()
    with ir.main_graph:
        lab = popxl.h2d_stream((2,), popxl.int32, name="labels")
        probs = popxl.variable(np.full((2, 3), 0.5, np.float32), name="probs")
        out = popxl.variable(np.zeros((2, 3), np.float32), name="out")
        ops.var_updates.copy_var_update_(out, ops.nll_loss_with_softmax_grad(probs, ops.host_load(lab),
                                                                             ignore_index=-100)[1])
    for device in DEVICES:
        with popxl.Session(ir, device) as s:
            s.run({lab: np.array([-100, 1], np.int32)})
            assert np.all(s.get_tensor_data(out)[0] == 0)


@pytest.mark.parametrize("device", DEVICES)
def test_after_a_run_that_failed_partway_the_session_reports_the_real_state(device):
    """Indices computed on the device cannot be checked beforehand: whatever the failed run changed is
    what get_tensor_data reports and what the next run starts from."""
    ir = popxl.Ir()
    with ir.main_graph:
        t = popxl.variable(np.zeros((4, 3), np.float32), name="t")
        w = popxl.variable(np.zeros(2, np.float32), name="w")
        w1 = ops.var_updates.accumulate_(w, popxl.constant(np.ones(2, np.float32)))
        i = ops.cast(w1, popxl.int32) + 3  # computed after the update: 4, out of range for t's 4 rows
        ops.var_updates.sparse_accumulate_(t, popxl.variable(np.ones((2, 3), np.float32)), i, f=1.0)
    s = popxl.Session(ir, device)
    with s:
        for k in (1, 2):
            with pytest.raises(IndexError):
                s.run()
            assert np.array_equal(s.get_tensor_data(w), [k, k])  # the update before the failure happened
    assert np.array_equal(s.get_tensor_data(w), [2, 2])


@pytest.mark.parametrize("device", DEVICES)
def test_an_exception_inside_with_session_keeps_completed_steps(device):
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.zeros(2, np.float32), name="w")
        ops.var_updates.accumulate_(w, popxl.constant(np.ones(2, np.float32)))
    s = popxl.Session(ir, device)
    with pytest.raises(KeyboardInterrupt):
        with s:
            for step in range(10):
                if step == 3:
                    raise KeyboardInterrupt  # Ctrl-C in a training loop
                s.run()
    assert np.array_equal(s.get_tensor_data(w), [3, 3])


def test_host_data_that_would_wrap_around_is_refused():
    ir = popxl.Ir()
    with ir.main_graph:
        with pytest.raises(ValueError, match="does not fit int32.*dtype=popxl.int64"):
            popxl.variable(np.array([2 ** 40]))
        with pytest.raises(ValueError, match="does not fit uint8"):
            popxl.constant(np.array([-1]), dtype=popxl.uint8)
        with pytest.raises(ValueError, match="would become infinite"):
            popxl.variable(np.array([1e300]))
        with pytest.raises(ValueError, match="would become infinite"):
            popxl.variable(np.array([70000]), dtype=popxl.float16)
        assert popxl.variable(np.array([2 ** 40]), dtype=popxl.int64).dtype == popxl.int64


def test_a_stream_too_large_to_address_is_refused():
    ir = popxl.Ir()
    with ir.main_graph, pytest.raises(ValueError, match="more than any host can address"):
        popxl.h2d_stream((2 ** 32, 2 ** 32), popxl.float32, name="huge")


def test_a_tensor_from_another_ir_names_both_irs():
    a, b = popxl.Ir(), popxl.Ir()
    with a.main_graph:
        t = popxl.variable(np.ones(3, np.float32), name="t")
    with b.main_graph, pytest.raises(ValueError, match="'t' belongs to another Ir .* than the one being built"):
        ops.add(t, t)
