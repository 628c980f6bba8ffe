"""The torch.optim drop-in runs compiled code over the memory of torch tensors: tampering with
parameters, gradients or optimizer state between steps raises an error that names the tensor and
says what is wrong (never a crash in native code); odd but legal tensors (0-d, empty, float16, a
strided gradient) give torch.optim.Adam's values. Run in a child process."""
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

def same_as_torch(scenario):
    '''scenario(Opt) runs with optimizer class Opt and returns the parameters: ours must give torch's.'''
    for a, b in zip(scenario(Adam), scenario(torch.optim.Adam)):
        tol = {} if a.dtype == torch.float16 else {"rtol": 2e-6, "atol": 1e-9}  # sqrt: MKL's vs IEEE (README)
        torch.testing.assert_close(a.detach(), b.detach(), **tol)
"""

# case -> (code, exception type, fragments its message must contain)
RAISES = {
    "parameter replaced by another shape": (
        "p, o = mk(); o.step(); p.data = torch.ones(37); p.grad = torch.ones(37); o.step()",
        "UnsupportedTensorError", ["state['exp_avg'] of parameter 0", "has shape (1000,)", "the parameter (37,)"]),
    "state resized": (
        "p, o = mk(); o.step(); o.state[p]['exp_avg'] = torch.zeros(5); o.step()",
        "UnsupportedTensorError", ["state['exp_avg'] of parameter 0", "has shape (5,)", "the parameter (1000,)"]),
    "bad state_dict loaded": (
        "p, o = mk(); o.step(); sd = o.state_dict(); sd['state'][0]['exp_avg'] = torch.zeros(3)\n"
        "o.load_state_dict(sd); o.step()",
        "UnsupportedTensorError", ["state['exp_avg'] of parameter 0", "has shape (3,)", "load a state_dict saved for"]),
    "parameter replaced by a strided view": (
        "p, o = mk(); o.step(); p.data = torch.ones(2000)[::2]; o.step()",
        "UnsupportedTensorError", ["parameter 0 of param_groups[0]", "strides (2,) is not dense", ".contiguous()"]),
    "state of another dtype": (
        "p, o = mk(); o.step(); o.state[p]['exp_avg_sq'] = o.state[p]['exp_avg_sq'].double(); o.step()",
        "UnsupportedTensorError", ["state['exp_avg_sq'] of parameter 0", "is torch.float64, the parameter torch.float32"]),
}


def _scenario(body: str) -> str:
    return "def scenario(Opt):\n" + "".join(f"    {line}\n" for line in body.splitlines()) + "same_as_torch(scenario)"


WORKS = {
    "strided gradient": _scenario("p = torch.nn.Parameter(torch.ones(1000)); p.grad = torch.arange(2000.)[::2] / 1e3\n"
                                  "Opt([p], lr=1e-2).step(); return [p]"),
    "float16 parameter": _scenario("p = torch.nn.Parameter(torch.ones(8, dtype=torch.float16))\n"
                                   "p.grad = torch.linspace(-1, 1, 8).half(); Opt([p]).step(); return [p]"),
    "0-d parameter": _scenario("q = torch.nn.Parameter(torch.tensor(1.0)); q.grad = torch.tensor(0.5)\n"
                               "Opt([q], lr=0.1).step(); assert q.item() < 1.0; return [q]"),
    "empty parameter": _scenario("p = torch.nn.Parameter(torch.ones(0)); p.grad = torch.ones(0); o = Opt([p])\n"
                                 "o.step(); assert o.state[p]['exp_avg'].shape == (0,); return [p]"),
    "parameter replaced by the same shape": _scenario(
        "p = torch.nn.Parameter(torch.ones(1000)); p.grad = torch.full((1000,), 0.1); o = Opt([p], lr=1e-2)\n"
        "o.step(); p.data = torch.zeros(1000); o.step(); assert torch.all(p < 0)\n"
        "return [p, o.state[p]['exp_avg'], o.state[p]['exp_avg_sq']]"),
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return run_cases(PRELUDE, {**{k: v[0] for k, v in RAISES.items()}, **WORKS})


@pytest.mark.parametrize("case", list(RAISES))
def test_tampering_raises_an_error_naming_the_tensor(case, outcomes):
    got, (_, exc, fragments) = outcomes[case], RAISES[case]
    assert got.status == "raised" and got.exc == exc, f"{case}: {got}"
    missing = [f for f in fragments if f not in got.msg]
    assert not missing, f"{case}: message lacks {missing}: {got.msg}"


@pytest.mark.parametrize("case", list(WORKS))
def test_odd_but_legal_tensors_give_torchs_values(case, outcomes):
    assert outcomes[case].status == "returned", f"{case}: {outcomes[case]}"
