"""Differential fuzzing: random programs run by the interpreter (the reference, no passes) and by the
compiled backend with the default pipeline and with each pass disabled in turn.

  python -m tools.fuzz --programs N --seed S [--out DIR] [--each-pass-off]

A mismatch is shrunk to the fewest ops that still fail and saved to DIR as `fail_<seed>.json` (the
saved IR) plus `fail_<seed>.py` (a TARGET with build_ir() for print_schedule / viz / compile).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions

from .progen import generate


def tolerance(dtype: np.dtype) -> tuple[float, float]:
    """Transcendentals, matmul and reductions may differ in the last bits between numpy and native code."""
    if dtype == np.float16:
        return 5e-3, 5e-3
    if dtype == np.float32:
        return 1e-5, 1e-5
    return 1e-10, 1e-12


def run(ir: Any, device: str, options: CompileOptions) -> dict[str, np.ndarray]:
    sess = popxl.Session(ir, device, options=options)
    with sess:
        sess.run()
    return {ir.main.values[v].name: sess._host[v].copy() for v in ir.variables}


def check(seed: int, n_ops: int | None = None, skips: list[tuple[str, ...]] | None = None) -> str | None:
    """None when every configuration agrees with the reference, else a description of the first mismatch."""
    ref = run(generate(seed, n_ops), "interpreter", CompileOptions(level=0))
    for skip in skips or [()]:
        try:
            got = run(generate(seed, n_ops), "cpu", CompileOptions(skip=skip))
        except Exception as e:  # a crash in compilation is a finding too
            return f"skip={skip}: {type(e).__name__}: {e}"
        for k, want in ref.items():
            rtol, atol = tolerance(want.dtype)
            if not np.allclose(got[k].astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                               equal_nan=True):
                return f"skip={skip}: {k} differs by {np.nanmax(np.abs(got[k].astype(np.float64) - want)):.3g}"
    return None


def shrink(seed: int, skips: list[tuple[str, ...]] | None) -> int:
    """The fewest ops (a prefix of the same random recipe) that still fail."""
    from random import Random

    full = Random(seed)
    # generate() draws shape, dtype and the op count first; replay them to learn the original count
    full.choice([0] * 5), full.choice([0] * 4)
    n = full.randint(3, 14)
    for k in range(1, n + 1):
        if check(seed, k, skips) is not None:
            return k
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz-failures")
    ap.add_argument("--each-pass-off", action="store_true", help="also compile with each pass disabled")
    args = ap.parse_args(argv)
    skips: list[tuple[str, ...]] = [()]
    if args.each_pass_off:
        from passes.pipeline import LEVELS

        skips += [(p,) for p in LEVELS[2]]
    failures = 0
    t0 = time.perf_counter()
    for seed in range(args.seed, args.seed + args.programs):
        why = check(seed, None, skips)
        if why is None:
            continue
        failures += 1
        k = shrink(seed, skips)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        generate(seed, k).save(out / f"fail_{seed}.json")
        (out / f"fail_{seed}.py").write_text(
            f'"""Fuzz reproducer: {why}"""\nfrom tools.progen import generate\n\n\n'
            f"def build_ir():\n    return generate({seed}, {k})\n")
        print(f"seed {seed}: {why} (shrunk to {k} ops; saved in {out})", flush=True)
    dt = time.perf_counter() - t0
    print(f"{args.programs} programs x {len(skips)} configurations in {dt:.0f} s: {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
