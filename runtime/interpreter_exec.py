"""InterpreterExecutable: runs an optimised Ir with the numpy reference interpreter (interpreter.py)."""
from __future__ import annotations

import threading
import numpy as np

from compiler.ir import Ir

from .interpreter import StreamIO, run_graph


class NonFiniteError(FloatingPointError):
    pass


class InterpreterExecutable:
    def __init__(self, ir: Ir, check_finite: bool = False) -> None:
        self.ir = ir
        self.check_finite = check_finite
        self._lock = threading.Lock()  # one run at a time: runs update the caller's variables in place

    def _observer(self):
        if not self.check_finite:
            return None

        def check(op, results):
            for v, r in zip(op.results, results):
                if np.asarray(r).dtype.kind == "f" and not np.all(np.isfinite(r)):
                    raise NonFiniteError(
                        f"{v.name!r} {v.spec} produced by {op.label} in graph {op.graph.id or 'main'!r} contains "
                        f"NaN or Inf{f' (built at {op.source})' if op.source else ''}")
        return check

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
            ) -> dict[str, np.ndarray]:
        io = StreamIO(streams)
        obs = self._observer()
        with self._lock:
            for it in range(iterations):
                io.iteration = it
                run_graph(self.ir, self.ir.main, [], variables, io, obs)
        return {k: np.stack(v) for k, v in io.outputs.items()}
