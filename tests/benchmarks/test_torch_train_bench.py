"""benchmarks/torch_train.py runs (one round, batch 4) and its variants train alike."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
from benchmarks import torch_train  # noqa: E402


def test_row_times_every_variant_and_checks_they_trained_alike():
    row = torch_train.row(batch=4, rounds=1, iters=2)
    for kind in torch_train.VARIANTS:
        assert row[f"ms {kind}"] > 0
    assert row["torch fused / compiled"] > 0 and row["epilogue off / compiled"] > 0


def test_the_training_check_catches_a_variant_that_trained_differently():
    import torch

    torch.manual_seed(0)
    base = torch.nn.Linear(3, 2)
    nets = {"torch fused Adam": torch.nn.Linear(3, 2), "compiled": torch.nn.Linear(3, 2)}
    with pytest.raises(AssertionError, match="compiled trained"):
        torch_train.check_same_training(4, nets, base, 0.25)
    torch_train.check_same_training(4, {"torch fused Adam": base, "compiled": base}, nets["compiled"], 1e-3)
