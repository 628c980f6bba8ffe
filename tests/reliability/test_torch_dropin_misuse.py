"""The torch.optim drop-in runs compiled code over the memory of torch tensors: tampering with
parameters, gradients or optimizer state between steps raises a Python exception (never a crash in
native code); odd but legal tensors (0-d, empty) just work. Run in a child process."""
from __future__ import annotations

import pytest

from .conftest import run_cases

pytest.importorskip("torch")

PRELUDE = """
import torch
from compiler.optim.torch import Adam

def mk(n=1000):
    p = torch.nn.Parameter(torch.ones(n))
    p.grad = torch.full((n,), 0.1)
    return p, Adam([p], lr=1e-2)
"""

RAISES = {
    "parameter replaced by another shape": "p, o = mk(); o.step(); p.data = torch.ones(37); p.grad = torch.ones(37); o.step()",
    "state resized": "p, o = mk(); o.step(); o.state[p]['exp_avg'] = torch.zeros(5); o.step()",
    "bad state_dict loaded": "p, o = mk(); o.step(); sd = o.state_dict(); sd['state'][0]['exp_avg'] = torch.zeros(3)\n"
                             "o.load_state_dict(sd); o.step()",
}
# supported or refused, depending on the drop-in's coverage; never a crash
EITHER = {
    "parameter replaced by a strided view": "p, o = mk(); o.step(); p.data = torch.ones(2000)[::2]; o.step()",
    "strided gradient": "p, o = mk(); p.grad = torch.ones(2000)[::2]; o.step()",
    "state of another dtype": "p, o = mk(); o.step(); o.state[p]['exp_avg_sq'] = o.state[p]['exp_avg_sq'].double(); o.step()",
    "float16 parameter": "p = torch.nn.Parameter(torch.ones(8, dtype=torch.float16)); p.grad = torch.ones_like(p)\n"
                         "Adam([p]).step()",
}
WORKS = {
    "0-d parameter": "p, o = mk(); q = torch.nn.Parameter(torch.tensor(1.0)); q.grad = torch.tensor(0.5)\n"
                     "Adam([q], lr=0.1).step(); assert q.item() < 1.0",
    "empty parameter": "p = torch.nn.Parameter(torch.ones(0)); p.grad = torch.ones(0); Adam([p]).step()",
    "parameter replaced by the same shape": "p, o = mk(); o.step(); p.data = torch.zeros(1000); o.step()\n"
                                            "assert torch.all(p < 0)",
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return run_cases(PRELUDE, {**RAISES, **EITHER, **WORKS})


@pytest.mark.parametrize("case", list(RAISES))
def test_tampering_raises_a_python_error(case, outcomes):
    got = outcomes[case]
    assert got.status == "raised" and got.msg, f"{case}: {got}"


@pytest.mark.parametrize("case", list(EITHER))
def test_unusual_tensors_are_supported_or_refused_never_a_crash(case, outcomes):
    assert outcomes[case].status in ("raised", "returned"), f"{case}: {outcomes[case]}"


@pytest.mark.parametrize("case", list(WORKS))
def test_odd_but_legal_tensors_work(case, outcomes):
    assert outcomes[case].status == "returned", f"{case}: {outcomes[case]}"
