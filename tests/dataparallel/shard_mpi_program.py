"""Run under `mpiexec -n P` by test_shard_mpi.py: the shard_programs training with the weight update
sharded, each process feeding its own replicas; every rank writes every variable (full layout) and a
checkpoint is saved on rank 0 and read back everywhere.

  python shard_mpi_program.py REPLICAS STEPS SHARD(0|1) OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from shard_programs import gradients, program, variables  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.driver import CompileOptions, processes  # noqa: E402


def main() -> None:
    replicas, steps, shard, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", Path(sys.argv[4])
    rank, procs = processes()
    ir, h = program(replicas, "adam")
    sess = popxl.Session(ir, "cpu", options=CompileOptions(shard_weight_update=shard, collective_timeout_s=60.0))
    local = ir.instance_replication_factor
    first = rank * local
    with sess:
        for step in range(steps):
            grads = gradients(ir, h, step)  # every replica's; this process feeds its own
            sess.run({s: (g[first] if local == 1 else g[first:first + local]) for s, g in grads.items()})
        sess.save_checkpoint(out / "ckpt.npz")
        sess.load_checkpoint(out / "ckpt.npz")
        data = variables(sess)
    np.savez(out / f"vars{rank}.npz", **data)
    print(f"rank {rank} of {procs}: {len(sess._sharded)} sharded variables", flush=True)


if __name__ == "__main__":
    main()
