"""Print graph schedules in PopXL's print_schedule format.

  python -m tools.print_schedule TARGET [--graph NAME | --all-graphs] [--after PASS | --pipeline LEVEL] [--diff]
                                  [--shard-weight-update] [--refusals]

TARGET is a saved IR or a Python file defining build_ir() (see tools/target.py). By default it prints
every graph except the main graph, in creation order, exactly as the PopXL tutorials'
`print(graph.print_schedule())` does; --all-graphs prints the main graph first, then the rest;
--graph main prints the main graph alone. --after/--pipeline print the IR after the pass pipeline;
--diff prints a unified diff of the schedules as built and after the pipeline (level 2 unless
--after or --pipeline says otherwise); --shard-weight-update adds that opt-in pass (an opt-in --after PASS
is added by itself). --refusals also prints, to stderr, why the fusion passes left ops apart
(fuse_elementwise, fuse_matmul_epilogue, fuse_matmul_prologue). Notes go to stderr, so stdout is the schedule text alone.
"""
from __future__ import annotations

import argparse
import difflib
import sys

from compiler.ir import Ir, print_schedule

from .target import TargetError, after_passes, load_target, select_graphs


def render(ir: Ir, graph: str | None = None, all_graphs: bool = False) -> str:
    """The schedules the command prints (the library's print_schedule of each selected graph, one per block)."""
    graphs, notes = select_graphs(ir, graph, all_graphs)
    for n in notes:
        print(f"print-schedule: note: {n}", file=sys.stderr)
    return "\n".join(print_schedule(g) for g in graphs)


def refusals(ir: Ir) -> list[str]:
    """Every refusal the fusion passes recorded, as `graph: pass: reason`."""
    keys = (("fusion_refusals", "fuse_elementwise"), ("epilogue_refusals", "fuse_matmul_epilogue"),
            ("prologue_refusals", "fuse_matmul_prologue"))
    return [f"{g.id or 'main'}: {name}: {r}" for g in ir.graphs.values() for key, name in keys
            for r in g.info.get(key, [])]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="print-schedule", description=__doc__.splitlines()[0],
                                 epilog="\n".join(__doc__.splitlines()[4:]), formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("target", metavar="TARGET", help="a saved IR (.json) or a Python file defining build_ir()")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--graph", metavar="NAME", help="only this graph ('main' for the main graph)")
    which.add_argument("--all-graphs", action="store_true", help="every graph, the main graph first")
    when = ap.add_mutually_exclusive_group()
    when.add_argument("--after", metavar="PASS", help="after the pipeline up to and including PASS")
    when.add_argument("--pipeline", metavar="LEVEL", type=int, help="after the whole pipeline at LEVEL (0-3)")
    ap.add_argument("--diff", action="store_true", help="unified diff: as built -> after the pipeline")
    ap.add_argument("--shard-weight-update", action="store_true",
                    help="with the opt-in pass shard_weight_update (CompileOptions.shard_weight_update)")
    ap.add_argument("--refusals", action="store_true", help="print the fusion passes' refusals (stderr)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        ir = load_target(args.target)
        enable = ("shard_weight_update",) if args.shard_weight_update else ()
        if args.diff:
            level = args.pipeline if args.pipeline is not None or args.after else 2
            before = render(ir, args.graph, args.all_graphs)
            after = render(after_passes(ir, args.after, level, enable), args.graph, args.all_graphs)
            what = f"after {args.after}" if args.after else f"after the level-{level} pipeline"
            diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "as built", what, lineterm="")
            print("\n".join(diff) or f"(no change {what})")
            return 0
        if args.after or args.pipeline is not None or args.refusals:
            ir = after_passes(ir, args.after, args.pipeline if args.pipeline is not None or args.after else 2, enable)
        print(render(ir, args.graph, args.all_graphs))
        if args.refusals:
            for line in refusals(ir):
                print(f"print-schedule: refusal: {line}", file=sys.stderr)
        return 0
    except TargetError as e:
        print(f"print-schedule: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
