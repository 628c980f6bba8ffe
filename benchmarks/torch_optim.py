"""Step time of the compiled torch.optim.Adam drop-in (fused; and exact_sqrt=True, bit for bit torch's)
vs torch.optim.Adam (foreach and fused=True) on a
~25M-parameter model made of many tensors. Interleaved rounds, medians, with a 50 ms pause before each
variant (paused) and without (back to back); torch at its defaults (its own thread count included).

Run: python benchmarks/torch_optim.py [--quick] [--rounds 15]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import PAUSE_S, Table, interleaved_ms, write_result  # noqa: E402

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
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per protocol (default 15)")
    ap.add_argument("--quick", action="store_true", help="5 rounds")
    ap.add_argument("--results-dir", default=None, help="where to write the result (default benchmarks/results)")
    args = ap.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 15)
    n = sum(torch.Size(s).numel() for s in SHAPES)
    fns = {k: make(k) for k in ("ours", "ours exact_sqrt", "torch foreach", "torch fused")}
    t = Table("main", f"torch.optim drop-in, {n / 1e6:.1f}M parameters in {len(SHAPES)} tensors: median ms/step",
              ["protocol", "ours", "ours exact_sqrt", "torch foreach", "torch fused", "ours / torch fused",
               "exact_sqrt / torch fused"],
              notes=["exact_sqrt=True: bit for bit torch.optim.Adam's default (torch.sqrt between two kernels)."])
    for protocol, pause in (("paused", PAUSE_S), ("back to back", 0.0)):
        ms = interleaved_ms(fns, rounds, reps=2, pause_s=pause)
        t.add(protocol=protocol, **ms, **{"ours / torch fused": ms["ours"] / ms["torch fused"],
                                          "exact_sqrt / torch fused": ms["ours exact_sqrt"] / ms["torch fused"]})
        print(t.rows[-1], flush=True)
    path = write_result("torch_optim", [t], command="python benchmarks/torch_optim.py" + (" --quick" if args.quick else ""),
                        settings={"rounds": rounds, "reps": 2, "pause_s": PAUSE_S, "torch_threads": torch.get_num_threads()},
                        notes=[f"torch at its defaults ({torch.get_num_threads()} threads); ours with its default "
                               "CompileOptions."], results_dir=args.results_dir)
    print(f"wrote {path}")
    return {"path": path, "rows": t.rows}


if __name__ == "__main__":
    main()
