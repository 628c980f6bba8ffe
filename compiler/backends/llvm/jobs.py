"""Compiling LLVM modules to object files, overlapped with the Python code that lowers the next ones.

Why one worker thread and not more (measured, docs/compile_time.md): ctypes releases the GIL around
every call into libllvmlite, but llvmlite wraps each of those calls in one process-wide lock
(llvmlite.binding.ffi's _LLVMLock), so two threads never optimise or generate code at the same time.
What does run concurrently is Python (lowering a kernel to llvmlite.ir and printing it, which holds
the GIL but not llvmlite's lock) and LLVM (parsing, optimising and emitting the previous kernel, which
holds the lock but not the GIL): one worker fed by the lowering thread gets all of that overlap.
Processes do run LLVM in parallel: with `workers >= 2` that many compile processes
(compile_worker.py: fresh interpreters, not forks) each take one module at a time from a thread of
ours that only waits on their pipes. A process costs its start-up, imports and LLVM initialisation
(~0.15 s, once: they are kept for later compiles) and a copy of each module's text in and its object
out, so they pay only for many large kernels on idle cores (docs/compile_time.md).
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

import llvmlite.binding as llvm

from . import target
from .compile_worker import read_message, write_message
from .isa import Target


def to_object(text: str, tm: llvm.TargetMachine, opt_level: int | str = "auto", unroll: bool = True) -> bytes:
    """Parse, verify, optimise (at target.level_for(text, opt_level)) and emit one module's text."""
    mod = llvm.parse_assembly(text)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    target.optimise(mod, tm, target.level_for(text, opt_level), unroll)
    return tm.emit_object(mod)


class CompileProcess:
    """One compile_worker process and its pipes; its stderr goes to a file, shown if it dies."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[3])  # the folder holding the compiler package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.stderr: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "compiler.backends.llvm.compile_worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)

    def compile(self, text: str, tgt: Target, level: int | str) -> bytes:
        try:
            write_message(self.proc.stdin, (text, tgt, level))  # type: ignore[arg-type]
            reply = read_message(self.proc.stdout)  # type: ignore[arg-type]
        except (OSError, EOFError) as e:
            reply = None
            why = str(e)
        else:
            why = "it closed its output"
        if reply is None:
            self.close()
            self.stderr.seek(0)
            tail = self.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"a kernel compile process (pid {self.proc.pid}) died: {why}, exit code "
                               f"{self.proc.returncode}; its stderr ends:\n{tail}\nCompile with "
                               "CompileOptions(compile_workers=1) to compile in this process")
        status, payload = reply  # type: ignore[misc]
        if status != "ok":
            raise RuntimeError(f"compiling a kernel failed in a compile process: {payload}")
        return payload

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class ProcessPool:
    """Idle compile processes, kept between compiles; a forked child starts its own (never its parent's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner = os.getpid()
        self.idle: list[CompileProcess] = []

    def compile(self, text: str, tgt: Target, level: int | str) -> bytes:
        with self.lock:
            if self.owner != os.getpid():
                self.owner, self.idle = os.getpid(), []
            self.idle = [w for w in self.idle if w.proc.poll() is None]  # one that died since is dropped
            worker = self.idle.pop() if self.idle else None
        worker = worker or CompileProcess()
        data = worker.compile(text, tgt, level)  # a worker that failed is not put back
        with self.lock:
            self.idle.append(worker)
        return data

    def close(self) -> None:
        with self.lock:
            idle, self.idle = (self.idle if self.owner == os.getpid() else []), []
        for w in idle:
            w.close()


PROCESSES = ProcessPool()
atexit.register(PROCESSES.close)


class ObjectJobs:
    """Modules handed over as they are lowered; `results()` waits for their object files. With
    `workers=0` every module is compiled at once in the calling thread, with 1 on one worker thread,
    with N >= 2 on N compile processes (each fed by a thread of ours)."""

    def __init__(self, tgt: Target, workers: int = 1, speed_level: int | str = "auto") -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"CompileOptions.compile_workers={workers!r}: use 0 (compile in line), 1 (one "
                             "worker thread) or N >= 2 (N compile processes)")
        self.tgt, self.workers = tgt, workers
        self.tm = target.target_machine(tgt)
        self.level = speed_level
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="optgraph-llvm") if workers else None
        self.jobs: dict[str, Future[bytes] | bytes] = {}

    def submit(self, name: str, text: str) -> None:
        if self.pool is None:
            self.jobs[name] = to_object(text, self.tm, self.level)
        elif self.workers == 1:
            self.jobs[name] = self.pool.submit(to_object, text, self.tm, self.level)
        else:
            self.jobs[name] = self.pool.submit(PROCESSES.compile, text, self.tgt, self.level)

    def results(self) -> dict[str, bytes]:
        """Every submitted module's object (a failed compile raises here, in the caller's thread)."""
        try:
            return {k: j if isinstance(j, bytes) else j.result() for k, j in self.jobs.items()}
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
