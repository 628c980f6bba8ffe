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

from . import target
from .abi import header
from .backend import compile_module
from .cpu_header import constructor_source
from .isa import Target

KINDS = ("ll", "asm", "obj", "so", "header")
FILE_NAMES = {"ll": "{}.ll", "asm": "{}.s", "obj": "{}.o", "so": "lib{}.so", "header": "{}.h"}


def write(ir: Ir, kinds: tuple[str, ...], paths: list[Path], options: CompileOptions) -> list[Path]:
    """Compile the optimised `ir` once and write each output kind to its path."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}; choose one of {', '.join(KINDS)}")
    prefix = options.prefix
    tgt = target.resolve(options.target_cpu, options.target_triple)
    mod, layout, tm = compile_module(ir, prefix, tgt)
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
            _link_shared(tm.emit_object(mod), path, prefix, header(ir, layout), tgt)
    return paths


def c_compiler(tgt: Target) -> str:
    """gcc for this machine's architecture, <arch>-linux-gnu-gcc for another (Debian's cross compilers)."""
    if tgt.arch == target.host_target().arch:
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise RuntimeError("building a shared library needs a C compiler (gcc): apt-get install gcc")
        return cc
    name = f"{tgt.arch}-linux-gnu-gcc"
    cc = shutil.which(name)
    if cc is None:
        raise RuntimeError(f"building a shared library for {tgt.triple} needs the cross compiler {name} "
                           f"(Debian: apt-get install gcc-{tgt.arch.replace('_', '-')}-linux-gnu); or emit obj and link it there")
    return cc


def _link_shared(obj: bytes, path: Path, prefix: str, header_text: str, tgt: Target) -> None:
    """lib<prefix>.so: the object, plus a constructor that refuses a CPU lacking the target's features."""
    cc = c_compiler(tgt)
    with tempfile.TemporaryDirectory() as d:
        o = Path(d) / f"{prefix}.o"
        o.write_bytes(obj)
        (Path(d) / f"{prefix}.h").write_text(header_text)
        check = Path(d) / f"{prefix}_cpu_check.c"
        check.write_text(constructor_source(prefix, f"{prefix}.h"))
        r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(path), str(o), str(check), "-lm", "-lgomp"],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"linking {path} failed:\n{r.stderr}")


def default_paths(out_dir: str | os.PathLike, prefix: str, kinds: tuple[str, ...] = KINDS) -> list[Path]:
    return [Path(out_dir) / FILE_NAMES[k].format(prefix) for k in kinds]
