"""NativeExecutable: links a NativeCode artifact into this process and runs it over caller-owned
numpy buffers (executor.py checks every buffer before the call)."""
from __future__ import annotations

import numpy as np

from .artifact import NativeCode
from .bound_run import BoundRun
from .executor import Executor
from .loader import load_object
from .openmp import resolve_threads


class NativeExecutable:
    """The Executable of device "cpu": variables are updated in place in the arrays given to `run`."""

    def __init__(self, code: NativeCode) -> None:
        self.ir = code.ir
        self.layout = code.manifest
        self.cache_hit = code.cache_hit
        self._source = code.source
        address, engine = load_object(code.obj, code.manifest.entry)
        self._executor = Executor(code.manifest, address, engine, code.threads)

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
        return self._executor.run(variables, streams, iterations)

    def bind(self, variables: dict[int, np.ndarray], movable: list[int]) -> BoundRun:
        """A checked pointer table for repeated one-iteration runs (bound_run.py)."""
        return self._executor.bind(variables, movable)
