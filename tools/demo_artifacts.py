"""Write the tutorial Adam's schedules and drawings, before and after the pass pipeline (up to fusion).

  python -m tools.demo_artifacts [--out out] [--target examples/custom_optimiser.py] [--after fuse_elementwise]

Writes into the output folder: adam_before.txt / adam_after.txt (every graph's schedule in PopXL's
format), adam_diff.txt (a unified diff of the two), adam_before.svg / adam_after.svg (Graphviz drawings;
.dot files when Graphviz's `dot` program is missing) and adam.json (the IR as built, for `ir.load`).
`make demo` runs it.
"""
from __future__ import annotations

import argparse
import difflib
import shutil
import sys
from pathlib import Path

from compiler.ir import Ir, print_schedule
from compiler.ir.dot import to_dot

from .target import TargetError, after_passes, load_target

ROOT = Path(__file__).resolve().parents[1]


def schedules(ir: Ir) -> str:
    return "\n".join(print_schedule(g) for g in ir.graphs.values()) + "\n"


def write_artifacts(ir: Ir, out: Path, after: str = "fuse_elementwise", stem: str = "adam") -> list[Path]:
    """Write the files listed in the module docstring; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stages = {"before": ir, "after": after_passes(ir, after)}
    written = [out / f"{stem}.json"]
    ir.save(written[0])
    for stage, x in stages.items():
        p = out / f"{stem}_{stage}.txt"
        p.write_text(schedules(x))
        dot = to_dot(x, legend=True)
        if shutil.which("dot"):
            p2 = out / f"{stem}_{stage}.svg"
            p2.write_bytes(dot.pipe(format="svg"))
        else:
            p2 = out / f"{stem}_{stage}.dot"
            p2.write_text(dot.source)
        written += [p, p2]
    diff = difflib.unified_diff(schedules(ir).splitlines(), schedules(stages["after"]).splitlines(),
                                f"{stem} as built", f"{stem} after {after}", lineterm="")
    written.append(out / f"{stem}_diff.txt")
    written[-1].write_text("\n".join(diff) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="demo-artifacts", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out", help="output folder (default out/)")
    ap.add_argument("--target", default=str(ROOT / "examples" / "custom_optimiser.py"), help="TARGET to draw")
    ap.add_argument("--after", default="fuse_elementwise", metavar="PASS", help="the last pass of the 'after' IR")
    args = ap.parse_args(argv)
    try:
        written = write_artifacts(load_target(args.target), Path(args.out), args.after)
    except TargetError as e:
        print(f"demo-artifacts: error: {e}", file=sys.stderr)
        return 2
    folder = Path(args.out).resolve()
    print(f"wrote the Adam schedules and drawings, as built and after {args.after}, to {folder}/:")
    for p in written:
        print(f"  {p.name}")
    if not shutil.which("dot"):
        print("  (Graphviz's `dot` is not installed, so the drawings are .dot files: apt-get install graphviz)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
