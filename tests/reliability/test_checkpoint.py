"""Checkpoints: resume is bit-identical, a killed writer leaves the old checkpoint, mismatches are refused."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from runtime.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from custom_optimiser import Adam  # noqa: E402


def _program(n: int = 1000):
    """Adam on one weight whose gradient comes in through a host stream."""
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.linspace(-1, 1, n, dtype=np.float32), name="w")
        h = popxl.h2d_stream((n,), popxl.float32, name="grad")
        g = popxl.ops.host_load(h, "grad")
        facts, graph = Adam(cache=True).create_graph(w, w.spec, lr=1e-2)
        graph.bind(facts.init()).call(w, g)
    return ir, h, w


def _grads(step: int, n: int = 1000) -> np.ndarray:
    return np.sin(np.arange(n, dtype=np.float32) * (step + 1) * 0.01).astype(np.float32)


@pytest.mark.parametrize("device", ["cpu", "interpreter"])
def test_resume_is_bit_identical(tmp_path, device):
    ir, h, w = _program()
    s = popxl.Session(ir, device)
    with s:
        for k in range(200):
            s.run({h: _grads(k)})
    straight = s.get_tensor_data(w)

    ir, h, w = _program()
    s = popxl.Session(ir, device)
    with s:
        for k in range(100):
            s.run({h: _grads(k)})
        s.save_checkpoint(tmp_path / "ck.npz")
    ir2, h2, w2 = _program()
    s2 = popxl.Session(ir2, device)
    s2.load_checkpoint(tmp_path / "ck.npz")
    with s2:
        for k in range(100, 200):
            s2.run({h2: _grads(k)})
    np.testing.assert_array_equal(s2.get_tensor_data(w2), straight)


def test_mismatched_checkpoint_is_refused(tmp_path):
    ir, h, w = _program(1000)
    popxl.Session(ir, "interpreter").save_checkpoint(tmp_path / "ck.npz")
    ir2, _, _ = _program(500)
    with pytest.raises(CheckpointError, match=r"'w': checkpoint has float32\(1000,\), the program needs float32\(500,\)"):
        popxl.Session(ir2, "interpreter").load_checkpoint(tmp_path / "ck.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        popxl.Session(ir, "interpreter").load_checkpoint(tmp_path / "junk.npz")


WRITER = r"""
import sys, numpy as np
sys.path.insert(0, %r)
from runtime.checkpoint import save
big = {f"a{i}": np.full(2_000_000, i, np.float32) for i in range(8)}  # 64 MB per checkpoint
print("ready", flush=True)
while True:
    save(sys.argv[1], big)
"""


def test_killed_writer_leaves_old_checkpoint(tmp_path):
    from runtime.checkpoint import load, save

    path = tmp_path / "ck.npz"
    save(path, {"a0": np.full(3, 42.0, np.float32)})
    for delay in (0.05, 0.2, 0.4):
        p = subprocess.Popen([sys.executable, "-c", WRITER % str(ROOT), str(path)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        with np.load(path) as z:  # whatever finished last is a complete checkpoint
            names = set(z.files) - {"__manifest__"}
        if names == {"a0"}:
            assert load(path, {"a0": ((3,), np.dtype(np.float32))})["a0"][0] == 42.0
        else:
            data = load(path, {f"a{i}": ((2_000_000,), np.dtype(np.float32)) for i in range(8)})
            assert all(data[f"a{i}"][-1] == i for i in range(8))
    assert not [f for f in os.listdir(tmp_path) if not f.endswith(".tmp")] == []
