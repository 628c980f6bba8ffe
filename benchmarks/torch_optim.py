"""Step time of the compiled torch.optim.Adam drop-in (fused; and exact_sqrt=True, bit for bit torch's)
vs torch.optim.Adam (foreach and fused=True) on a
~25M-parameter model made of many tensors. Interleaved rounds, medians.

Run: python benchmarks/torch_optim.py [--rounds 15]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/adam_step.py: fair interleaving
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import interleaved_ms, save, table  # noqa: E402

from compiler.optim.torch import Adam  # noqa: E402

SHAPES = [(1024, 512)] * 48 + [(512,)] * 48 + [(1024,)] * 16  # 25.2M parameters in 112 tensors


def make(kind: str):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s)) for s in SHAPES]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-2
    if kind.startswith("ours"):
        opt = Adam(params, lr=1e-3, exact_sqrt=kind == "ours exact_sqrt")
    else:
        opt = torch.optim.Adam(params, lr=1e-3, foreach=kind == "torch foreach", fused=kind == "torch fused")
    return opt.step


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    n = sum(torch.Size(s).numel() for s in SHAPES)
    fns = {k: make(k) for k in ("ours", "ours exact_sqrt", "torch foreach", "torch fused")}
    ms = interleaved_ms(fns, args.rounds, reps=2)
    row = {"params": n, "tensors": len(SHAPES), **{k: round(v, 2) for k, v in ms.items()},
           "ratio ours/torch fused": round(ms["ours"] / ms["torch fused"], 3),
           "ratio exact_sqrt/torch fused": round(ms["ours exact_sqrt"] / ms["torch fused"], 3),
           "ratio ours/torch foreach": round(ms["ours"] / ms["torch foreach"], 3)}
    print(table([row], list(row)))
    print(f"wrote {save('torch_optim', {'rows': [row]})}")
    return row


if __name__ == "__main__":
    main()
