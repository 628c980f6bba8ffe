"""NaN and Inf propagate exactly as numpy's do, on both devices; the opt-in
CompileOptions(check_finite=True) names the first op and tensor that went non-finite."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops
from runtime.interpreter_exec import NonFiniteError

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 70000.0, 1e-40], np.float32)
# op -> (popxl expression, numpy expression)
CASES: dict[str, tuple[Callable, Callable]] = {
    "add": (lambda x, y: x + y, lambda x, y: x + y),
    "sub": (lambda x, y: x - y, lambda x, y: x - y),
    "mul": (lambda x, y: x * y, lambda x, y: x * y),
    "div": (lambda x, y: x / y, lambda x, y: x / y),
    "maximum": (ops.maximum, np.maximum),
    "minimum": (ops.minimum, np.minimum),
    "neg": (lambda x, y: -x, lambda x, y: -x),
    "abs": (lambda x, y: ops.abs(x), np.abs),
    "sqrt": (lambda x, y: ops.sqrt(x), lambda x, y: np.sqrt(x)),
    "exp": (lambda x, y: ops.exp(x), lambda x, y: np.exp(x)),
    "log": (lambda x, y: ops.log(x), lambda x, y: np.log(x)),
    "tanh": (lambda x, y: ops.tanh(x), lambda x, y: np.tanh(x)),
    "relu": (lambda x, y: ops.relu(x), lambda x, y: np.where(np.isnan(x), x, np.maximum(x, 0))),
    "floor": (lambda x, y: ops.floor(x), lambda x, y: np.floor(x)),
    "where greater": (lambda x, y: ops.where(ops.greater(x, y), x, y), lambda x, y: np.where(x > y, x, y)),
    "cast to float16": (lambda x, y: ops.cast(x, popxl.float16), lambda x, y: x.astype(np.float16)),
    "cast to float64": (lambda x, y: ops.cast(x, popxl.float64), lambda x, y: x.astype(np.float64)),
    "reduce max": (lambda x, y: ops.max(x * y, axis=1), lambda x, y: np.max(x * y, axis=1)),
    "reduce min": (lambda x, y: ops.min(x * y, axis=1), lambda x, y: np.min(x * y, axis=1)),
    "reduce sum": (lambda x, y: ops.sum(x * y, axis=1), lambda x, y: np.sum(x * y, axis=1)),
    "accumulate_": (None, lambda x, y: x + y),
    "scaled_add_": (None, lambda x, y: x * np.float32(0.5) + y * np.float32(-2.0)),
}


def _grid() -> tuple[np.ndarray, np.ndarray]:
    x, y = np.meshgrid(SPECIAL, SPECIAL, indexing="ij")
    return x.astype(np.float32), y.astype(np.float32)


def _run(case: str, device: str) -> np.ndarray:
    x, y = _grid()
    build, _ = CASES[case]
    ir = popxl.Ir()
    with ir.main_graph:
        hx = popxl.h2d_stream(x.shape, popxl.float32, name="x")
        hy = popxl.h2d_stream(y.shape, popxl.float32, name="y")
        tx, ty = ops.host_load(hx, "x"), ops.host_load(hy, "y")
        if case in ("accumulate_", "scaled_add_"):
            v = popxl.variable(x, name="v")
            ops.var_updates.copy_var_update_(v, tx)
            (ops.var_updates.accumulate_(v, ty) if case == "accumulate_" else ops.scaled_add_(v, ty, a=0.5, b=-2.0))
            out = v + 0.0
        else:
            out = build(tx, ty)
        d = popxl.d2h_stream(out.shape, out.dtype, name="out")
        ops.host_store(d, out)
    s = popxl.Session(ir, device)
    with s:
        return s.run({hx: x, hy: y})[d]


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
@pytest.mark.parametrize("case", list(CASES))
def test_nonfinite_values_propagate_like_numpy(case, device):
    x, y = _grid()
    with np.errstate(all="ignore"):
        want = np.asarray(CASES[case][1](x, y))
    got = _run(case, device)
    assert got.dtype == want.dtype and got.shape == want.shape
    if case in ("exp", "log", "tanh"):  # transcendentals: special values exact, the rest to a few ulps
        ok = np.isclose(got, want, rtol=1e-6, atol=0, equal_nan=True) & (np.isnan(got) == np.isnan(want))
    else:
        ok = (got == want) | (np.isnan(got) & np.isnan(want))
    bad = np.argwhere(~ok)
    assert not len(bad), (f"{case} on {device}: x={x[tuple(bad[0])]}, y={y[tuple(bad[0])]}: "
                          f"numpy {want[tuple(bad[0])]}, got {got[tuple(bad[0])]}")


def _checked(device: str, where: str):
    """v += f(x) where f makes NaN from a negative input; where='main' | 'subgraph'."""
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream((3,), popxl.float32, name="x")
        v = popxl.variable(np.ones(3, np.float32), name="v")
        x = ops.host_load(h, "x")
        if where == "subgraph":
            g = ir.create_graph(lambda t: ops.sqrt(t) * 2.0, x)
            y = ops.call(g, x)[0]
        elif where == "float16 overflow":
            y = ops.cast(ops.exp(ops.cast(x, popxl.float16) * 20.0), popxl.float32)
        else:
            y = ops.log(x)
        ops.var_updates.accumulate_(v, y)
    return ir, h, v


CHECKS = {"main": r"'log_out\S*' \[\(3,\) float32\] produced by Log\.\d+ in graph 'main'",
          "subgraph": r"produced by Sqrt\.\d+ in graph '\S*<lambda>_subgraph\(0\)'",
          "float16 overflow": r"float16\] produced by Exp\.\d+"}


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
@pytest.mark.parametrize("where", list(CHECKS))
def test_check_finite_names_the_first_nonfinite_tensor(device, where):
    data = np.array([1.0, -1.0, 0.25], np.float32) if where != "float16 overflow" else np.ones(3, np.float32)
    ir, h, v = _checked(device, where)
    s = popxl.Session(ir, device)  # off by default: NaN/Inf just propagate
    with s:
        s.run({h: data})
    assert not np.all(np.isfinite(s.get_tensor_data(v)))
    ir, h, v = _checked(device, where)
    s = popxl.Session(ir, device, options=CompileOptions(check_finite=True))
    with s, pytest.raises(NonFiniteError, match=CHECKS[where]) as e:
        s.run({h: data})
    assert "test_nonfinite.py" in str(e.value)  # the user's source line of the op


def test_check_finite_leaves_both_devices_in_the_same_state():
    got = []
    for device in ("interpreter", "cpu"):
        ir, h, v = _checked(device, "main")
        s = popxl.Session(ir, device, options=CompileOptions(check_finite=True))
        with s:
            with pytest.raises(NonFiniteError):
                s.run({h: np.array([1.0, -1.0, 0.25], np.float32)})
        got.append(s.get_tensor_data(v))
    np.testing.assert_array_equal(got[0], got[1])


@pytest.mark.xfail(strict=True, reason="compiled check_finite only inspects variables and outputs after the run; "
                   "a masked intermediate NaN goes unnoticed (issue 9 report: needs checks in the kernels)")
def test_check_finite_sees_masked_intermediates_when_compiled():
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream((3,), popxl.float32, name="x")
        v = popxl.variable(np.ones(3, np.float32), name="v")
        y = ops.log(ops.host_load(h, "x"))
        ops.var_updates.accumulate_(v, ops.where(ops.greater(y, 0.0), y, 1.0))  # NaN > 0 is False: masked
    s = popxl.Session(ir, "cpu", options=CompileOptions(check_finite=True))
    with s, pytest.raises(NonFiniteError, match=r"Log\.\d+"):
        s.run({h: np.array([1.0, -1.0, 0.25], np.float32)})
