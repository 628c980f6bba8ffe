"""NativeExecutable (runtime/native_exec.py) at its boundary: overlapping buffers, arrays that change between calls, runtime index
checks (labels, sparse indices) raised as Python errors like the interpreter's, concurrent runs, and a
cached object reporting the current program's names."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.driver import compile as compile_ir
from compiler.popxl import ops


def _axpy():
    """y <- y + 2x (y written in place, x read only), plus a read-only z."""
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(100, np.float32), name="x")
        y = popxl.variable(np.zeros(100, np.float32), name="y")
        z = popxl.variable(np.ones(100, np.float32), name="z")
        ops.var_updates.copy_var_update_(y, y + x * 2.0 + z * 0.0)
    ids = {ir.core.main.values[v].name: v for v in ir.core.variables}
    return ir, ids


@pytest.fixture(scope="module")
def axpy():
    ir, ids = _axpy()
    return compile_ir(ir, CompileOptions(use_cache=False)), ids


def test_written_variable_overlapping_another_is_refused(axpy):
    exe, ids = axpy
    a = np.ones(100, np.float32)
    with pytest.raises(ValueError, match="'x' and 'y' share memory"):
        exe.run({ids["x"]: a, ids["y"]: a, ids["z"]: np.ones(100, np.float32)}, {}, 1)
    big = np.zeros(150, np.float32)
    with pytest.raises(ValueError, match="share memory"):  # partial overlap of two views
        exe.run({ids["x"]: big[:100], ids["y"]: big[50:], ids["z"]: np.ones(100, np.float32)}, {}, 1)


def test_read_only_variables_may_share_memory(axpy):
    exe, ids = axpy
    shared, y = np.full(100, 3.0, np.float32), np.zeros(100, np.float32)
    exe.run({ids["x"]: shared, ids["y"]: y, ids["z"]: shared}, {}, 1)
    np.testing.assert_array_equal(y, np.full(100, 6.0, np.float32))


def test_arrays_may_change_between_calls(axpy):
    exe, ids = axpy
    x = np.arange(100, dtype=np.float32)
    y1, y2 = np.zeros(100, np.float32), np.ones(100, np.float32)
    z = np.ones(100, np.float32)
    exe.run({ids["x"]: x, ids["y"]: y1, ids["z"]: z}, {}, 1)
    exe.run({ids["x"]: x, ids["y"]: y2, ids["z"]: z}, {}, 2)
    np.testing.assert_array_equal(y1, 2 * x)
    np.testing.assert_array_equal(y2, 1 + 4 * x)
    with pytest.raises(ValueError, match="share memory"):  # the overlap check reruns when addresses change
        exe.run({ids["x"]: y2, ids["y"]: y2, ids["z"]: z}, {}, 1)


@pytest.mark.parametrize("bad", [True, 2.5, "3", None])
def test_iterations_must_be_a_positive_integer(axpy, bad):
    exe, ids = axpy
    arrays = {v: np.zeros(100, np.float32) for v in ids.values()}
    with pytest.raises(ValueError, match="iterations"):
        exe.run(arrays, {}, bad)
    exe.run(arrays, {}, np.int64(2))


def test_concurrent_runs_of_one_executable(axpy):
    exe, ids = axpy
    xs = [np.full(100, float(k), np.float32) for k in range(8)]
    ys = [np.zeros(100, np.float32) for _ in range(8)]

    def work(k):
        for _ in range(50):
            exe.run({ids["x"]: xs[k], ids["y"]: ys[k], ids["z"]: xs[k]}, {}, 1)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(8):
        np.testing.assert_array_equal(ys[k], np.full(100, 100.0 * k, np.float32))


def _nll_program(labels: np.ndarray):
    ir = popxl.Ir()
    with ir.main_graph:
        s = popxl.h2d_stream(labels.shape, popxl.int32, "labels")
        p = popxl.variable(np.full((4, 5), 0.2, np.float32), name="probs")
        loss, dx = ops.nll_loss_with_softmax_grad(p, ops.host_load(s))
        out = popxl.variable(np.zeros((4, 5), np.float32), name="dx_out")
        ops.var_updates.copy_var_update_(out, dx)
    return ir, s


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
@pytest.mark.parametrize("label", [5, -6, 2**30])
def test_label_out_of_range_is_an_index_error(device, label):
    labels = np.array([0, label, 1, 2], np.int32)
    ir, s = _nll_program(labels)
    with popxl.Session(ir, device) as sess, pytest.raises(IndexError):
        sess.run({s: labels})


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_negative_labels_are_out_of_range_on_the_device(device):
    """Labels held in a variable reach the kernel unchecked by the Session: the device refuses -1 itself
    (labels are class numbers in [0, classes), as in torch and PopART; no numpy-style wrap-around)."""
    ir = popxl.Ir()
    with ir.main_graph:
        p = popxl.variable(np.full((4, 5), 0.2, np.float32), name="probs")
        lab = popxl.variable(np.array([0, -1, 1, 2], np.int32), name="labels")
        out = popxl.variable(np.zeros((4, 5), np.float32), name="dx_out")
        ops.var_updates.copy_var_update_(out, ops.nll_loss_with_softmax_grad(p, lab)[1])
    with popxl.Session(ir, device) as sess, pytest.raises(IndexError, match="outside"):
        sess.run()


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_sparse_index_out_of_range_is_an_index_error(device):
    ir = popxl.Ir()
    with ir.main_graph:
        t = popxl.variable(np.zeros((4, 3), np.float32), name="t")
        x = popxl.variable(np.ones((2, 3), np.float32), name="x")
        i = popxl.variable(np.array([1, 4], np.int32), name="i")
        ops.var_updates.sparse_accumulate_(t, x, i, f=1.0)
    with popxl.Session(ir, device) as sess, pytest.raises(IndexError):
        sess.run()


def test_cached_object_reports_the_current_names(tmp_path):
    def build(prefix):
        ir = popxl.Ir()
        with ir.main_graph:
            a = popxl.variable(np.zeros(8, np.float32), name=f"{prefix}_a")
            ops.var_updates.accumulate_(a, popxl.constant(np.ones(8, np.float32)))
        return ir
    opts = CompileOptions(cache_dir=str(tmp_path))
    first = compile_ir(build("old"), opts)
    second = compile_ir(build("new"), opts)
    assert not first.cache_hit and second.cache_hit
    with pytest.raises(ValueError, match="'new_a'"):
        second.run({}, {}, 1)
