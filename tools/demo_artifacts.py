"""Write the tutorial Adam's schedules and drawings, before and after the pass pipeline.

  python -m tools.demo_artifacts [--out out]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from compiler.ir import print_schedule
from compiler.ir.dot import to_dot

from .target import after_passes, load_target

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out")
    ap.add_argument("--target", default=str(ROOT / "examples" / "custom_optimiser.py"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ir = load_target(args.target)
    stages = {"before": ir, "after": after_passes(ir, "fuse_elementwise")}
    for stage, x in stages.items():
        text = "\n".join(print_schedule(g) for g in x.graphs.values())
        (out / f"schedule_{stage}.txt").write_text(text + "\n")
        dot = to_dot(x)
        (out / f"ir_{stage}.dot").write_text(dot.source)
        if shutil.which("dot"):
            (out / f"ir_{stage}.svg").write_bytes(dot.pipe(format="svg"))
    print(f"wrote schedules and drawings (before/after fusion) to {out.resolve()}/: "
          + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
