"""Differential fuzzing campaign: random programs on every configuration against the interpreter.

  python -m tools.fuzz --programs N --seed S [--out DIR] [--quick] [--big P] [--inplace-values] [--nonfinite]

Each program (compiler/testing/generate.py) runs on the reference interpreter without passes and on:
the interpreter after the default pipeline (pass bugs), native code without passes (backend bugs),
native code with the default pipeline, and native code with each pass of the pipeline switched off
in turn (unless --quick). A failing program is shrunk against its first failing configuration and
saved to DIR as `<seed>-<config>.py` (the recipe, its schedules and a `build_ir()` for
print_schedule / viz / compile; run it to re-check) and `<seed>-<config>.ir.json` (the saved Ir).
DIR/summary.json lists every finding. Exit status 1 when anything failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from compiler.testing import build, count_steps, random_program
from compiler.testing.differential import REFERENCE, Config, Finding, as_source, check, configs
from compiler.testing.shrink import shrink

REPRO = '''"""Fuzz reproducer (seed {seed}, shrunk from {before} to {after} steps in {tries} tries).

{finding}

Schedules:
{schedules}
"""
import json

from compiler.testing import build
from compiler.testing.differential import Config, check

PROGRAM = json.loads({program})
CONFIG = Config({device!r}, {level!r}, {skip!r})


def build_ir():
    return build(PROGRAM).ir


if __name__ == "__main__":
    found = check(PROGRAM, [CONFIG])
    print("\\n".join(map(str, found)) or "passes now")
'''


def save_reproducer(out: Path, seed: int, program: dict, finding: Finding, before: int, tries: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    c = finding.config
    stem = out / f"{seed}-{c.label}"
    ctx = build(program)
    ctx.ir.save(stem.with_suffix(".ir.json"))
    text = REPRO.format(seed=seed, before=before, after=count_steps(program["steps"]), tries=tries,
                        finding=str(finding).replace('"""', "'''"), schedules=as_source(ctx),
                        program=repr(json.dumps(program)), device=c.device, level=c.level, skip=c.skip)
    path = stem.with_suffix(".py")
    path.write_text(text)
    return path


def shrink_finding(program: dict, finding: Finding, cache_dir: str, budget: int) -> tuple[dict, int]:
    def still_fails(p: dict) -> bool:
        return any(f.signature == finding.signature for f in check(p, [finding.config], cache_dir))

    return shrink(program, still_fails, budget)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=100, help="how many programs (default 100)")
    ap.add_argument("--seed", type=int, default=0, help="first seed; program k uses seed S+k")
    ap.add_argument("--out", default="fuzz-failures", help="folder for reproducers (default fuzz-failures)")
    ap.add_argument("--quick", action="store_true", help="only native code with the default pipeline")
    ap.add_argument("--size", type=int, default=None, help="top-level steps per program (default random 4-20)")
    ap.add_argument("--big", type=float, default=0.05, help="chance of a size above the threading threshold")
    ap.add_argument("--inplace-values", action="store_true", help="also update intermediates in place")
    ap.add_argument("--nonfinite", action="store_true", help="feed NaN and Inf through the host streams")
    ap.add_argument("--no-shrink", action="store_true", help="save failing programs as generated")
    ap.add_argument("--budget", type=int, default=300, help="shrinking tries per failure (default 300)")
    ap.add_argument("--cache-dir", default=None, help="compile cache (default: a fresh temporary folder)")
    args = ap.parse_args(argv)

    cfgs = [Config("cpu", 2)] if args.quick else configs(each_pass_off=True)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="fuzz-cache-")
    out = Path(args.out)
    summary: list[dict] = []
    t0 = time.perf_counter()
    for seed in range(args.seed, args.seed + args.programs):
        program = random_program(seed, args.size, args.big, args.inplace_values, args.nonfinite)
        found = check(program, cfgs, cache)
        if not found:
            continue
        first = found[0]
        entry = {"seed": seed, "configs": [f.config.label for f in found], "finding": str(first)}
        if first.config != REFERENCE:
            small, tries = (program, 0) if args.no_shrink else shrink_finding(program, first, cache, args.budget)
            redo = check(small, [first.config], cache)
            entry["reproducer"] = str(save_reproducer(out, seed, small, redo[0] if redo else first,
                                                      count_steps(program["steps"]), tries))
            entry["steps"] = count_steps(small["steps"])
        summary.append(entry)
        print(f"seed {seed}: {first} [fails on {', '.join(entry['configs'])}]"
              + (f" -> {entry['reproducer']}" if "reproducer" in entry else ""), flush=True)
    dt = time.perf_counter() - t0
    line = (f"{args.programs} programs x {len(cfgs)} configurations in {dt:.0f} s: "
            f"{len(summary)} failing programs")
    if summary:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({"programs": args.programs, "seed": args.seed,
                                                      "configurations": [c.label for c in cfgs],
                                                      "failures": summary}, indent=1))
    print(line)
    return 1 if summary else 0


if __name__ == "__main__":
    sys.exit(main())
