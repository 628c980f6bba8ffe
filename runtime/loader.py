"""Loading machine code into this process: an object file linked in memory through LLVM's JIT.
The result is the entry point's address and an owner that keeps the code mapped."""
from __future__ import annotations

import ctypes.util
import functools
from typing import Any

import llvmlite.binding as llvm

from . import openmp
from .elf_symbols import ElfError, symbols


@functools.cache
def prepare_llvm() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    libm = ctypes.util.find_library("m")  # expf, logf, erff, powf ... resolved in-process
    if libm:
        llvm.load_library_permanently(libm)
    openmp.load()  # GOMP_parallel and friends, for parallel regions


def _host_machine() -> llvm.TargetMachine:
    # the JIT only links the finished object: the host triple is all the engine needs. A fresh one
    # per engine, because the engine takes ownership of (and frees) its target machine.
    prepare_llvm()
    return llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(reloc="pic")


def load_object(obj: bytes, entry: str, more: tuple[bytes, ...] = ()) -> tuple[int, Any]:
    """Link object files in memory (MCJIT; `obj` may call functions `more` define); returns (address of
    `entry`, the engine owning the code)."""
    check_symbols((obj, *more))
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _host_machine())
    for o in (obj, *more):
        engine.add_object_file(llvm.ObjectFileRef.from_data(o))
    engine.finalize_object()
    addr = engine.get_function_address(entry)
    if not addr:
        raise RuntimeError(f"the compiled object has no entry point {entry!r}; clear the compile cache and retry")
    return addr, engine


def check_symbols(objects: tuple[bytes, ...]) -> None:
    """Refuse to link objects that need a symbol neither they nor this process provide: the JIT would
    bind it to address 0 and the first call would crash the process."""
    prepare_llvm()
    try:
        tables = [symbols(o) for o in objects]
    except ElfError as e:
        raise RuntimeError(f"compiled code is not a loadable object ({e}); clear the compile cache and "
                           "retry") from None
    defined = frozenset().union(*(t.defined for t in tables))
    missing = sorted(n for t in tables for n in t.needed - defined if not llvm.address_of_symbol(n))
    if missing:
        raise RuntimeError(f"compiled code calls {missing} which nothing in this process provides (a library "
                           "not loaded, or a compiler runtime helper the target needs); it was not linked, "
                           "so nothing ran")
