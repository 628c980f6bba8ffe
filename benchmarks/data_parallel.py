"""Data-parallel MNIST training (the PopXL data-parallelism tutorial's program): samples/s of ours at
replication 1 and 2 in one process, and under `mpiexec -n 2` (one replica per process), next to PyTorch
DDP (gloo) with fused Adam on the same model and 2 processes. One thread per replica / process.

  python benchmarks/data_parallel.py [--batch 32] [--ga 2] [--steps 60] [--rounds 3]
  python benchmarks/data_parallel.py --sharded [--steps 10] [--rounds 3]

--sharded measures CompileOptions(shard_weight_update=True) against the same program unsharded, in one
process at 2 and 4 replicas: optimizer-state bytes per replica (exact, from the replicas' buffers) and
step time, on the tutorial's MNIST model and on a model whose optimizer dominates (4 layers of
2048x2048, micro-batch 8).

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


# ----------------------------------------------------------------------------- sharded weight update
class Wide:
    """4 x (2048x2048 + bias) layers with gelu, cross-entropy over 2048 classes: the optimizer's state and
    update dwarf the matmuls at micro-batch 8."""

    width, layers = 2048, 4


def wide_program(replicas: int, batch: int):
    """The tutorial's train_program shape (GA 1) on the Wide model: (ir, [x, labels] streams, variables)."""
    from data_parallel import optimizer_step
    from mnist_adam import Linear

    from compiler import addons, popxl
    from compiler.popxl import ops

    class Net(addons.Module):
        def __init__(self) -> None:
            super().__init__()
            for k in range(Wide.layers):
                setattr(self, f"fc{k}", Linear(Wide.width))

        def build(self, x: popxl.Tensor) -> popxl.Tensor:
            for k in range(Wide.layers):
                x = getattr(self, f"fc{k}")(x)
                x = ops.gelu(x) if k < Wide.layers - 1 else x
            return x

    from custom_optimiser import Adam

    ir = popxl.Ir(replication=replicas)
    with ir.main_graph:
        spec = popxl.TensorSpec((batch, Wide.width), popxl.float32)
        xs = popxl.h2d_stream(spec.shape, popxl.float32, "x")
        ls = popxl.h2d_stream((batch,), popxl.int32, "labels")
        loss_s = popxl.d2h_stream((), popxl.float32, "loss")
        facts, fwd = Net().create_graph(spec)
        variables = facts.init()
        bwd = addons.autodiff(fwd, grads_required=fwd.args.tensors)
        with popxl.in_sequence(True):
            x = ops.host_load(xs)
            labels = ops.host_load(ls, "labels")
            info = fwd.bind(variables).call_with_info(x)
            loss, dx = addons.ops.cross_entropy_with_grad(info.outputs[0], labels)
            ops.host_store(loss_s, loss)
            grads = bwd.call(dx, args=bwd.grad_graph_info.inputs_dict(info))
            for g in grads:
                ops.collectives.replicated_all_reduce_(g, op="mean")
            optimizer_step(variables, grads, Adam(cache=True), 1e-4)
    return ir, [xs, ls], variables


def worker_shard(model: str, replicas: int, shard: bool, steps: int) -> tuple[float, int, int]:
    """(median step ms, optimizer-state bytes per replica, those bytes unsharded) of one configuration."""
    from compiler import popxl
    from compiler.driver import CompileOptions

    np.random.seed(0)
    if model == "mnist":
        from data_parallel import train_program

        ga, batch = 2, 32
        ir, streams, variables, _ = train_program(replicas, ga, batch)
        shapes = [(ga, replicas, batch, 28, 28), (ga, replicas, batch)]
        classes = 10
    else:
        batch = 8
        ir, streams, variables = wide_program(replicas, batch)
        shapes = [(replicas, batch, Wide.width), (replicas, batch)]
        classes = Wide.width
    sess = popxl.Session(ir, "cpu", options=CompileOptions(threads=1, shard_weight_update=shard))
    rng = np.random.default_rng(0)
    feed = {streams[0]: rng.standard_normal(shapes[0]).astype(np.float32),
            streams[1]: rng.integers(0, classes, shapes[1]).astype(np.int32)}
    weights = {t._value.id for t in variables.tensors}  # state: every other variable but the accumulators
    state = [vid for n, vid in sess._names().items() if vid not in weights and not n.startswith("accum")]
    mine = sum(sess._devs[0][vid].nbytes for vid in state)
    full = sum(sess._host[vid].nbytes for vid in state)
    times = []
    with sess:
        for _ in range(3):
            sess.run(feed)
        for _ in range(steps):
            t0 = time.perf_counter()
            sess.run(feed)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, mine, full


SHARD_CONFIGS = [(m, r, sh) for m in ("mnist", "wide") for r in (2, 4) for sh in (False, True)]
MODEL_NAMES = {"mnist": "tutorial MNIST (GA 2, micro-batch 32)", "wide": "4 x 2048x2048, micro-batch 8"}


def launch_shard(model: str, replicas: int, shard: bool, steps: int) -> tuple[float, int, int]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "shard", "--model", model,
           "--replicas", str(replicas), "--steps", str(steps)] + (["--shard"] if shard else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), cwd=ROOT, timeout=1800)
    if p.returncode:
        raise RuntimeError(f"{model} R={replicas} shard={shard} failed:\n{p.stderr[-3000:]}")
    line = [x for x in p.stdout.splitlines() if x.startswith("SHARD ")][0].split()
    return float(line[1]), int(line[2]), int(line[3])


def main_sharded(a: argparse.Namespace) -> dict:
    from common import Table, write_result

    ms: dict[tuple, list[float]] = {c: [] for c in SHARD_CONFIGS}
    mem: dict[tuple, tuple[int, int]] = {}
    for r in range(a.rounds):
        for c in SHARD_CONFIGS:
            t, mine, full = launch_shard(*c, a.steps)
            ms[c].append(t)
            mem[c] = (mine, full)
            print(f"round {r + 1}: {c}: {t:.1f} ms/step, state {mine} B per replica", flush=True)
    med = {c: statistics.median(v) for c, v in ms.items()}
    t = Table("sharded", "shard_weight_update: optimizer state per replica and step time (one process, median of "
              "interleaved rounds, 1 thread per replica)",
              ["model", "replicas", "state MB/replica unsharded", "sharded", "state ratio",
               "step ms unsharded", "step ms sharded", "sharded / unsharded"])
    for m in ("mnist", "wide"):
        for r in (2, 4):
            off, on = (m, r, False), (m, r, True)
            t.add(model=MODEL_NAMES[m], replicas=r,
                  **{"state MB/replica unsharded": round(mem[off][0] / 1e6, 2),
                     "sharded": round(mem[on][0] / 1e6, 2),
                     "state ratio": round(mem[on][0] / mem[off][0], 4),
                     "step ms unsharded": round(med[off], 1), "step ms sharded": round(med[on], 1),
                     "sharded / unsharded": round(med[on] / med[off], 2)})
    t.notes.append(f"{a.steps} timed steps per launch after 3 warm-up steps, {a.rounds} rounds; state = Adam's "
                   "two moments (float16 first moments, as the tutorial); the weights stay whole on every replica")
    # its own result folder: the README's data_parallel block renders the newest file of its name
    write_result("data_parallel_sharded", [t],
                 command=" ".join(["python benchmarks/data_parallel.py", *sys.argv[1:]]), settings=vars(a),
                 notes=["each configuration in fresh processes; rounds interleave them"])
    return {str(k): v for k, v in med.items()}


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
    ap.add_argument("--sharded", action="store_true", help="the shard_weight_update table instead")
    ap.add_argument("--worker", choices=["ours", "ddp", "shard"], help=argparse.SUPPRESS)
    ap.add_argument("--model", default="mnist", help=argparse.SUPPRESS)
    ap.add_argument("--shard", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--replicas", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--world", type=int, default=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker == "ours":
        rate = worker_ours(a.replicas, a.ga, a.batch, a.steps)
        from compiler.driver import processes

        if processes()[0] == 0:  # under mpiexec every rank measures; one line, or the ranks' prints interleave
            print(f"SAMPLES_PER_S {rate:.3f}", flush=True)
        return {}
    if a.worker == "shard":
        t, mine, full = worker_shard(a.model, a.replicas, a.shard, a.steps)
        print(f"SHARD {t:.3f} {mine} {full}", flush=True)
        return {}
    if a.sharded:
        return main_sharded(a)
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
