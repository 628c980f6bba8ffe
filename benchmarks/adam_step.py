"""One Adam step: the compiled tutorial Adam vs numpy in-place ufuncs and torch.optim.Adam.

Run: python benchmarks/adam_step.py [--sizes 1,16,64] [--repeat 20]
Prints ms/step, effective GB/s at 28 bytes/param (fp32 state), ratio to torch fused, and the
machine's in-place-add bandwidth; writes benchmarks/results/adam_step.json.
"""
from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np

# torch's OpenMP workers otherwise spin for a while after each step and steal the two cores from
# whichever variant runs next in the interleaved rounds; passive waiting keeps the comparison fair
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from common import inplace_add_gbps, interleaved_ms, save, table  # noqa: E402

from compiler import popxl  # noqa: E402
from custom_optimiser import Adam  # noqa: E402

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


def compiled_step(shapes: list[tuple[int, ...]], first_order: popxl.dtype):
    """A Session that applies the tutorial Adam to each parameter (graphs deduplicated by the passes)."""
    ir = popxl.Ir()
    rng = np.random.default_rng(0)
    opt = Adam(cache=True)
    with ir.main_graph:
        for i, shape in enumerate(shapes):
            w = popxl.variable(rng.standard_normal(shape).astype(np.float32), name=f"w{i}")
            g = popxl.variable(rng.standard_normal(shape).astype(np.float32) * 1e-2, name=f"g{i}")
            facts, graph = opt.create_graph(w, w.spec, lr=LR, beta1=B1, beta2=B2, eps=EPS,
                                            first_order_dtype=first_order)
            graph.bind(facts.init()).call(w, g)
    sess = popxl.Session(ir, "cpu")
    sess.__enter__()
    return sess.run


def numpy_step(shapes):
    rng = np.random.default_rng(0)
    ps = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    gs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    tmp = [np.empty_like(p) for p in ps]
    state = {"t": 0}

    def step():
        state["t"] += 1
        t = state["t"]
        c1, c2 = 1 - B1 ** t, 1 - B2 ** t
        for p, g, m, v, w in zip(ps, gs, ms, vs, tmp):
            m *= B1
            m += (1 - B1) * g
            v *= B2
            np.multiply(g, g, out=w)
            w *= 1 - B2
            v += w
            np.divide(v, c2, out=w)
            np.sqrt(w, out=w)
            w += EPS
            np.divide(m, w, out=w)
            w *= -LR / c1
            p += w
    return step


def torch_step(shapes, **kw):
    import torch

    torch.manual_seed(0)
    ps = [torch.randn(s, requires_grad=True) for s in shapes]
    for p in ps:
        p.grad = torch.randn(p.shape) * 1e-2
    opt = torch.optim.Adam(ps, lr=LR, betas=(B1, B2), eps=EPS, **kw)
    return opt.step


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,16,64", help="single-tensor sizes in millions of parameters")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    cases = [(f"1 x {m}M", [(m * 2**20,)]) for m in map(int, args.sizes.split(","))]
    cases.append(("100 x 0.16M", [(16 * 2**20 // 100,)] * 100))
    bw = inplace_add_gbps()
    rows = []
    for label, shapes in cases:
        n = sum(int(np.prod(s)) for s in shapes)
        row = {"case": label, "params": n}
        variants = {"ours fp32": partial(compiled_step, shapes, popxl.float32),
                    "ours fp16 m": partial(compiled_step, shapes, popxl.float16),
                    "numpy": partial(numpy_step, shapes)}
        if torch is not None:
            variants["torch foreach"] = partial(torch_step, shapes, foreach=True)
            variants["torch fused"] = partial(torch_step, shapes, fused=True)
        fns = {name: make() for name, make in variants.items()}
        row.update({name: round(ms, 3) for name, ms in interleaved_ms(fns, args.repeat).items()})
        del fns
        row["GB/s ours fp32"] = round(28 * n / (row["ours fp32"] * 1e-3) / 1e9, 1)
        row["% of add bw"] = round(100 * row["GB/s ours fp32"] / bw, 1)
        if "torch fused" in row:
            row["ratio fp32/torch fused"] = round(row["ours fp32"] / row["torch fused"], 3)
            row["ratio fp16m/torch fused"] = round(row["ours fp16 m"] / row["torch fused"], 3)
        row["ratio fp32/numpy"] = round(row["ours fp32"] / row["numpy"], 3)
        rows.append(row)
        print(f"{label}: {row}", flush=True)
    cols = ["case", "ours fp32", "ours fp16 m", "numpy", "torch foreach", "torch fused", "GB/s ours fp32",
            "% of add bw", "ratio fp32/torch fused", "ratio fp16m/torch fused", "ratio fp32/numpy"]
    print(f"\nin-place add bandwidth (1 thread): {bw:.1f} GB/s; times are median ms/step")
    print(table(rows, cols))
    path = save("adam_step", {"inplace_add_gbps": bw, "rows": rows})
    print(f"wrote {path}")
    return {"bw": bw, "rows": rows}


if __name__ == "__main__":
    main()
