"""Poplar C++ program generation: the IR as a program an IPU user builds with the Poplar SDK and runs.

    lower(optimised_ir, options) -> Emitted        (in memory; compiler/driver.py runs the passes first)
    write(emitted, out_dir) -> [paths written]

writes into `out_dir`:
  program.cpp      the program (see program.py for its layout, docs/poplar_mapping.md for op -> PopLibs)
  CMakeLists.txt   builds it against the Poplar SDK
  data/*.bin       initial values too large to write into the source (raw little-endian)
  manifest.json    variables and host streams: names, dtypes, shapes (the run loop's file formats)
  README.md        build and run instructions

Nothing here needs the SDK: the output is checked in the tests by g++ -fsyntax-only against declarations
of the public API, and its popops::expr arithmetic by an evaluator against the reference interpreter.
"""
from __future__ import annotations

import json
from pathlib import Path
from compiler.ir import Ir
from compiler.options import CompileOptions

from .files import CMAKE, README
from .kernel import KernelCode
from .program import Emitted, emit_source
from .types import PoplarError

NAME = "program"


def lower(ir: Ir, options: CompileOptions) -> Emitted:
    """The program for the optimised `ir`, in memory (what `write` puts in a folder)."""
    return emit_source(ir, NAME)


def write(em: Emitted, out_dir: str | Path) -> list[Path]:
    """Write the Poplar program folder into `out_dir`; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def write(rel: str, data: str | bytes) -> None:
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
        paths.append(p)

    write(f"{NAME}.cpp", em.source)
    write("CMakeLists.txt", CMAKE.replace("@NAME@", NAME))
    write("README.md", README.replace("@NAME@", NAME))
    write("manifest.json", json.dumps(em.manifest, indent=1) + "\n")
    for name, data in sorted(em.data_files.items()):
        write(f"data/{name}", data)
    return paths


__all__ = ["lower", "write", "Emitted", "KernelCode", "PoplarError"]
