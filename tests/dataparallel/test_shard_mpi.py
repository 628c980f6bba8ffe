"""`mpiexec -n 2` with shard_weight_update: each process holds its replicas' shards; the weights and the
optimizer state (read back in the full layout on every rank) are bit for bit those of one process
hosting every replica, sharded or not. Each launch runs under a timeout."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .shard_programs import train
from .test_mpi import LIMIT_S, MPIEXEC

HERE = Path(__file__).resolve().parent


def launch(tmp_path: Path, replicas: int, steps: int, shard: bool) -> subprocess.CompletedProcess:
    import mpi4py  # noqa: F401  (the [mpi] extra, which make setup installs: a missing one fails the test)

    assert MPIEXEC is not None, "no mpiexec on PATH or beside this Python: pip install -e '.[mpi]' (mpich)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    cmd = [MPIEXEC, "-n", "2", sys.executable, str(HERE / "shard_mpi_program.py"), str(replicas), str(steps),
           "1" if shard else "0", str(tmp_path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT_S, env=env)


@pytest.mark.parametrize("replicas", [2, 4])
def test_two_processes_shard_like_one(tmp_path, replicas):
    steps = 3
    r = launch(tmp_path, replicas, steps, shard=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "rank 0 of 2: 10 sharded variables" in r.stdout and "rank 1 of 2: 10 sharded variables" in r.stdout
    want, _ = train(replicas, steps, False, optimizer="adam")
    for rank in (0, 1):
        with np.load(tmp_path / f"vars{rank}.npz") as z:
            assert sorted(z.files) == sorted(want)
            for n in want:
                assert np.array_equal(z[n], want[n]), f"rank {rank}: {n}"
    with np.load(tmp_path / "ckpt.npz") as z:  # the checkpoint rank 0 wrote holds the full layout
        assert sorted(tuple(z[k].shape) for k in z.files if k != "__manifest__") == \
            sorted(a.shape for a in want.values())
