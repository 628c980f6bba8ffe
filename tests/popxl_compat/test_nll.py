"""ops.nll_loss is one Nll op (as PopXL builds it): values equal numpy's for every reduction, ignore_index and
log_prob, compiled equal to the interpreter, ONNX equal to the interpreter; bad labels fail loudly."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops

PROBS = np.random.default_rng(3).dirichlet(np.ones(6), (2, 5)).astype(np.float32)
LABELS = np.array([[1, 3, 0, 5, 3], [2, 3, 4, 1, 0]], np.int32)
COMBOS = list(itertools.product(["mean", "sum", "none"], [None, 3], [False, True]))


def _program(reduction, ignore, log_prob, dtype=np.float32, labels=LABELS):
    ir = popxl.Ir()
    with ir.main_graph:
        p = popxl.variable(PROBS.astype(dtype), name="p", downcast=False)
        lab = popxl.variable(labels, name="labels", downcast=False)
        y = ops.nll_loss(p, lab, ignore_index=ignore, reduction=reduction, log_prob=log_prob)
        d = popxl.d2h_stream(y.shape, y.dtype, name="y")
        ops.host_store(d, y)
    return ir


def _run(ir, device, level=2):
    with popxl.Session(ir, device, options=CompileOptions(level=level, use_cache=False)) as s:
        return next(iter(s.run().values()))


def _numpy(reduction, ignore, log_prob):
    picked = np.take_along_axis(PROBS.astype(np.float64), LABELS[..., None], -1)[..., 0]
    per = -(picked if log_prob else np.log(picked))
    keep = np.ones_like(LABELS, bool) if ignore is None else LABELS != ignore
    per = np.where(keep, per, 0.0)
    if reduction == "none":
        return per
    return per.sum() / (max(keep.sum(), 1) if reduction == "mean" else 1)


def test_one_nll_op():
    g = _program("mean", None, False).main_graph
    assert [op.kind for op in g._g.ops if op.kind != "HostStore"] == ["Nll"]
    assert len([t for t in g.tensors if t.name != "y"]) >= 3


@pytest.mark.parametrize("reduction,ignore,log_prob", COMBOS)
def test_values_match_numpy_and_compiled_matches_interpreter(reduction, ignore, log_prob):
    want = _numpy(reduction, ignore, log_prob)
    ref = _run(_program(reduction, ignore, log_prob), "interpreter", 0)
    np.testing.assert_allclose(ref, want.astype(np.float32), rtol=2e-6, atol=1e-7)
    for level in (0, 2):
        np.testing.assert_allclose(_run(_program(reduction, ignore, log_prob), "cpu", level), ref, rtol=2e-6,
                                   atol=1e-7, err_msg=f"level {level}")


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_dtypes(dtype):
    ref = _run(_program("mean", 3, False, dtype), "interpreter", 0)
    assert ref.dtype == dtype
    np.testing.assert_allclose(_run(_program("mean", 3, False, dtype), "cpu"), ref, rtol=1e-3 if dtype == np.float16
                               else 1e-12)


def test_float_labels_truncate():
    flt = LABELS.astype(np.float32) + 0.75
    a = _run(_program("none", None, False, labels=flt), "cpu")
    np.testing.assert_array_equal(a, _run(_program("none", None, False), "cpu"))


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_label_out_of_range_fails_the_run(device):
    bad = LABELS.copy()
    bad[1, 2] = 6
    with pytest.raises(Exception, match="label is outside"):
        _run(_program("sum", None, False, labels=bad), device)


def test_bad_arguments():
    with popxl.Ir().main_graph:
        p = popxl.variable(PROBS)
        lab = popxl.variable(LABELS)
        with pytest.raises(ValueError, match="reduction"):
            ops.nll_loss(p, lab, reduction="foo")
        with pytest.raises(ValueError, match="shape of probs"):
            ops.nll_loss(p, lab[0])


def test_onnx_export_matches_interpreter():
    pytest.importorskip("onnxruntime")
    import sys
    from pathlib import Path

    from compiler.backends.onnx import to_model
    from compiler.driver import optimise

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "onnx"))
    from ortrun import run_steps

    for reduction, ignore, log_prob in COMBOS:
        model = to_model(optimise(_program(reduction, ignore, log_prob), CompileOptions(level=0)))
        (got,) = run_steps(model, [{}])[1]
        want = _run(_program(reduction, ignore, log_prob), "interpreter", 0)
        np.testing.assert_allclose(got["y"], want, rtol=2e-6, atol=1e-7, err_msg=f"{reduction} {ignore} {log_prob}")
