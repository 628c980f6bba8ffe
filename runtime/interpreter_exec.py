"""InterpreterExecutable: runs an optimised Ir with the numpy reference interpreter (interpreter.py)."""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from compiler.ir import Ir

from .buffers import describe_bad_array
from .interpreter import Collective, StreamIO, run_graph


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

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int,
            collective: Collective | None = None) -> dict[str, np.ndarray]:
        """`collective` runs collective ops for this replica (runtime/replicas.py); replicas of one program
        run concurrently on separate InterpreterExecutables."""
        self._check_bound(variables)
        io = StreamIO(streams, per_iteration=self.ir.transfers_per_execution())
        obs = self._observer()
        with self._lock:
            for it in range(iterations):
                io.iteration = it
                run_graph(self.ir, self.ir.main, [], variables, io, obs, collective)
        return {k: np.stack(v) for k, v in io.outputs.items()}

    def _check_bound(self, variables: dict[int, np.ndarray]) -> None:
        """Caller-owned buffers have no data in the Ir: each run must bind an array to every one, of
        its shape and dtype (the program reads and writes it in place)."""
        for vid in self.ir.externals:
            v = self.ir.main.values[vid]
            if vid not in variables:
                raise ValueError(f"no array bound to caller-owned buffer {v.name!r} (value id {vid}): the program "
                                 "has no memory of its own for it; bind an array of its shape and dtype at every run")
            bad = describe_bad_array(f"caller-owned buffer {v.name!r}", variables[vid], v.shape, v.dtype.numpy, True)
            if bad:
                raise (TypeError if not isinstance(variables[vid], np.ndarray) else ValueError)(bad)

    def replica_runner(self, rendezvous: Any, local: int) -> Callable[..., dict[str, np.ndarray]]:
        """Runs this program as local replica `local`, meeting the others at `rendezvous` (runtime/replicas.py)."""
        exe = InterpreterExecutable(self.ir, self.check_finite)

        def collective(op: Any, ins: list[np.ndarray]) -> list[np.ndarray]:
            return [rendezvous.collective(local, op.kind, op.attrs, ins[0])]

        return lambda variables, streams, iterations: exe.run(variables, streams, iterations, collective)
