"""Ahead-of-time output of an optimised IR: LLVM IR, assembly, an object file, a shared library, and
the C header of the entry points. compiler/driver.py runs the passes first (driver.emit)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from compiler.ir import Ir
from compiler.options import CompileOptions

from .abi import header
from .backend import compile_module

KINDS = ("ll", "asm", "obj", "so", "header")
FILE_NAMES = {"ll": "{}.ll", "asm": "{}.s", "obj": "{}.o", "so": "lib{}.so", "header": "{}.h"}


def write(ir: Ir, kinds: tuple[str, ...], paths: list[Path], options: CompileOptions) -> list[Path]:
    """Compile the optimised `ir` once and write each output kind to its path."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}; choose one of {', '.join(KINDS)}")
    prefix = options.prefix
    mod, layout, tm = compile_module(ir, prefix)
    for kind, path in zip(kinds, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "ll":
            path.write_text(str(mod))
        elif kind == "asm":
            path.write_text(tm.emit_assembly(mod))
        elif kind == "header":
            path.write_text(header(ir, layout))
        elif kind == "obj":
            path.write_bytes(tm.emit_object(mod))
        else:
            _link_shared(tm.emit_object(mod), path, prefix)
    return paths


def _link_shared(obj: bytes, path: Path, prefix: str) -> None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("building a shared library needs a C compiler (gcc): apt-get install gcc")
    with tempfile.TemporaryDirectory() as d:
        o = Path(d) / f"{prefix}.o"
        o.write_bytes(obj)
        r = subprocess.run([cc, "-shared", "-o", str(path), str(o), "-lm", "-lgomp"],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"linking {path} failed:\n{r.stderr}")


def default_paths(out_dir: str | os.PathLike, prefix: str, kinds: tuple[str, ...] = KINDS) -> list[Path]:
    return [Path(out_dir) / FILE_NAMES[k].format(prefix) for k in kinds]
