"""ops.sin/cos and the reductions l1/l2/logsum/logsumexp/prod: one op each as PopXL builds them, values
equal to numpy's, compiled (LLVM, levels 0 and 2) equal to the interpreter, per float dtype."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops

X = (np.random.default_rng(7).standard_normal((3, 5, 4)) * 2).astype(np.float32)
X_POS = np.abs(X) + 0.25
X_NEAR_1 = (np.abs(X) / 8 + 0.8).astype(np.float32)  # products of 60 stay in float16's range


def _lse(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


# name: (op, numpy, input, kind)
CASES = {
    "sin": (ops.sin, np.sin, X, "Sin"),
    "cos": (ops.cos, np.cos, X, "Cos"),
    "l1": (ops.l1, lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims), X, "ReduceL1"),
    "l2": (ops.l2, lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)), X, "ReduceL2"),
    "logsum": (ops.logsum, lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)), X_POS,
               "ReduceLogSum"),
    "logsumexp": (ops.logsumexp, _lse, X * 30, "ReduceLogSumExp"),  # exp(x) alone would overflow
    "prod": (ops.prod, lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims), X_NEAR_1,
             "ReduceProd"),
}
REDUCTIONS = ["l1", "l2", "logsum", "logsumexp", "prod"]
AXES = [(None, False), ([0, -1], False), ((1,), True)]
# (name, axis, keepdims): each reduction over each axes choice, the elementwise ops once
PARAMS = [(n, a, k) for n in REDUCTIONS for a, k in AXES] + [("sin", None, False), ("cos", None, False)]


def _program(name: str, dtype, axis=None, keepdims=False):
    fn, _, x, _ = CASES[name]
    ir = popxl.Ir()
    with ir.main_graph:
        v = popxl.variable(x.astype(dtype), name="x", downcast=False)
        y = fn(v) if name in ("sin", "cos") else fn(v, axis=axis, keepdims=keepdims)
        d = popxl.d2h_stream(y.shape, y.dtype, name="y")
        ops.host_store(d, y)
    return ir


def _run(ir, device: str, level: int = 2) -> np.ndarray:
    with popxl.Session(ir, device, options=CompileOptions(level=level, use_cache=False)) as s:
        return next(iter(s.run().values()))


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_op_as_popxl_builds_it(name):
    ir = _program(name, np.float32, *(([0, -1], False) if name in REDUCTIONS else ()))
    g = ir.main_graph
    assert [op.kind for op in g._g.ops if op.kind != "HostStore"] == [CASES[name][3]]


@pytest.mark.parametrize("name,axis,keepdims", PARAMS)
def test_values_match_numpy(name, axis, keepdims):
    _, want_fn, x, _ = CASES[name]
    if name in ("sin", "cos"):
        want = want_fn(x.astype(np.float64))
    else:
        ax = None if axis is None else tuple(a % 3 for a in axis)
        want = want_fn(x.astype(np.float64), axis=ax, keepdims=keepdims)
    got = _run(_program(name, np.float32, axis, keepdims), "interpreter")
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("name,axis,keepdims", PARAMS)
def test_compiled_matches_interpreter(name, axis, keepdims, dtype):
    ref = _run(_program(name, dtype, axis, keepdims), "interpreter", level=0)
    tol = {np.float16: dict(rtol=2e-3, atol=1e-3), np.float32: dict(rtol=1e-5, atol=1e-6),
           np.float64: dict(rtol=1e-12, atol=1e-12)}[dtype]
    for level in (0, 2):
        got = _run(_program(name, dtype, axis, keepdims), "cpu", level)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), err_msg=f"level {level}", **tol)


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_logsumexp_special_values(device):
    """A row of -inf gives -inf, a +inf gives +inf, a NaN gives NaN; huge values do not overflow."""
    x = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [np.nan, 0.0], [1e30, 1e30]], np.float32)
    ir = popxl.Ir()
    with ir.main_graph:
        v = popxl.variable(x, name="x")
        y = ops.logsumexp(v, axis=1)
        d = popxl.d2h_stream(y.shape, y.dtype, name="y")
        ops.host_store(d, y)
    got = _run(ir, device)
    assert np.isneginf(got[0]) and np.isposinf(got[1]) and np.isnan(got[2])
    np.testing.assert_allclose(got[3], 1e30, rtol=1e-6)


def test_float_only_reductions_refuse_integers():
    with popxl.Ir().main_graph:
        v = popxl.variable(np.arange(6, dtype=np.int32))
        with pytest.raises(ValueError, match="floating-point"):
            ops.l2(v)
        assert ops.prod(v).dtype == popxl.int32 and ops.l1(v).dtype == popxl.int32


def test_onnx_export_matches_interpreter():
    """The ONNX reductions of the same names and Sin/Cos, run by onnxruntime (optional dependency)."""
    pytest.importorskip("onnxruntime")
    import sys
    from pathlib import Path

    from compiler.backends.onnx import to_model
    from compiler.driver import optimise

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "onnx"))
    from ortrun import run_steps

    for name, axis, keepdims in PARAMS + [("l1", (), False), ("logsum", (), False)]:
        model = to_model(optimise(_program(name, np.float32, axis, keepdims), CompileOptions(level=0)))
        (got,) = run_steps(model, [{}])[1]
        want = _run(_program(name, np.float32, axis, keepdims), "interpreter", level=0)
        np.testing.assert_allclose(got["y"], want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {axis} {keepdims}")
