"""Compile a program ahead of time.

  python -m tools.compile TARGET --emit {ll,asm,obj,so,header,all} -o PATH [--level N]
  python -m tools.compile TARGET --target {poplar,onnx} -o PATH

--emit writes LLVM output for this CPU (`all` writes every kind into the directory PATH).
"""
from __future__ import annotations

import argparse
import sys

from compiler.driver import CompileOptions

from .target import TargetError, load_target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="optc", description=__doc__.splitlines()[0])
    ap.add_argument("target")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--emit", choices=["ll", "asm", "obj", "so", "header", "all"])
    what.add_argument("--target", dest="backend", choices=["poplar", "onnx"])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--level", type=int, default=2, help="pass pipeline level 0-3 (default 2)")
    ap.add_argument("--prefix", default="optc", help="symbol prefix of the entry points")
    args = ap.parse_args(argv)
    opts = CompileOptions(level=args.level)
    try:
        ir = load_target(args.target)
        if args.emit == "all":
            from compiler.backends.llvm.emit import emit_all

            for p in emit_all(ir, args.output, opts, args.prefix):
                print(f"wrote {p}")
        elif args.emit:
            from compiler.backends.llvm.emit import emit

            print(f"wrote {emit(ir, args.emit, args.output, opts, args.prefix)}")
        else:
            try:
                if args.backend == "poplar":
                    from compiler.backends.poplar import emit_program as run
                else:
                    from compiler.backends.onnx import export as run
            except ImportError:
                raise TargetError(f"the {args.backend} backend is not part of this build") from None
            res = run(ir, args.output, opts)
            print(f"wrote {args.output}" if not isinstance(res, list) else "\n".join(f"wrote {p}" for p in res))
        return 0
    except (TargetError, ValueError, RuntimeError) as e:
        print(f"optc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
