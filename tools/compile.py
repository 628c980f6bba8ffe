"""Compile a program ahead of time.

  python -m tools.compile TARGET --emit {ll,asm,obj,so,header,all} -o PATH [--level N] [--prefix NAME]
  python -m tools.compile TARGET --emit so,header -o DIR [--level N] [--prefix NAME]
  python -m tools.compile TARGET --emit obj,header -o DIR --target-cpu neoverse-n1 --triple aarch64-linux-gnu
  python -m tools.compile TARGET --target poplar -o DIR [--level N]
  python -m tools.compile TARGET --target onnx -o FILE.onnx|DIR [--level N]

TARGET is a saved IR or a Python file defining build_ir() (see tools/target.py).
--emit writes LLVM output for this CPU: LLVM IR (ll), assembly (asm), an object file (obj), a shared
library (so, needs gcc) or the C header of the entry points (header); several kinds separated by commas,
or `all`, write each into the folder PATH. --target poplar writes a Poplar C++ program and its build file
into DIR; --target onnx writes an ONNX model (PopART's input format) to FILE.onnx, or to DIR/NAME.onnx
when -o is a folder (NAME: the TARGET file's name). --level picks the pass pipeline (0-3; default 2).
--target-cpu (an LLVM CPU name: x86-64-v2, x86-64-v3, haswell, skylake-avx512, znver3, generic, neoverse-n1,
apple-m1, ...; default this machine) and --triple (default this machine's, or aarch64-unknown-linux-gnu for
an ARM CPU) choose what --emit generates code for; the header records the ISA extensions it needs.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compiler import driver
from compiler.options import CompileOptions

from .target import TargetError, load_target

OPTIONAL = {"onnx", "onnxruntime"}  # third-party packages a backend may need and the user may not have


KINDS = ("ll", "asm", "obj", "so", "header")


def emit_kinds(text: str) -> tuple[str, ...]:
    """`so,header` -> ("so", "header"); `all` -> every kind."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in (*KINDS, "all")]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"unknown kind(s) {bad or [text]}; choose from {', '.join(KINDS)} or all, "
                                         "comma-separated")
    return KINDS if "all" in kinds else tuple(dict.fromkeys(kinds))


def output_file(output: str, target: str, suffix: str) -> str:
    """-o as a file path: an existing folder (or one ending in '/') gets FOLDER/<target file's name><suffix>."""
    if os.path.isdir(output) or output.endswith(os.sep):
        source = target if os.path.exists(target) else target.rpartition(":")[0]
        return os.path.join(output, Path(source).stem + suffix)
    return output


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="optc", description=__doc__.splitlines()[0],
                                 epilog="\n".join(__doc__.splitlines()[5:]), formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("target", metavar="TARGET", help="a saved IR (.json) or a Python file defining build_ir()")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--emit", type=emit_kinds, metavar="{ll,asm,obj,so,header,all}[,...]",
                      help="LLVM output for this CPU (several: comma-separated)")
    what.add_argument("--target", dest="backend", choices=["onnx", "poplar"], help="an IPU program")
    ap.add_argument("-o", "--output", required=True, metavar="PATH")
    ap.add_argument("--level", type=int, choices=[0, 1, 2, 3], help="pass pipeline level (default 2)")
    ap.add_argument("--prefix", default="optc", help="symbol prefix of the C entry points (--emit; default optc)")
    ap.add_argument("--target-cpu", metavar="NAME", help="LLVM CPU to generate code for (--emit; default: this machine)")
    ap.add_argument("--triple", metavar="TRIPLE", help="target triple (--emit; e.g. aarch64-linux-gnu)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = CompileOptions(prefix=args.prefix, target_cpu=args.target_cpu, target_triple=args.triple)
    if args.level is not None:
        opts.level = args.level
    try:
        ir = load_target(args.target)
        if args.emit and len(args.emit) > 1:
            paths = driver.emit_all(ir, args.output, opts, args.emit)
        elif args.emit:
            paths = [driver.emit(ir, args.emit[0], args.output, opts)]
        elif args.backend == "onnx":
            out = output_file(args.output, args.target, ".onnx")
            driver.export_onnx(ir, out, opts)
            paths = [out]
        else:
            paths = driver.emit_poplar(ir, args.output, opts)
        print("\n".join(f"wrote {p}" for p in paths))
        return 0
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in OPTIONAL:
            raise  # a part of ours is broken: fail loudly
        print(f"optc: error: {e}", file=sys.stderr)
        return 2
    except (TargetError, ValueError, RuntimeError, NotImplementedError, OSError) as e:
        print(f"optc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
