"""Loading machine code into this process: an object file through LLVM's JIT, or a shared library
through ctypes. Either way the result is the entry point's address and an owner to keep alive."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Any


@functools.cache
def prepare_llvm() -> None:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    libm = ctypes.util.find_library("m")  # expf, logf, erff, powf ... resolved in-process
    if libm:
        llvm.load_library_permanently(libm)


def load_object(obj: bytes, entry: str, target_machine: Any) -> tuple[int, Any]:
    """Link an object file in memory (MCJIT); returns (address of `entry`, the engine owning the code)."""
    import llvmlite.binding as llvm

    prepare_llvm()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target_machine)
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    addr = engine.get_function_address(entry)
    if not addr:
        raise RuntimeError(f"the compiled object has no entry point {entry!r}; clear the compile cache and retry")
    return addr, engine


def load_shared(path: str | os.PathLike, entry: str) -> tuple[int, Any]:
    """dlopen a shared library built by `emit(..., "so")`; returns (address of `entry`, the library)."""
    lib = ctypes.CDLL(os.fspath(path))
    try:
        fn = getattr(lib, entry)
    except AttributeError:
        raise RuntimeError(f"{path} has no entry point {entry!r}; was it built with another prefix?") from None
    return ctypes.cast(fn, ctypes.c_void_p).value or 0, lib
