"""The PopXL custom-optimiser tutorial: schedules, reprs and numbers exactly as PopXL prints them."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import custom_optimiser  # noqa: E402

from compiler import popxl  # noqa: E402
from tutorial_programs import TUTORIAL_TENSOR_LR_SCHEDULE  # noqa: E402

FLOAT_LR = """\
Graph : Adam_subgraph(0)
  (%1, %2, first_order=%3, second_order=%4, step=%5) -> () {
    Accumulate.100 (%3 [(2, 2) float16], %2 [(2, 2) float32]) -> (%6 [(2, 2) float16])
    Accumulate.101 (%4 [(2, 2) float32], %2 [(2, 2) float32]) -> (%7 [(2, 2) float32])
    AdamUpdater.102 (%3 [(2, 2) float16], %4 [(2, 2) float32], %5 [() float32]) -> (%8 [(2, 2) float16])
    ScaledAddLhsInplace.103 (%1 [(2, 2) float32], %8 [(2, 2) float16]) -> (%9 [(2, 2) float32])
  }"""


def test_schedules_print_exactly_as_popxl():
    _, h = custom_optimiser.build_ir()
    assert h["adam"].print_schedule() == FLOAT_LR
    assert h["adam_lr"].print_schedule() == TUTORIAL_TENSOR_LR_SCHEDULE


def test_tensor_reprs():
    _, h = custom_optimiser.build_ir()
    assert repr(h["var"]) == "Tensor[t popxl.dtypes.float32 (2, 2)]"
    reprs = [repr(t) for t in h["adam_state"].tensors]
    assert reprs == [
        "Tensor[first_order popxl.dtypes.float16 (2, 2)]",
        "Tensor[second_order popxl.dtypes.float32 (2, 2)]",
        "Tensor[step popxl.dtypes.float32 ()]",
    ]


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_values_after_one_update(device, capsys):
    out = custom_optimiser.main(device)
    m, v, step, var = out["first_order"], out["second_order"], out["step"], out["var"]
    assert m.dtype == np.float16 and v.dtype == np.float32 and step.dtype == np.float32
    np.testing.assert_array_equal(m, np.full((2, 2), np.float16(0.0099945068)))
    np.testing.assert_allclose(v, np.float32(9.9998715e-06), rtol=1e-12)
    assert step == 1.0
    np.testing.assert_allclose(var, 0.998001, rtol=1e-6)
    printed = capsys.readouterr().out
    assert "[[0.009995 0.009995]" in printed and "9.9998715e-06" in printed


def test_session_before_run_and_devices():
    ir, h = custom_optimiser.build_ir()
    with pytest.raises(ValueError, match="not available here.*'cpu'.*'interpreter'"):
        popxl.Session(ir, "ipu_hw")
    sess = popxl.Session(ir, "interpreter")
    np.testing.assert_array_equal(sess.get_tensor_data(h["var"]), np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="Must be attached"):
        sess.run()
