"""The ONNX export, run by onnxruntime, against the reference interpreter on the tutorial programs."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from compiler import popxl  # noqa: E402
from compiler.backends.onnx import export  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import custom_optimiser  # noqa: E402
import mnist_adam  # noqa: E402


def _compare(ir, tmp_path, stream_data: dict, level: int, rtol: float, atol: float):
    path = tmp_path / "m.onnx"
    export(ir, path, CompileOptions(level=level))
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path))
    names = {ir.main.values[v].name: v for v in ir.variables}
    feeds = {}
    for i in sess.get_inputs():
        feeds[i.name] = stream_data[i.name[len("stream__"):]] if i.name.startswith("stream__") else \
            ir.variables[names[i.name]]
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    ref = popxl.Session(ir, "interpreter", options=CompileOptions(level=0))
    handles = {s.name: s for s in ir._stream_handles.values()}
    with ref:
        outs = ref.run({handles[k]: v for k, v in stream_data.items()})
    checked = 0
    for name, arr in got.items():
        if name.endswith("__updated"):
            want = ref.get_tensor_data(popxl.Tensor(ir.main.values[names[name[:-len('__updated')]]], ir.main_graph))
        else:
            want = outs[handles[name[len("stream__"):]]]
        np.testing.assert_allclose(np.asarray(arr, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=atol,
                                   err_msg=name)
        checked += 1
    return checked


@pytest.mark.parametrize("level", [0, 2])
def test_tutorial_adam(tmp_path, level):
    ir, _ = custom_optimiser.build_ir()
    assert _compare(ir, tmp_path, {}, level, 1e-6, 1e-7) == 7  # var + two Adam states of 3 tensors


@pytest.mark.parametrize("level", [0, 2])
def test_mnist_training_step(tmp_path, level):
    np.random.seed(0)
    ir = mnist_adam.build_ir()[0]
    rng = np.random.default_rng(1)
    data = {"image": rng.standard_normal((8, 28, 28)).astype(np.float32),
            "labels": rng.integers(0, 10, 8).astype(np.int32)}
    # every weight, every Adam state and the loss; matmul summation order differs from numpy's
    assert _compare(ir, tmp_path, data, level, 2e-3, 2e-5) >= 8 * 3 + 1
