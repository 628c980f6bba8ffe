"""Mutated checkpoints (tools/fuzz_checkpoints.py, checked in child processes by tools.fuzz_files): each
is refused with CheckpointError or loads exactly the saved arrays, never a crash or another exception."""
from __future__ import annotations

import numpy as np

from tools import fuzz_checkpoints as checkpoints
from tools.fuzz_files import mutate, mutate_bytes, run_jobs


def test_mutated_checkpoints_are_refused_or_load_exactly(tmp_path):
    base, spec = checkpoints.save_base(tmp_path / "base")
    rng = np.random.default_rng(3)
    jobs = []
    for k in range(60):
        target = tmp_path / f"m{k}.npz"
        checkpoints.mutant(base, target, rng, mutate, mutate_bytes)
        jobs.append(["ckpt", str(target), str(spec)])
    outcomes = run_jobs([["ckpt", str(base), str(spec)]] + jobs)
    assert outcomes[0] == "loaded"
    assert set(outcomes) <= {"refused", "loaded"}, [o for o in outcomes if o not in ("refused", "loaded")]
    assert outcomes.count("refused") >= 20


def test_the_check_sees_data_under_the_wrong_name(tmp_path):
    """A manifest that swaps the keys of `x` and `x.npy` loads (same shapes) but with the data swapped:
    the check must call that a mismatch, not a load."""
    base, spec = checkpoints.save_base(tmp_path / "base")

    def swap(m):
        a, b = (e for e in m["variables"] if e["name"] in ("x", "x.npy"))
        a["key"], b["key"] = b["key"], a["key"]
        return m

    bad = tmp_path / "swapped.npz"
    bad.write_bytes(checkpoints.with_manifest(base.read_bytes(), swap))
    assert run_jobs([["ckpt", str(bad), str(spec)]]) == ["MISMATCH"]
