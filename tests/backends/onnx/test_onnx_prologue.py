"""A MatMulEpilogue with prologues on both operands exports as the prologue kernels' nodes, the MatMul and
the epilogue's nodes, and onnxruntime's result matches the interpreter (matmul tolerance); the Poplar
program runs on the numpy model of Poplar. 2-d and batched (a batched against a 2-d b, both batched)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ortrun import run_steps  # noqa: E402

from compiler import popxl  # noqa: E402
from session_helpers import run_session  # noqa: E402
from compiler.backends.onnx import to_model  # noqa: E402
from compiler.driver import CompileOptions, optimise  # noqa: E402
from compiler.ops.matmul_epilogue import prologues  # noqa: E402
from compiler.popxl import ops  # noqa: E402
from compiler.popxl.ops._emit import emit_op, out  # noqa: E402


SHAPES = {"2d": ((300, 20), (20, 9)), "a-batched": ((2, 150, 20), (20, 9)), "both-batched": ((3, 100, 20), (3, 20, 9))}


def _builder(case: str):
    sx, sw = SHAPES[case]

    def build():
        rng = np.random.default_rng(0)
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(rng.standard_normal(sx).astype(np.float32), name="x")
            w = popxl.variable(rng.standard_normal(sw).astype(np.float32), name="w")
            s = popxl.variable(np.asarray(0.5, np.float32), name="s")
            res = popxl.variable(np.zeros(sx[:-1] + sw[-1:], np.float32), name="out")
            y = out(emit_op("MatMul", {"a": ops.tanh(x * s), "b": w * 2.0}, {}))
            ops.var_updates.copy_var_update_(res, ops.gelu(y + 1.0))
        return ir
    return build


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_onnx_export_of_prologues(case):
    _build = _builder(case)
    ir = optimise(_build(), CompileOptions())
    (op,) = [o for o in ir.main.ops if o.kind == "MatMulEpilogue"]
    assert sorted(prologues(op)) == [0, 1]
    got, _ = run_steps(to_model(ir), [{}])
    want, _ = run_session(_build(), "interpreter", None, 1, CompileOptions(level=0))
    np.testing.assert_allclose(got["out"], want["out"], rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_poplar_program_of_prologues(tmp_path, case):
    """The Poplar program (prologue kernels, poplin's matmul, the epilogue kernel) on the numpy model of
    Poplar (tests/backends/poplar/popsim.py) gives the interpreter's result bit for bit."""
    from compiler import driver

    _build = _builder(case)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "poplar"))
    from popsim import run_program

    driver.emit_poplar(_build(), tmp_path, CompileOptions())
    src = (tmp_path / "program.cpp").read_text()
    assert src.count("popops") and "matMul" in src and "MatMulEpilogue" in src  # the fused op, expanded
    got, _ = run_program(src, tmp_path / "data", {}, 1)
    want, _ = run_session(_build(), "interpreter", None, 1, CompileOptions(level=0))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (v,) = [v for v in manifest["variables"] if v["name"] == "out"]
    np.testing.assert_array_equal(got[v["host_name"]], want["out"])
