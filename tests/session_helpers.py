"""Helpers shared by every test directory: run a program, compare with the reference interpreter.

They live here, not in conftest.py: `from conftest import ...` binds whichever directory's conftest
pytest imported last (tests/passes, tests/tools, ... each have one), so it broke by collection order.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compiler import popxl  # noqa: E402
from compiler.driver import CompileOptions, program_of  # noqa: E402


def run_session(ir: Any, device: str = "interpreter", inputs: dict | None = None, runs: int = 1,
                options: CompileOptions | None = None) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Run `ir` `runs` times; returns (variables by name after the runs, outputs of each run by stream name)."""
    opts = options or CompileOptions()
    sess = popxl.Session(ir, device, options=opts)
    outs = []
    with sess:
        for _ in range(runs):
            res = sess.run(inputs or {})
            outs.append({getattr(k, "name", k): v for k, v in res.items()})
    core = program_of(ir)
    names = {vid: core.main.values[vid].name for vid in core.variables}
    data = {names[vid]: sess._host[vid].copy() for vid in core.variables}
    return data, outs


def tolerance(dtype: np.dtype) -> dict[str, float]:
    dt = np.dtype(dtype)
    if dt == np.float16 or str(dt) == "bfloat16":
        return dict(rtol=2e-2, atol=2e-3)
    if dt == np.float32:
        return dict(rtol=2e-5, atol=1e-6)
    if dt == np.float64:
        return dict(rtol=1e-12, atol=1e-14)
    return dict(rtol=0, atol=0)


def assert_close(name: str, got: np.ndarray, want: np.ndarray, exact: bool = False) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{name}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}")
    if exact or want.dtype.kind not in "fc" and str(want.dtype) != "bfloat16":
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        tol = tolerance(want.dtype)
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), err_msg=name, **tol)


def assert_matches_reference(build: Callable[[], Any], inputs: Callable[[Any], dict] | None = None, runs: int = 1,
                             device: str = "cpu", options: CompileOptions | None = None, exact: bool = False) -> None:
    """Build the program twice; run it on the reference interpreter and on `device`; compare every
    variable and every output. `build` returns an Ir; `inputs(ir)` returns the stream inputs."""
    ir_ref, ir_dut = build(), build()
    ref_vars, ref_outs = run_session(ir_ref, "interpreter", inputs(ir_ref) if inputs else None, runs,
                                     CompileOptions(level=0))
    dut_vars, dut_outs = run_session(ir_dut, device, inputs(ir_dut) if inputs else None, runs, options)
    assert ref_vars.keys() == dut_vars.keys()
    for k in ref_vars:
        assert_close(f"variable {k}", dut_vars[k], ref_vars[k], exact)
    for r, (a, b) in enumerate(zip(ref_outs, dut_outs)):
        assert a.keys() == b.keys()
        for k in a:
            assert_close(f"run {r} stream {k}", b[k], a[k], exact)
