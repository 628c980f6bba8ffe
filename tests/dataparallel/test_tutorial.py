"""The PopXL data-parallelism tutorial's program: R replicas x GA micro-batches with a mean all-reduce train
like 1 replica with R*GA micro-batches (micro-batch k of the global batch on transfer k // R, replica k % R)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from data_parallel import train_program  # noqa: E402

B = 4


def train(replicas: int, ga: int, steps: int, device: str, seed: int = 1):
    np.random.seed(0)  # the same initial weights for every configuration
    ir, (img, lab), variables, loss_s = train_program(replicas, ga, B)
    sess = popxl.Session(ir, device)
    rng = np.random.default_rng(seed)
    losses = []
    with sess:
        assert sess.expected_inputs() == [img, lab]
        for _ in range(steps):
            x = rng.standard_normal((ga * replicas * B, 28, 28)).astype(np.float32)
            y = rng.integers(0, 10, ga * replicas * B).astype(np.int32)
            out = sess.run({img: x.reshape(sess._full_input_shape(img.shape)),
                            lab: y.reshape(sess._full_input_shape(lab.shape))})
            losses.append(out[loss_s].reshape(-1))
    return [sess.get_tensor_data(t) for t in variables.tensors], np.concatenate(losses or [np.zeros(0)])


@pytest.mark.parametrize("device,steps", [("interpreter", 2), ("cpu", 20)])
def test_two_replicas_train_like_one_with_twice_the_accumulation(device, steps):
    w2, loss2 = train(2, 2, steps, device)
    w1, loss1 = train(1, 4, steps, device)
    w0 = train(1, 4, 0, device)[0]
    np.testing.assert_allclose(loss2, loss1, rtol=2e-4)  # summation order differs (float16 moments)
    for a, b, b0 in zip(w2, w1, w0):
        moved = float(np.abs(b - b0).max())
        assert moved > 1e-3  # training changed every weight, so equal weights mean equal updates
        # summation order differs (the all-reduce adds two partial means); float16 Adam moments amplify it
        assert float(np.abs(a - b).max()) <= 0.01 * moved


def test_shapes_follow_host_transfers_and_replicas():
    ir, (img, lab), _, loss_s = train_program(2, 3, B)
    sess = popxl.Session(ir, "interpreter")
    assert sess._full_input_shape(img.shape) == (3, 2, B, 28, 28)
    assert ir.instance_replication_factor == 2
    with sess:
        with pytest.raises(ValueError, match=r"\(3, 2, 4, 28, 28\).*num_host_transfers, replicas"):
            sess.run({img: np.zeros((6, B, 28, 28), np.float32), lab: np.zeros((3, 2, B), np.int32)})
        out = sess.run({img: np.zeros((3, 2, B, 28, 28), np.float32), lab: np.zeros((3, 2, B), np.int32)})
    assert out[loss_s].shape == (3, 2)
