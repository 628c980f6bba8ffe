"""benchmarks/torch_loop.py runs (one round, the smallest model) and its variants train alike."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
from benchmarks import torch_loop  # noqa: E402


@pytest.mark.slow  # about a minute on a loaded 2-core machine (two kernels compiled, four loops)
def test_loop_row_times_every_variant_and_checks_they_trained_alike():
    make, batch = torch_loop._models(quick=True)["tutorial MLP, batch 32"]
    row = torch_loop.loop_row("mlp", make, batch, rounds=1, iters=1)
    for kind in torch_loop.VARIANTS:
        assert row[f"step ms {kind}"] > 0 and row[f"iteration ms {kind}"] >= row[f"step ms {kind}"]
    assert row["tensors"] == 8


def test_the_training_check_catches_a_variant_that_trained_differently():
    import torch

    torch.manual_seed(0)
    base = torch.nn.Linear(3, 2)
    nets = {"torch fused": torch.nn.Linear(3, 2), "ours": torch.nn.Linear(3, 2)}
    with pytest.raises(AssertionError, match="ours trained"):
        torch_loop._check_same_training("x", nets, base)
    torch_loop._check_same_training("x", {"torch fused": base, "ours": base}, nets["ours"])


def test_overhead_row():
    row = torch_loop.overhead_row(rounds=1, steps=3, n=5, size=4)
    assert row["tensors"] == 5 and row["us ours"] > 0 and row["ours/fused"] > 0
