"""Ahead-of-time output: LLVM IR, assembly, an object file, a shared library, and the C header."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from compiler.ir import Ir

from .abi import header
from .executable import compile_module, threads_of
from runtime.artifact import Manifest

KINDS = ("ll", "asm", "obj", "so", "header")


def build(ir: Ir, options: Any = None, prefix: str = "optc") -> tuple[Any, Manifest, Any, Ir]:
    from compiler.driver import CompileOptions, optimise

    opts = options or CompileOptions()
    work = optimise(ir, opts)
    mod, layout, tm = compile_module(work, prefix, threads_of(opts))
    return mod, layout, tm, work


def emit(ir: Ir, kind: str, path: str | os.PathLike, options: Any = None, prefix: str = "optc") -> Path:
    """Write one artefact of the compiled program to `path`."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; choose one of {', '.join(KINDS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mod, layout, tm, work = build(ir, options, prefix)
    if kind == "ll":
        path.write_text(str(mod))
    elif kind == "asm":
        path.write_text(tm.emit_assembly(mod))
    elif kind == "header":
        path.write_text(header(work, layout))
    elif kind == "obj":
        path.write_bytes(tm.emit_object(mod))
    else:
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise RuntimeError("building a shared library needs a C compiler (gcc): apt-get install gcc")
        with tempfile.TemporaryDirectory() as d:
            obj = Path(d) / f"{prefix}.o"
            obj.write_bytes(tm.emit_object(mod))
            r = subprocess.run([cc, "-shared", "-o", str(path), str(obj), "-lm", "-lpthread"],
                               capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError(f"linking {path} failed:\n{r.stderr}")
    return path


def emit_all(ir: Ir, out_dir: str | os.PathLike, options: Any = None, prefix: str = "optc") -> list[Path]:
    out = Path(out_dir)
    names = {"ll": f"{prefix}.ll", "asm": f"{prefix}.s", "obj": f"{prefix}.o", "so": f"lib{prefix}.so",
             "header": f"{prefix}.h"}
    return [emit(ir, k, out / names[k], options, prefix) for k in KINDS]
