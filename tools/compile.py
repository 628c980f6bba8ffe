"""Compile a program ahead of time.

  python -m tools.compile TARGET --emit {ll,asm,obj,so,header,all} -o PATH [--level N] [--prefix NAME]
  python -m tools.compile TARGET --target poplar -o DIR [--level N]
  python -m tools.compile TARGET --target onnx -o FILE.onnx [--level N]

TARGET is a saved IR or a Python file defining build_ir() (see tools/target.py).
--emit writes LLVM output for this CPU: LLVM IR (ll), assembly (asm), an object file (obj), a shared
library (so, needs gcc) or the C header of the entry points (header); `all` writes each into the folder
PATH. --target poplar writes a Poplar C++ program and its build file into DIR; --target onnx writes an
ONNX model (PopART's input format). --level picks the pass pipeline (0-3; default: the backend's own).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Callable

from compiler.driver import CompileOptions

from .target import TargetError, load_target

# --target NAME -> (module, function(ir, path, options))
BACKENDS = {"poplar": ("compiler.backends.poplar", "emit_program"), "onnx": ("compiler.backends.onnx", "export")}


def backend(module: str, function: str, what: str) -> Callable[..., Any]:
    """`module.function`, or a TargetError saying the backend is not available and why."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise TargetError(f"the {what} backend ({module}) cannot be loaded: {e}. If the module itself is missing, "
                          "this checkout does not have that backend yet; if a package is missing, install it "
                          "(pip install -e '.[test]' installs onnx and onnxruntime)") from None
    fn = getattr(mod, function, None)
    if fn is None:
        raise TargetError(f"the {what} backend ({module}) has no {function}(); this checkout's backend is incomplete")
    return fn


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="optc", description=__doc__.splitlines()[0],
                                 epilog="\n".join(__doc__.splitlines()[5:]), formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("target", metavar="TARGET", help="a saved IR (.json) or a Python file defining build_ir()")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--emit", choices=["ll", "asm", "obj", "so", "header", "all"], help="LLVM output for this CPU")
    what.add_argument("--target", dest="backend", choices=sorted(BACKENDS), help="an IPU program")
    ap.add_argument("-o", "--output", required=True, metavar="PATH")
    ap.add_argument("--level", type=int, choices=[0, 1, 2, 3], help="pass pipeline level (default: the backend's)")
    ap.add_argument("--prefix", default="optc", help="symbol prefix of the C entry points (--emit; default optc)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = CompileOptions(level=args.level) if args.level is not None else None
    try:
        ir = load_target(args.target)
        if args.emit == "all":
            for p in backend("compiler.backends.llvm.emit", "emit_all", "LLVM")(ir, args.output, opts, args.prefix):
                print(f"wrote {p}")
        elif args.emit:
            emit = backend("compiler.backends.llvm.emit", "emit", "LLVM")
            print(f"wrote {emit(ir, args.emit, args.output, opts, args.prefix)}")
        else:
            module, function = BACKENDS[args.backend]
            res = backend(module, function, args.backend)(ir, args.output, opts)
            paths = res if isinstance(res, (list, tuple)) else [args.output]
            print("\n".join(f"wrote {p}" for p in paths))
        return 0
    except (TargetError, ValueError, RuntimeError, NotImplementedError) as e:
        print(f"optc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
