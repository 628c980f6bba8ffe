"""NativeExecutable: links a NativeCode artifact into this process and runs it over caller-owned
numpy buffers (executor.py checks every buffer before the call)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from compiler.ops.collectives import KINDS as COLLECTIVES

from .artifact import NativeCode
from .bound_run import BoundRun
from .cpu_check import ensure as ensure_cpu
from .executor import CollectiveFailed, Executor
from .hooks import Hooks
from .loader import load_object
from .openmp import resolve_threads
from .replicas import Rendezvous


class NativeExecutable:
    """The Executable of device "cpu": variables are updated in place in the arrays given to `run`."""

    def __init__(self, code: NativeCode) -> None:
        self.ir = code.ir
        self.layout = code.manifest
        self.cache_hit = code.cache_hit
        self._source = code.source
        ensure_cpu(code.manifest)  # before linking: code for a richer CPU would die of SIGILL
        address, engine = load_object(code.obj, code.manifest.entry, code.kernels)
        self._code = (address, engine)
        self._executor = Executor(code.manifest, address, engine, code.threads)
        if any(op.kind in COLLECTIVES for g in self.ir.reachable_graphs() for op in g.ops):
            self._single = self.replica_runner(Rendezvous(1, 0, 1), 0)  # one replica: collectives are local

    @property
    def llvm_ir(self) -> str:
        """The optimised LLVM IR of the program (recompiled by the backend after a cache hit)."""
        if self._source is None:
            raise RuntimeError("this artifact carries no LLVM IR text")
        return self._source()

    @property
    def threads(self) -> int:
        """Threads each run's parallel regions use; settable between runs, without recompiling."""
        return self._executor.threads

    @threads.setter
    def threads(self, n: int) -> None:
        self._executor.threads = resolve_threads(n)

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
            ) -> dict[str, np.ndarray]:
        if hasattr(self, "_single"):
            return self._single(variables, streams, iterations)
        return self._executor.run(variables, streams, iterations)

    def bind(self, variables: dict[int, np.ndarray], movable: list[int]) -> BoundRun:
        """A checked pointer table for repeated one-iteration runs (bound_run.py)."""
        return self._executor.bind(variables, movable)

    def replica_runner(self, rendezvous: Rendezvous, local: int) -> Callable[..., dict[str, np.ndarray]]:
        """Runs this code as local replica `local` (its own workspace), meeting the others at `rendezvous`
        through the collective hooks (runtime/hooks.py)."""
        hooks = getattr(rendezvous, "hooks", None)
        if hooks is None:
            hooks = rendezvous.hooks = Hooks(rendezvous)
        ex = Executor(self.layout, *self._code, self.threads, runtime=hooks.runtime(local, self.threads))

        def run(variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
                ) -> dict[str, np.ndarray]:
            try:
                return ex.run(variables, streams, iterations)
            except CollectiveFailed:
                raise hooks.error(local) from None
        return run
