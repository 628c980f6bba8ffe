"""benchmarks/torch_step_profile.py: every part is timed on the steady-state step, and the derived parts
are the differences of the nested measurements."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from benchmarks import torch_step_profile as prof  # noqa: E402


def test_profile_rows_of_a_small_model():
    def make():
        return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    def batch(g):
        return torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)

    rows = prof.profile_row("small", make, batch, iters=2 * len(prof.PARTS))
    ours = {r["part"]: r for r in rows if r["optimizer"] == "ours"}
    theirs = {r["part"]: r for r in rows if r["optimizer"] == "torch fused"}
    assert set(prof.PARTS) <= set(ours) and set(theirs) == {"step()", "without torch's wrapper"}
    assert all(r["us after backward"] > 0 for p, r in ours.items() if not p.startswith("="))
    assert ours["= validation"]["us after backward"] == ours["validation"]["us after backward"]
    want = round(ours["validation + repoint"]["us after backward"] - ours["validation"]["us after backward"], 1)
    assert ours["= repoint"]["us after backward"] == pytest.approx(want, abs=0.11)
