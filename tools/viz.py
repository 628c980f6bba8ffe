"""Draw the IR with Graphviz.

  python -m tools.viz TARGET -o OUT.{svg,png,pdf,dot} [--graph NAME] [--after PASS | --pipeline LEVEL]
                     [--format FMT] [--collapse-fused] [--legend]

TARGET is a saved IR or a Python file defining build_ir() (see tools/target.py). Every graph is drawn
(one cluster each) unless --graph names one. The suffix of OUT picks the format unless --format is given.
.dot is written by the graphviz Python package alone; the other formats run Graphviz's `dot` program
(Debian/Ubuntu: apt-get install graphviz). What the drawing shows: compiler/ir/dot.py.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from compiler.ir.dot import to_dot

from .target import TargetError, after_passes, load_target, select_graphs

FORMATS = ("svg", "png", "pdf", "dot")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ir-viz", description=__doc__.splitlines()[0],
                                 epilog="\n".join(__doc__.splitlines()[4:]), formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("target", metavar="TARGET", help="a saved IR (.json) or a Python file defining build_ir()")
    ap.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write")
    ap.add_argument("--format", choices=FORMATS, help="output format (default: the suffix of OUT)")
    ap.add_argument("--graph", metavar="NAME", help="only this graph ('main' for the main graph)")
    when = ap.add_mutually_exclusive_group()
    when.add_argument("--after", metavar="PASS", help="after the pipeline up to and including PASS")
    when.add_argument("--pipeline", metavar="LEVEL", type=int, help="after the whole pipeline at LEVEL (0-3)")
    ap.add_argument("--collapse-fused", action="store_true", help="draw fused kernels as one box, not their primitives")
    ap.add_argument("--legend", action="store_true", help="add a key to the shapes and colours")
    return ap


def check_renderer(fmt: str) -> None:
    """A clear TargetError when `fmt` needs Graphviz's `dot` program and it is not installed."""
    if fmt != "dot" and shutil.which("dot") is None:
        raise TargetError(f"writing .{fmt} needs Graphviz's `dot` program, which is not on PATH: install it with "
                          "`apt-get install graphviz` (Debian/Ubuntu; `make setup` does this), or write a .dot file "
                          "(-o out.dot) and render it elsewhere")


def write(dot: object, out: Path, fmt: str) -> None:
    """Write `dot` (a graphviz.Digraph) as `fmt`."""
    import graphviz

    if fmt == "dot":
        out.write_text(dot.source)  # type: ignore[attr-defined]
        return
    check_renderer(fmt)
    try:
        out.write_bytes(dot.pipe(format=fmt))  # type: ignore[attr-defined]
    except graphviz.ExecutableNotFound:
        raise TargetError("Graphviz's `dot` program could not be run: apt-get install graphviz") from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Path(args.output)
    fmt = args.format or out.suffix.lstrip(".").lower()
    try:
        if fmt not in FORMATS:
            raise TargetError(f"cannot tell the format from {out.name!r}: end OUT with .{', .'.join(FORMATS)} "
                              "or pass --format")
        check_renderer(fmt)
        ir = load_target(args.target)
        if args.after or args.pipeline is not None:
            ir = after_passes(ir, args.after, args.pipeline)
        graphs, notes = select_graphs(ir, args.graph, all_graphs=True)
        for n in notes:
            print(f"ir-viz: note: {n}", file=sys.stderr)
        out.parent.mkdir(parents=True, exist_ok=True)
        write(to_dot(ir, graphs, expand_fused=not args.collapse_fused, legend=args.legend), out, fmt)
        print(f"wrote {out}")
        return 0
    except TargetError as e:
        print(f"ir-viz: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
