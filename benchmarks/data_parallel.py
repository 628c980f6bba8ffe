"""Data-parallel MNIST training (the PopXL data-parallelism tutorial's program): samples/s of ours at
replication 1 and 2 in one process, and under `mpiexec -n 2` (one replica per process), next to PyTorch
DDP (gloo) with fused Adam on the same model and 2 processes. One thread per replica / process.

  python benchmarks/data_parallel.py [--batch 32] [--ga 2] [--steps 60] [--rounds 3]

Every configuration runs in fresh processes, in interleaved rounds (ours R=1, ours R=2, ours mpiexec,
torch DDP, then again), and the table gives each one's median over the rounds; only ratios from one
run mean anything on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples"), str(ROOT / "benchmarks")]


def batches(n: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` global batches of Fashion-MNIST (synthetic if the dataset is not installed), normalised."""
    from compiler.data import batches as mnist_batches
    from compiler.data import load_mnist, stats

    try:
        ds = load_mnist(Path("/usr/share/datasets/fashion-mnist"), "train")
        mean, std = stats(ds)
        out = []
        for x, y in mnist_batches(ds, size, mean, std, seed=seed):
            out.append((x, y))
            if len(out) == n:
                return out
    except FileNotFoundError:
        pass
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 28, 28)).astype(np.float32), rng.integers(0, 10, size).astype(np.int32))
            for _ in range(n)]


# ----------------------------------------------------------------------------- workers (one process each)
def worker_ours(replicas: int, ga: int, batch: int, steps: int) -> float:
    from data_parallel import train_program

    from compiler import popxl
    from compiler.driver import CompileOptions, processes

    np.random.seed(0)
    ir, (img, lab), _, _ = train_program(replicas, ga, batch)
    sess = popxl.Session(ir, "cpu", options=CompileOptions(threads=1))
    rank = processes()[0]
    local = ir.instance_replication_factor
    data = []
    for x, y in batches(steps + 5, ga * replicas * batch):
        x = x.reshape(ga, replicas, batch, 28, 28)[:, rank * local:(rank + 1) * local]
        y = y.reshape(ga, replicas, batch)[:, rank * local:(rank + 1) * local]
        data.append({img: np.ascontiguousarray(x).reshape(sess._full_input_shape(img.shape)),
                     lab: np.ascontiguousarray(y).reshape(sess._full_input_shape(lab.shape))})
    with sess:
        for d in data[:5]:
            sess.run(d)
        t0 = time.perf_counter()
        for d in data[5:]:
            sess.run(d)
        dt = time.perf_counter() - t0
    return steps * ga * replicas * batch / dt


def worker_ddp(rank: int, world: int, ga: int, batch: int, steps: int) -> float:
    import torch
    import torch.distributed as dist
    from torch import nn

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(),
                        nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 10))
    model = nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-5, fused=True)
    loss_fn = nn.CrossEntropyLoss()
    data = []
    for x, y in batches(steps + 5, ga * world * batch):
        x = x.reshape(ga, world, batch, 28, 28)[:, rank]
        y = y.reshape(ga, world, batch)[:, rank].astype(np.int64)
        data.append([(torch.from_numpy(np.ascontiguousarray(x[k])), torch.from_numpy(np.ascontiguousarray(y[k])))
                     for k in range(ga)])

    def step(micro: list) -> None:
        opt.zero_grad(set_to_none=True)
        for k, (x, y) in enumerate(micro):
            if k < len(micro) - 1:
                with model.no_sync():  # accumulate locally; the last micro-batch all-reduces
                    (loss_fn(model(x), y) / len(micro)).backward()
            else:
                (loss_fn(model(x), y) / len(micro)).backward()
        opt.step()

    for d in data[:5]:
        step(d)
    dist.barrier()
    t0 = time.perf_counter()
    for d in data[5:]:
        step(d)
    dist.barrier()
    dt = time.perf_counter() - t0
    dist.destroy_process_group()
    return steps * ga * world * batch / dt


# ----------------------------------------------------------------------------- launching
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _result(out: str) -> float:
    return float([line for line in out.splitlines() if line.startswith("SAMPLES_PER_S ")][0].split()[1])


def launch(config: str, a: argparse.Namespace) -> float:
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--batch", str(a.batch), "--ga", str(a.ga), "--steps", str(a.steps)]
    env = _clean_env()
    if config == "ours R=1":
        cmds = [me + ["--worker", "ours", "--replicas", "1"] + common]
    elif config == "ours R=2, 1 process":
        cmds = [me + ["--worker", "ours", "--replicas", "2"] + common]
    elif config == "ours R=2, mpiexec -n 2":
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
        cmds = [[mpiexec, "-n", "2"] + me + ["--worker", "ours", "--replicas", "2"] + common]
    else:
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
        cmds = [me + ["--worker", "ddp", "--rank", str(r), "--world", "2"] + common for r in range(2)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for c in cmds]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_out, e) in zip(procs, outs):
        if p.returncode:
            raise RuntimeError(f"{config} failed:\n{e[-3000:]}")
    return _result(outs[0][0])


CONFIGS = ["ours R=1", "ours R=2, 1 process", "ours R=2, mpiexec -n 2", "torch DDP (gloo, fused Adam), 2 processes"]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32, help="micro-batch per replica")
    ap.add_argument("--ga", type=int, default=2, help="gradient accumulation steps")
    ap.add_argument("--steps", type=int, default=60, help="timed optimizer steps per launch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", choices=["ours", "ddp"], help=argparse.SUPPRESS)
    ap.add_argument("--replicas", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--world", type=int, default=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker == "ours":
        print(f"SAMPLES_PER_S {worker_ours(a.replicas, a.ga, a.batch, a.steps):.3f}", flush=True)
        return {}
    if a.worker == "ddp":
        print(f"SAMPLES_PER_S {worker_ddp(a.rank, a.world, a.ga, a.batch, a.steps):.3f}", flush=True)
        return {}

    from common import Table, write_result

    samples: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for r in range(a.rounds):
        for c in CONFIGS:
            samples[c].append(launch(c, a))
            print(f"round {r + 1}: {c}: {samples[c][-1]:.0f} samples/s", flush=True)
    med = {c: statistics.median(v) for c, v in samples.items()}
    ddp = med[CONFIGS[-1]]
    t = Table("main", "samples/s (median of interleaved rounds, 1 thread per replica/process)",
              ["configuration", "samples/s", "vs torch DDP"])
    for c in CONFIGS:
        t.add(configuration=c, **{"samples/s": round(med[c], 1), "vs torch DDP": round(med[c] / ddp, 2)})
    t.notes.append(f"micro-batch {a.batch}, gradient accumulation {a.ga}, {a.steps} timed steps per launch after "
                   f"5 warm-up steps, {a.rounds} rounds")
    write_result("data_parallel", [t], command=" ".join(["python benchmarks/data_parallel.py", *sys.argv[1:]]),
                 settings=vars(a), notes=["each configuration in fresh processes; rounds interleave them"])
    print(json.dumps(med, indent=1))
    return med


if __name__ == "__main__":
    main()
