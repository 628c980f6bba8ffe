"""The torch.optim drop-in inside real training loops: the optimizer step timed right after
`loss.backward()` (torch's OpenMP workers are then awake, as in every user's loop) and the whole
iteration (zero_grad, forward, backward, step), against torch.optim.AdamW default (foreach) and
fused=True, at torch's defaults (no OMP_* variable is set here); "ours 1 thread" runs the same kernel
on the calling thread only. Plus the fixed cost per step on 50 tiny tensors (step alone, gradients
fixed).

Protocol: the variants (each with its own copy of the model, same initial weights and batches) are
interleaved round after round in one process with a 50 ms pause between variants; within a variant's
turn the iterations run back to back like a training loop. Medians over rounds.

Run: python benchmarks/torch_loop.py [--rounds 12] [--quick]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import PAUSE_S, Table, table, write_result  # noqa: E402

from compiler.options import CompileOptions  # noqa: E402
from compiler.optim.torch import AdamW  # noqa: E402

nn = torch.nn
VARIANTS = ("ours", "ours 1 thread", "torch fused", "torch foreach")


class Transformer(nn.Module):
    """TransformerEncoder, 4 layers, d_model 256, with an embedding and a head: 3.7M parameters in 51 tensors."""

    def __init__(self, vocab: int = 1000, d: int = 256) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=1024, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
        self.head = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.emb(x))).flatten(0, 1)


def _mlp() -> nn.Module:
    """The tutorial MLP (784-512-512-512-10, tanh-GELU)."""
    layers: list[nn.Module] = []
    for i, o in ((784, 512), (512, 512), (512, 512)):
        layers += [nn.Linear(i, o), nn.GELU(approximate="tanh")]
    return nn.Sequential(*layers, nn.Linear(512, 10))


def _convnet() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(64, 10))
    return net.to(memory_format=torch.channels_last)


def _models(quick: bool) -> dict[str, tuple[Callable[[], nn.Module], Callable[[torch.Generator], tuple]]]:
    b = 4 if quick else 8
    return {
        "TransformerEncoder 4x256": (Transformer, lambda g: (torch.randint(0, 1000, (b, 64), generator=g),
                                                             torch.randint(0, 1000, (b * 64,), generator=g))),
        "tutorial MLP, batch 32": (_mlp, lambda g: (torch.randn(32, 784, generator=g),
                                                    torch.randint(0, 10, (32,), generator=g))),
        "conv net, channels_last": (_convnet, lambda g: (
            torch.randn(16, 3, 32, 32, generator=g).contiguous(memory_format=torch.channels_last),
            torch.randint(0, 10, (16,), generator=g))),
    }


def _optimizer(kind: str, params) -> torch.optim.Optimizer:
    if kind == "ours":
        return AdamW(params, lr=1e-3)
    if kind == "ours 1 thread":  # shows the interplay of our thread pair with torch's OpenMP workers
        return AdamW(params, lr=1e-3, compile_options=CompileOptions(device="cpu", threads=1))
    return torch.optim.AdamW(params, lr=1e-3, fused=kind == "torch fused")


def _loop_turn(net: nn.Module, opt: torch.optim.Optimizer, batch: Callable, gen: torch.Generator, iters: int
               ) -> list[tuple[float, float]]:
    """`iters` training iterations; per iteration (seconds in step() right after backward, whole)."""
    out = []
    for _ in range(iters):
        x, y = batch(gen)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        out.append((t2 - t1, t2 - t0))
    return out


def loop_row(name: str, make: Callable[[], nn.Module], batch: Callable, rounds: int, iters: int) -> dict:
    torch.manual_seed(0)
    base = make()
    runs = {}
    for kind in VARIANTS:
        net = copy.deepcopy(base)
        runs[kind] = (net, _optimizer(kind, net.parameters()), torch.Generator().manual_seed(1))
    for net, opt, gen in runs.values():  # warm-up: compiles ours, reaches its steady state
        _loop_turn(net, opt, batch, gen, 3)
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in VARIANTS}
    for _ in range(rounds):
        for kind, (net, opt, gen) in runs.items():
            time.sleep(PAUSE_S)
            samples[kind] += _loop_turn(net, opt, batch, gen, iters)
    _check_same_training(name, {k: r[0] for k, r in runs.items()}, base)
    ps = list(base.parameters())
    row = {"model": name, "params": sum(p.numel() for p in ps), "tensors": len(ps)}
    for kind, s in samples.items():
        row[f"step ms {kind}"] = round(statistics.median(t for t, _ in s) * 1e3, 3)
        row[f"iteration ms {kind}"] = round(statistics.median(t for _, t in s) * 1e3, 3)
    row["step ours/fused"] = round(row["step ms ours"] / row["step ms torch fused"], 3)
    row["iteration ours/fused"] = round(row["iteration ms ours"] / row["iteration ms torch fused"], 3)
    return row


def _check_same_training(name: str, nets: dict[str, nn.Module], base: nn.Module, tol: float = 0.1) -> None:
    """Every variant saw the same batches from the same weights, so the timed loops must have moved the
    weights alike: each variant ends within tol of torch fused's total movement from the start (ours
    agrees with torch's Adam to ~1 ulp per step; torch's foreach and fused drift apart about as much)."""
    def flat(net: nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    ref, start = flat(nets["torch fused"]), flat(base)
    moved = float((ref - start).norm())
    for kind, net in nets.items():
        off = float((flat(net) - ref).norm())
        if not off <= tol * moved:
            raise AssertionError(f"{name}: {kind} trained to {off:.3g} from torch fused, which moved {moved:.3g}")


def overhead_row(rounds: int, steps: int, n: int = 50, size: int = 16) -> dict:
    """The fixed cost of one step over n tiny tensors (gradients fixed, no backward)."""
    steppers = {}
    for kind in VARIANTS:
        torch.manual_seed(0)
        ps = [nn.Parameter(torch.randn(size)) for _ in range(n)]
        for p in ps:
            p.grad = torch.randn_like(p)
        steppers[kind] = _optimizer(kind, ps).step
    for step in steppers.values():
        for _ in range(5):
            step()
    samples: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(rounds):
        for kind, step in steppers.items():
            time.sleep(PAUSE_S)
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            samples[kind].append((time.perf_counter() - t0) / steps)
    row = {"tensors": n, "elements each": size}
    for kind, s in samples.items():
        row[f"us {kind}"] = round(statistics.median(s) * 1e6, 1)
    row["ours/fused"] = round(row["us ours"] / row["us torch fused"], 3)
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--iters", type=int, default=4, help="iterations per variant per round")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, smaller transformer batch")
    ap.add_argument("--models", default="", help="only the models whose names contain one of these comma-separated "
                    "words (e.g. 'conv'); the result is then not written")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    loop = Table("loop", "AdamW inside a training loop: ms per step right after backward, and per iteration",
                 ["model", "params", "tensors", *(f"step ms {k}" for k in VARIANTS), "step ours/fused",
                  *(f"iteration ms {k}" for k in VARIANTS), "iteration ours/fused"])
    words = [w for w in args.models.split(",") if w]
    for name, (make, batch) in _models(args.quick).items():
        if words and not any(w in name for w in words):
            continue
        loop.add(**loop_row(name, make, batch, rounds, args.iters))
        print(table(loop.rows[-1:], loop.columns), flush=True)
    if words:
        return {"loop": loop.rows}
    over = Table("overhead", "AdamW fixed cost per step on tiny tensors (us, step alone)",
                 ["tensors", "elements each", *(f"us {k}" for k in VARIANTS), "ours/fused"])
    over.add(**overhead_row(rounds * 2, 50 if args.quick else 200))
    print(table(over.rows, over.columns))
    notes = [f"{rounds} interleaved rounds, {PAUSE_S * 1e3:.0f} ms pause between variants, iterations back to "
             f"back within a variant; torch.get_num_threads() = {torch.get_num_threads()}, torch's defaults"]
    path = write_result("torch_loop", [loop, over], command="python benchmarks/torch_loop.py"
                        + (" --quick" if args.quick else ""), settings=vars(args), notes=notes)
    print(f"wrote {path}")
    return {"loop": loop.rows, "overhead": over.rows}


if __name__ == "__main__":
    main()
