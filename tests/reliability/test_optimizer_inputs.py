"""Optimizer inputs torch.optim would refuse are refused by the drop-in too (in a child process: the
kernel would otherwise read a gradient or state of the wrong size), and the functional optimizer refuses
integer parameters instead of truncating their updates."""
from __future__ import annotations

import numpy as np
import pytest

from compiler.optim import Optimizer

from .conftest import run_cases

PRELUDE = """
import torch
from compiler.optim.torch import Adam

def mk(opt=Adam):
    p = torch.nn.Parameter(torch.ones(8, 4))
    p.grad = torch.full((8, 4), 0.1)
    return p, opt([p], lr=1e-2)
"""
CASES = {
    "parameter reshaped after construction": "p, o = mk(OPT); o.step(); p.data = p.data.reshape(32); "
                                             "p.grad = torch.ones(32); o.step()",
    "(32,) gradient for an (8, 4) parameter": "p, o = mk(OPT); o.step(); p.grad.data = torch.ones(32); o.step()",
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    pytest.importorskip("torch")
    cases = {f"{n} [{who}]": c.replace("OPT", opt) for n, c in CASES.items()
             for who, opt in (("drop-in", "Adam"), ("torch", "torch.optim.Adam"))}
    return run_cases(PRELUDE, cases)


@pytest.mark.parametrize("case", list(CASES))
def test_the_drop_in_raises_where_torch_raises(case, outcomes):
    assert outcomes[f"{case} [torch]"].status == "raised"  # what torch.optim does
    got = outcomes[f"{case} [drop-in]"]
    assert got.status == "raised" and "(8, 4)" in got.msg, f"{case}: {got}"


class Step(Optimizer):
    def call_param(self, key, grad, param=None):
        return 0.5 * grad


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_the_functional_optimizer_refuses_integer_parameters(dtype):
    p = np.ones(4, dtype)
    with pytest.raises(TypeError, match=f"parameter 'w' is {np.dtype(dtype)}.*floating-point"):
        Step()({"w": p}, {"w": np.ones(4, dtype)})
    assert np.array_equal(p, np.ones(4, dtype))
