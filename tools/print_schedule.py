"""Print graph schedules in PopXL's print_schedule format.

  python -m tools.print_schedule TARGET [--graph NAME] [--after PASS | --pipeline LEVEL] [--subgraphs] [--diff]

TARGET: a saved IR or a Python file with build_ir() (see tools/target.py). By default every graph
is printed, subgraphs first and the main graph last.
"""
from __future__ import annotations

import argparse
import difflib
import sys

from compiler.ir import print_schedule

from .target import TargetError, after_passes, load_target, select_graphs


def render(ir, graph: str | None, subgraphs_only: bool) -> str:
    return "\n".join(print_schedule(g) for g in select_graphs(ir, graph, not subgraphs_only))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="print-schedule", description=__doc__.splitlines()[0])
    ap.add_argument("target")
    ap.add_argument("--graph", help="only this graph (use 'main' for the main graph)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--after", metavar="PASS", help="show the IR after this pass of the pipeline")
    g.add_argument("--pipeline", type=int, metavar="LEVEL", help="show the IR after the whole pipeline (0-3)")
    ap.add_argument("--subgraphs", action="store_true", help="leave out the main graph")
    ap.add_argument("--diff", action="store_true", help="unified diff: as built vs after the pipeline (default level 2)")
    args = ap.parse_args(argv)
    try:
        ir = load_target(args.target)
        if args.diff:
            before = render(ir, args.graph, args.subgraphs)
            level = args.pipeline if args.pipeline is not None else (None if args.after else 2)
            after_ir = after_passes(ir, args.after, level)
            after = render(after_ir, args.graph if args.graph is None or args.graph in after_ir.graphs or
                           args.graph == "main" else None, args.subgraphs)
            sys.stdout.writelines(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                                       "as built", f"after {args.after or f'level {level}'}"))
            print()
            return 0
        if args.after or args.pipeline is not None:
            ir = after_passes(ir, args.after, args.pipeline)
        print(render(ir, args.graph, args.subgraphs))
        return 0
    except (TargetError, KeyError, ValueError) as e:
        print(f"print-schedule: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
