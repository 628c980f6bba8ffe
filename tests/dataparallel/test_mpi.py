"""`mpiexec -n 2`: the tutorial trains like 2 replicas in one process; the fault cases stop every rank with
an error naming the cause, within a bounded time (each launch runs under a timeout)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .test_tutorial import train

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=str(BIN)) or shutil.which("mpiexec")

LIMIT_S = 240  # the bound on every launch: a hang fails the test instead of the suite


def mpiexec(tmp_path: Path, mode: str, replicas: int = 2, ga: int = 2, steps: int = 3, device: str = "cpu",
            procs: int = 2, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    import mpi4py  # noqa: F401  (the [mpi] extra, which make setup installs: a missing one fails the test)

    assert MPIEXEC is not None, "no mpiexec on PATH or beside this Python: pip install -e '.[mpi]' (mpich)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    cmd = [MPIEXEC, *flags, "-n", str(procs), sys.executable, str(HERE / "mpi_program.py"), mode, str(replicas),
           str(ga), str(steps), device, str(tmp_path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT_S, env=env)


def weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{k}"] for k in range(len(f.files))]


@pytest.mark.parametrize("replicas,device", [(2, "cpu"), (4, "cpu"), (2, "interpreter")])
def test_two_processes_train_like_one(tmp_path, replicas, device):
    """2 processes hosting replicas/2 replicas each give the weights of one process hosting them all."""
    steps = 3 if device == "cpu" else 1
    r = mpiexec(tmp_path, "train", replicas=replicas, steps=steps, device=device)
    assert r.returncode == 0, r.stderr[-3000:]
    want = train(replicas, 2, steps, device)[0]
    for rank in (0, 1):  # every rank holds the same weights
        for a, b in zip(weights(tmp_path / f"weights{rank}.npz"), want):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_checkpoint_written_by_rank_0_loads_everywhere(tmp_path):
    r = mpiexec(tmp_path, "checkpoint", steps=1)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "ckpt.npz").exists()
    assert "rank 0 loaded" in r.stdout and "rank 1 loaded" in r.stdout


def _errors(r: subprocess.CompletedProcess) -> list[str]:
    return [line for line in r.stderr.splitlines() if "Error:" in line and not line.startswith(" ")]


def test_replicas_not_divisible_by_processes(tmp_path):
    r = mpiexec(tmp_path, "train", replicas=3)
    assert r.returncode != 0
    errs = _errors(r)
    assert len(errs) == 2 and all("replication_factor 3 is not divisible by the 2 MPI processes" in e for e in errs)


def test_different_programs_on_the_ranks(tmp_path):
    r = mpiexec(tmp_path, "mismatch")
    assert r.returncode != 0
    errs = _errors(r)
    assert len(errs) == 2 and all("differs between ranks" in e for e in errs), r.stderr[-3000:]


def test_a_rank_that_raises_stops_the_others_naming_it(tmp_path):
    r = mpiexec(tmp_path, "raise")
    assert r.returncode != 0
    errs = _errors(r)
    assert any(e.startswith("ValueError: rank 1 could not read its data") for e in errs), r.stderr[-3000:]
    assert any("ReplicaError" in e and "because rank 1 failed: ValueError" in e for e in errs), r.stderr[-3000:]


def test_a_rank_that_dies(tmp_path):
    """The launcher ends the job at once (its default); without its clean-up the survivors' collective
    times out (20 s in mpi_program.py) with an error instead of hanging."""
    r = mpiexec(tmp_path, "die")
    assert r.returncode != 0 and not (tmp_path / "weights0.npz").exists()
    r = mpiexec(tmp_path, "die", flags=("-disable-auto-cleanup",))
    assert r.returncode != 0
    assert any("ReplicaError" in e and "did not complete within 20 s" in e for e in _errors(r)), r.stderr[-3000:]
