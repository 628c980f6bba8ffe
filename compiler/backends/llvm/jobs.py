"""Compiling LLVM modules to object files, overlapped with the Python code that lowers the next ones.

Why one worker thread and not more (measured, docs/compile_time.md): ctypes releases the GIL around
every call into libllvmlite, but llvmlite wraps each of those calls in one process-wide lock
(llvmlite.binding.ffi's _LLVMLock), so two threads never optimise or generate code at the same time.
What does run concurrently is Python (lowering a kernel to llvmlite.ir and printing it, which holds
the GIL but not llvmlite's lock) and LLVM (parsing, optimising and emitting the previous kernel, which
holds the lock but not the GIL): one worker fed by the lowering thread gets all of that overlap.
Processes could run LLVM in parallel, but a process costs its start-up, imports and LLVM
initialisation (~0.15 s here) and a copy of each module's text in and its object out: more than a
typical kernel (3-30 ms) takes to compile.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import llvmlite.binding as llvm

from . import target


def to_object(text: str, tm: llvm.TargetMachine, opt_level: int | str = "auto", unroll: bool = True) -> bytes:
    """Parse, verify, optimise (at target.level_for(text, opt_level)) and emit one module's text."""
    mod = llvm.parse_assembly(text)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    target.optimise(mod, tm, target.level_for(text, opt_level), unroll)
    return tm.emit_object(mod)


class ObjectJobs:
    """Modules handed over as they are lowered; `results()` waits for their object files. With
    `workers=0` every module is compiled at once in the calling thread."""

    def __init__(self, make_tm: Callable[[], llvm.TargetMachine], workers: int = 1,
                 speed_level: int | str = "auto") -> None:
        self.tm = make_tm()
        self.level = speed_level
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="optgraph-llvm") if workers else None
        self.jobs: dict[str, Future[bytes] | bytes] = {}

    def submit(self, name: str, text: str) -> None:
        if self.pool is None:
            self.jobs[name] = to_object(text, self.tm, self.level)
        else:
            self.jobs[name] = self.pool.submit(to_object, text, self.tm, self.level)

    def results(self) -> dict[str, bytes]:
        """Every submitted module's object (a failed compile raises here, in the caller's thread)."""
        try:
            return {k: j if isinstance(j, bytes) else j.result() for k, j in self.jobs.items()}
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
