"""Compile a program ahead of time.

  python -m tools.compile TARGET --emit {ll,asm,obj,so,header,all} -o PATH [--level N] [--prefix NAME]
  python -m tools.compile TARGET --target poplar -o DIR [--level N]
  python -m tools.compile TARGET --target onnx -o FILE.onnx [--level N]

TARGET is a saved IR or a Python file defining build_ir() (see tools/target.py).
--emit writes LLVM output for this CPU: LLVM IR (ll), assembly (asm), an object file (obj), a shared
library (so, needs gcc) or the C header of the entry points (header); `all` writes each into the folder
PATH. --target poplar writes a Poplar C++ program and its build file into DIR; --target onnx writes an
ONNX model (PopART's input format). --level picks the pass pipeline (0-3; default 2).
"""
from __future__ import annotations

import argparse
import sys

from compiler import driver
from compiler.options import CompileOptions

from .target import TargetError, load_target

OPTIONAL = {"onnx", "onnxruntime"}  # third-party packages a backend may need and the user may not have


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="optc", description=__doc__.splitlines()[0],
                                 epilog="\n".join(__doc__.splitlines()[5:]), formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("target", metavar="TARGET", help="a saved IR (.json) or a Python file defining build_ir()")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--emit", choices=["ll", "asm", "obj", "so", "header", "all"], help="LLVM output for this CPU")
    what.add_argument("--target", dest="backend", choices=["onnx", "poplar"], help="an IPU program")
    ap.add_argument("-o", "--output", required=True, metavar="PATH")
    ap.add_argument("--level", type=int, choices=[0, 1, 2, 3], help="pass pipeline level (default 2)")
    ap.add_argument("--prefix", default="optc", help="symbol prefix of the C entry points (--emit; default optc)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = CompileOptions(prefix=args.prefix)
    if args.level is not None:
        opts.level = args.level
    try:
        ir = load_target(args.target)
        if args.emit == "all":
            paths = driver.emit_all(ir, args.output, opts)
        elif args.emit:
            paths = [driver.emit(ir, args.emit, args.output, opts)]
        elif args.backend == "onnx":
            driver.export_onnx(ir, args.output, opts)
            paths = [args.output]
        else:
            paths = driver.emit_poplar(ir, args.output, opts)
        print("\n".join(f"wrote {p}" for p in paths))
        return 0
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in OPTIONAL:
            raise  # a part of ours is broken: fail loudly
        print(f"optc: error: {e}", file=sys.stderr)
        return 2
    except (TargetError, ValueError, RuntimeError, NotImplementedError) as e:
        print(f"optc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
