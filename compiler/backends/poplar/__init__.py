"""Poplar C++ program generation: the IR as a program an IPU user builds with the Poplar SDK and runs.

    emit_program(ir, out_dir, options=None) -> [paths written]

runs the pass pipeline (`compiler.driver.optimise`, level 2 unless `options` says otherwise) and writes
into `out_dir`:
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
from typing import Any

from compiler.ir import Ir

from .files import CMAKE, README
from .kernel import KernelCode
from .program import Emitted, emit_source
from .types import PoplarError

NAME = "program"


def emit(ir: Ir, options: Any = None) -> Emitted:
    """The program for `ir` after the pass pipeline, in memory (what emit_program writes)."""
    from compiler.driver import CompileOptions, optimise

    return emit_source(optimise(ir, options or CompileOptions(level=2)), NAME)


def emit_program(ir: Ir, out_dir: str | Path, options: Any = None) -> list[Path]:
    """Write the Poplar program for `ir` into `out_dir`; returns the paths written."""
    out = Path(out_dir)
    em = emit(ir, options)
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


__all__ = ["emit_program", "emit", "Emitted", "KernelCode", "PoplarError"]
