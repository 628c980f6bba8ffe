"""Train the tutorial MLP (784-512-512-512-10, tanh-gelu; Adam lr 1e-3, eps 1e-5, no bias correction, as
the tutorial's optimiser_step) for one epoch with this compiler (examples/mnist_adam.py, device cpu) and with
PyTorch eager, from the same initial weights in the same batch order; report test accuracy and training
steps/s at batch 8 and 128, plus where our step's time goes.

  python benchmarks/mnist_train.py [--data DIR] [--batches 8,128] [--threads 1] [--limit-steps N]

PyTorch runs the same update rule (`TutorialAdam`, foreach ops like torch.optim.Adam's default) and, for
reference, torch.optim.Adam itself (bias-corrected). Steps/s are given twice: over the whole epoch, and as
the median of interleaved rounds (ours, torch, ours, ...) on the same batches, which shared-machine load
drift affects least; the ratios use the interleaved figures.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "examples", ROOT / "benchmarks"):
    sys.path.insert(0, str(p))
import mnist_adam  # noqa: E402
from common import save, table  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.data import batches, stats  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402

LAYERS = ("fc1", "fc2", "fc3", "fc4")


def initial_weights(bs: int, seed: int) -> dict[str, np.ndarray]:
    """The initial variables mnist_adam.train draws for this seed, by name (fc1.weight, ...)."""
    np.random.seed(seed)
    ir, _, variables, _ = mnist_adam.train_ir(bs)
    return {k: ir.variables[t._value.id].copy() for k, t in variables.named_tensors.items()}


def torch_net(init: dict[str, np.ndarray]):
    import torch
    from torch import nn

    mods: list = [nn.Flatten()]
    for i, name in enumerate(LAYERS):
        w = init[f"{name}.weight"]
        lin = nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))  # ours is (in, out), torch's (out, in)
            lin.bias.copy_(torch.from_numpy(init[f"{name}.bias"]))
        mods += [lin] + ([nn.GELU(approximate="tanh")] if i < 3 else [])
    return nn.Sequential(*mods)


def tutorial_adam(params, lr: float, betas=(0.9, 0.999), eps: float = 1e-5):
    """The tutorial's update in torch foreach ops: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    w -= lr m / (sqrt(v) + eps) (no bias correction, no weight decay)."""
    import torch

    class TutorialAdam(torch.optim.Optimizer):
        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                ps = [p for p in group["params"] if p.grad is not None]
                gs = [p.grad for p in ps]
                for p in ps:
                    if not self.state[p]:
                        self.state[p].update(m=torch.zeros_like(p), v=torch.zeros_like(p))
                ms = [self.state[p]["m"] for p in ps]
                vs = [self.state[p]["v"] for p in ps]
                torch._foreach_lerp_(ms, gs, 1 - betas[0])
                torch._foreach_mul_(vs, betas[1])
                torch._foreach_addcmul_(vs, gs, gs, value=1 - betas[1])
                denom = torch._foreach_sqrt(vs)
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(ps, ms, denom, value=-lr)

    return TutorialAdam(params, {"lr": lr})


class TorchTrainer:
    def __init__(self, init: dict[str, np.ndarray], lr: float, optimiser: str) -> None:
        import torch

        self.torch = torch
        self.net = torch_net(init)
        self.opt = (tutorial_adam(self.net.parameters(), lr) if optimiser == "tutorial" else
                    torch.optim.Adam(self.net.parameters(), lr=lr, eps=1e-5, fused=optimiser == "fused"))
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.net(self.torch.from_numpy(x)), self.torch.from_numpy(y.astype(np.int64)))
        loss.backward()
        self.opt.step()
        return loss.item()

    def accuracy(self, test, mean: float, std: float) -> float:
        correct = total = 0
        with self.torch.no_grad():
            for x, y in batches(test, 80, mean, std, shuffle=False):
                correct += int((self.net(self.torch.from_numpy(x)).argmax(-1).numpy() == y).sum())
                total += len(y)
        return 100.0 * correct / total


def torch_epoch(train, test, mean, std, bs, lr, seed, limit, optimiser) -> dict:
    init = initial_weights(bs, seed)
    t = TorchTrainer(init, lr, optimiser)
    steps, t0 = 0, time.perf_counter()
    for x, y in batches(train, bs, mean, std, seed=seed):
        t.step(x, y)
        steps += 1
        if limit and steps >= limit:
            break
    dt = time.perf_counter() - t0
    return {"steps_per_s": steps / dt, "test_accuracy": t.accuracy(test, mean, std)}


def interleaved(train, mean, std, bs, lr, seed, threads, rounds: int, per_round: int) -> dict[str, float]:
    """Median steps/s per round of `per_round` steps, ours and torch's alternating on the same batches."""
    data = list(b for _, b in zip(range(per_round), batches(train, bs, mean, std, seed=seed + 1)))
    np.random.seed(seed)
    ir, streams, _, _ = mnist_adam.train_ir(bs)
    sess = popxl.Session(ir, "cpu", options=CompileOptions(threads=threads))
    feeds = [dict(zip(streams, b)) for b in data]
    init = initial_weights(bs, seed)
    runners = {"ours": lambda f, x, y: sess.run(f),
               "torch": (lambda tr: lambda f, x, y: tr.step(x, y))(TorchTrainer(init, lr, "tutorial")),
               "torch.optim.Adam": (lambda tr: lambda f, x, y: tr.step(x, y))(TorchTrainer(init, lr, "adam")),
               "torch fused Adam": (lambda tr: lambda f, x, y: tr.step(x, y))(TorchTrainer(init, lr, "fused"))}
    times: dict[str, list[float]] = {k: [] for k in runners}
    with sess:
        for r in range(rounds + 1):
            for k, run in runners.items():
                t0 = time.perf_counter()
                for f, (x, y) in zip(feeds, data):
                    run(f, x, y)
                if r:  # round 0 warms up
                    times[k].append(len(data) / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in times.items()}


PIECES = ("forward", "forward+backward", "adam", "step")


def build_piece(bs: int, piece: str):
    """A program with one piece of the training step: forward + loss; forward + backward (the gradients
    summed into one number so nothing is dropped); the eight Adam updates on gradient variables; the step."""
    from compiler import addons
    from compiler.popxl import ops

    if piece == "step":
        return mnist_adam.train_ir(bs)[0]
    ir = popxl.Ir(replication=1)
    with ir.main_graph:
        img = ops.host_load(popxl.h2d_stream((bs, 28, 28), popxl.float32, "image"))
        labels = ops.host_load(popxl.h2d_stream((bs,), popxl.int32, "labels"), "labels")
        facts, fwd = mnist_adam.Net().create_graph(img)
        if piece == "adam":
            variables = facts.init()
            grads = {v: popxl.variable(np.full(v.shape, 1e-3, np.float32), name=f"g.{k}")
                     for k, v in variables.named_tensors.items()}
            mnist_adam.optimiser_step(variables, grads, mnist_adam.Adam(cache=True))
            out = ops.sum(img)
        else:
            bwd = addons.autodiff(fwd) if piece == "forward+backward" else None
            variables = facts.init()
            info = fwd.bind(variables).call_with_info(img)
            out, dx = addons.ops.cross_entropy_with_grad(info.outputs[0], labels)
            if bwd is not None:
                binfo = bwd.call_with_info(dx, args=bwd.grad_graph_info.inputs_dict(info))
                grads = bwd.grad_graph_info.fwd_parent_ins_to_grad_parent_outs(info, binfo)
                for v in variables.tensors:
                    out = out + ops.sum(grads[v])
        ops.host_store(popxl.d2h_stream(out.shape, out.dtype, "out"), out)
    return ir


def profile_ours(bs: int, threads: int, reps: int) -> dict[str, float]:
    """Median ms per step of each piece of our training step, compiled on its own, executable called directly."""
    rng = np.random.default_rng(0)
    feeds = {"image": rng.standard_normal((1, bs, 28, 28)).astype(np.float32),
             "labels": rng.integers(0, 10, (1, bs)).astype(np.int32)}
    out = {}
    for piece in PIECES:
        np.random.seed(0)
        sess = popxl.Session(build_piece(bs, piece), "cpu", options=CompileOptions(threads=threads))
        exe, dev = sess._exe, sess._dev
        for _ in range(3):
            exe.run(dev, feeds, 1)
        samples = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(reps):
                exe.run(dev, feeds, 1)
            samples.append((time.perf_counter() - t0) / reps * 1e3)
        out[piece] = round(statistics.median(samples), 3)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=mnist_adam.DEFAULT_DATA)
    ap.add_argument("--batches", default="8,128")
    ap.add_argument("--limit-steps", type=int, default=None, help="train at most N steps per run (quick look)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="threads for both ours and torch (default 1: the "
                    "machine is shared; use 2 on an idle 2-core machine)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    train, test = mnist_adam.load_data(args.data)
    mean, std = stats(train)
    rows, profiles = [], {}
    load0 = os.getloadavg()[0]
    for bs in map(int, args.batches.split(",")):
        opts = CompileOptions(threads=args.threads)
        ours = mnist_adam.train(args.data, 1, bs, 1e-3, "cpu", args.seed, args.limit_steps, quiet=True, options=opts)
        tut = torch_epoch(train, test, mean, std, bs, 1e-3, args.seed, args.limit_steps, "tutorial")
        ref = torch_epoch(train, test, mean, std, bs, 1e-3, args.seed, args.limit_steps, "adam")
        per_round = 400 if bs <= 32 else 40
        med = interleaved(train, mean, std, bs, 1e-3, args.seed, args.threads, args.rounds, per_round)
        profiles[bs] = profile_ours(bs, args.threads, 50 if bs <= 32 else 8)
        row = {"batch": bs, "ours acc %": round(ours["test_accuracy"], 2), "torch acc %": round(tut["test_accuracy"], 2),
               "torch.optim.Adam acc %": round(ref["test_accuracy"], 2),
               "acc diff (pts)": round(ours["test_accuracy"] - tut["test_accuracy"], 2),
               "ours steps/s (epoch)": round(ours["steps_per_s"], 1), "torch steps/s (epoch)": round(tut["steps_per_s"], 1),
               "torch.optim.Adam steps/s (epoch)": round(ref["steps_per_s"], 1),
               "ours steps/s": round(med["ours"], 1), "torch steps/s": round(med["torch"], 1),
               "torch.optim.Adam steps/s": round(med["torch.optim.Adam"], 1),
               "torch fused Adam steps/s": round(med["torch fused Adam"], 1),
               "speed-up vs torch fused Adam": round(med["ours"] / med["torch fused Adam"], 2),
               "speed-up vs torch": round(med["ours"] / med["torch"], 2),
               "speed-up vs torch.optim.Adam": round(med["ours"] / med["torch.optim.Adam"], 2),
               "ours ms/step": profiles[bs]}
        rows.append(row)
        print(row, flush=True)
    cols = ["batch", "ours acc %", "torch acc %", "torch.optim.Adam acc %", "acc diff (pts)", "ours steps/s",
            "torch steps/s", "torch.optim.Adam steps/s", "torch fused Adam steps/s", "speed-up vs torch",
            "speed-up vs torch.optim.Adam", "speed-up vs torch fused Adam",
            "ours steps/s (epoch)", "torch steps/s (epoch)"]
    print(table(rows, cols))
    for bs, prof in profiles.items():
        print(f"batch {bs}: ours ms/step by piece: " + ", ".join(f"{k} {v}" for k, v in prof.items()))
    meta = {"threads": args.threads, "torch": torch.__version__, "limit_steps": args.limit_steps,
            "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2)}
    print(f"wrote {save('mnist_train', {'settings': meta, 'rows': rows})}")
    return {"rows": rows}


if __name__ == "__main__":
    main()
