"""Draw the IR with Graphviz.

  python -m tools.viz TARGET -o out.{svg,png,pdf,dot} [--graph NAME] [--after PASS | --pipeline LEVEL]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from compiler.ir.dot import to_dot

from .target import TargetError, after_passes, load_target, select_graphs

FORMATS = ("svg", "png", "pdf", "dot")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ir-viz", description=__doc__.splitlines()[0])
    ap.add_argument("target")
    ap.add_argument("-o", "--output", required=True, help="output file; the suffix picks the format")
    ap.add_argument("--graph", help="only this graph (use 'main' for the main graph)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--after", metavar="PASS")
    g.add_argument("--pipeline", type=int, metavar="LEVEL")
    args = ap.parse_args(argv)
    out = Path(args.output)
    fmt = out.suffix.lstrip(".").lower()
    try:
        if fmt not in FORMATS:
            raise TargetError(f"unknown output format {fmt!r}: use one of .{', .'.join(FORMATS)}")
        if fmt != "dot" and shutil.which("dot") is None:
            raise TargetError(f"writing .{fmt} needs Graphviz's `dot` program: install it (apt-get install graphviz) "
                              "or write .dot and render it elsewhere")
        ir = load_target(args.target)
        if args.after or args.pipeline is not None:
            ir = after_passes(ir, args.after, args.pipeline)
        graphs = select_graphs(ir, args.graph)
        dot = to_dot(ir, graphs)
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "dot":
            out.write_text(dot.source)
        else:
            out.write_bytes(dot.pipe(format=fmt))
        print(f"wrote {out}")
        return 0
    except (TargetError, KeyError, ValueError) as e:
        print(f"ir-viz: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
