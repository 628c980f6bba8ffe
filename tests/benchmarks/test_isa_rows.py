"""benchmarks/mnist_train.py --target-cpu: the by-piece table per target CPU (no torch needed)."""
from __future__ import annotations

import argparse

import pytest

from benchmarks import mnist_train


@pytest.mark.slow  # compiles the four pieces of the MNIST step for two CPUs (~half a minute when loaded)
def test_pieces_per_target_cpu_times_every_piece_and_relates_it_to_the_host_build():
    args = argparse.Namespace(threads="1", batches="8")
    t = mnist_train.isa_pieces(args, ["host", "x86-64-v2"], rounds=1)
    assert [r["target"] for r in t.rows] == ["host", "x86-64-v2"]
    for row in t.rows:
        for piece in mnist_train.PIECES:
            assert row[f"{piece} ms"] > 0
    host, v2 = t.rows
    for piece in mnist_train.PIECES:
        assert host[f"{piece} / host"] == 1.0
        assert v2[f"{piece} / host"] == pytest.approx(v2[f"{piece} ms"] / host[f"{piece} ms"])
