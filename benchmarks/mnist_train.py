"""Train the tutorial MLP (784-512-512-512-10, gelu, Adam lr 1e-3) on Fashion-MNIST for one epoch with
this compiler (device cpu) and with PyTorch eager, same data order and initialisation scheme; report
test accuracy and training steps/s at batch 8 and 128.

Run: python benchmarks/mnist_train.py [--data DIR] [--batches 8,128] [--limit-steps N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import mnist_adam  # noqa: E402
from common import save, table  # noqa: E402

from compiler.data import batches, load_mnist, stats  # noqa: E402


def torch_run(train, test, mean, std, batch, lr, seed, limit, fused):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    layers = []
    for i, (fi, fo) in enumerate([(784, 512), (512, 512), (512, 512), (512, 10)]):
        lin = nn.Linear(fi, fo)
        nn.init.normal_(lin.weight, 0, 0.02)  # the tutorial's Linear: N(0, 0.02) weights, zero bias
        nn.init.zeros_(lin.bias)
        layers += [lin] + ([nn.GELU(approximate="tanh")] if i < 3 else [])
    net = nn.Sequential(nn.Flatten(), *layers)
    opt = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-5, fused=fused)
    loss_fn = nn.CrossEntropyLoss()
    steps = 0
    t0 = time.perf_counter()
    for x, y in batches(train, batch, mean, std, seed=seed):
        xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        steps += 1
        if limit and steps >= limit:
            break
    dt = time.perf_counter() - t0
    correct = total = 0
    with torch.no_grad():
        for x, y in batches(test, 80, mean, std, shuffle=False):
            correct += int((net(torch.from_numpy(x)).argmax(-1).numpy() == y).sum())
            total += len(y)
    return {"steps_per_s": steps / dt, "test_accuracy": 100.0 * correct / total, "steps": steps}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=mnist_adam.DEFAULT_DATA)
    ap.add_argument("--batches", default="8,128")
    ap.add_argument("--limit-steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    train, test = load_mnist(args.data, "train"), load_mnist(args.data, "test")
    mean, std = stats(train)
    rows = []
    for bs in map(int, args.batches.split(",")):
        ours = mnist_adam.train(args.data, 1, bs, 1e-3, "cpu", args.seed, args.limit_steps, quiet=True)
        row = {"batch": bs, "ours steps/s": round(ours["steps_per_s"], 1), "ours acc %": round(ours["test_accuracy"], 2)}
        try:
            for name, fused in (("torch", False), ("torch fused", True)):
                t = torch_run(train, test, mean, std, bs, 1e-3, args.seed, args.limit_steps, fused)
                row[f"{name} steps/s"] = round(t["steps_per_s"], 1)
                row[f"{name} acc %"] = round(t["test_accuracy"], 2)
            row["speed-up vs torch"] = round(row["ours steps/s"] / row["torch steps/s"], 2)
            row["speed-up vs torch fused"] = round(row["ours steps/s"] / row["torch fused steps/s"], 2)
            row["acc diff (pts)"] = round(row["ours acc %"] - row["torch acc %"], 2)
        except ImportError:
            pass
        rows.append(row)
        print(row, flush=True)
    cols = ["batch", "ours steps/s", "torch steps/s", "torch fused steps/s", "speed-up vs torch",
            "speed-up vs torch fused", "ours acc %", "torch acc %", "torch fused acc %", "acc diff (pts)"]
    print(table(rows, cols))
    print(f"wrote {save('mnist_train', {'rows': rows})}")
    return {"rows": rows}


if __name__ == "__main__":
    main()
