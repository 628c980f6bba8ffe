"""Run under `mpiexec -n P` by test_mpi.py: the tutorial's training, or one of the fault cases.

  python mpi_program.py MODE REPLICAS GA STEPS DEVICE OUT_DIR
MODE: train | mismatch | raise | die | checkpoint
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from data_parallel import train_program  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.driver import CompileOptions, processes  # noqa: E402

B = 4


def main() -> None:
    mode, replicas, ga, steps, device, out = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5], Path(sys.argv[6])
    rank, procs = processes()
    np.random.seed(0)
    lr = 2e-3 if mode == "mismatch" and rank == 1 else 1e-3
    ir, (img, lab), variables, loss_s = train_program(replicas, ga, B, lr)
    sess = popxl.Session(ir, device, options=CompileOptions(collective_timeout_s=20.0))
    local, first = ir.instance_replication_factor, rank * ir.instance_replication_factor
    rng = np.random.default_rng(1)  # every rank draws the whole global batch and keeps its replicas' share
    with sess:
        for step in range(steps):
            x = rng.standard_normal((ga, replicas, B, 28, 28)).astype(np.float32)
            y = rng.integers(0, 10, (ga, replicas, B)).astype(np.int32)
            if step == 1 and rank == 1 and mode == "raise":
                raise ValueError("rank 1 could not read its data")
            if step == 1 and rank == 1 and mode == "die":
                os._exit(3)
            sess.run({img: x[:, first:first + local].reshape(sess._full_input_shape(img.shape)),
                      lab: y[:, first:first + local].reshape(sess._full_input_shape(lab.shape))})
        if mode == "checkpoint":
            sess.save_checkpoint(out / "ckpt.npz")
            sess.load_checkpoint(out / "ckpt.npz")  # every rank reads rank 0's file
            print(f"rank {rank} loaded", flush=True)
        weights = [sess.get_tensor_data(t) for t in variables.tensors]
    np.savez(out / f"weights{rank}.npz", *weights)
    print(f"rank {rank} of {procs} done", flush=True)


if __name__ == "__main__":
    main()
