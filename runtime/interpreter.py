"""The reference interpreter: runs any graph with numpy and defines the semantics.

Storage semantics: every SSA value lives in a storage buffer; an op that writes in
place copies its result into its input's buffer, so every older handle of that
storage sees the update (as PopXL's in-place ops do). Calls copy their inputs in
and copy by-reference inputs back out, as PopART's CallOp does.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import run_reference
from compiler.ops.collectives import KINDS as COLLECTIVES


class StreamIO:
    """Host-stream data for one run: one batch per HostLoad per iteration."""

    def __init__(self, inputs: dict[str, np.ndarray], iteration: int = 0,
                 per_iteration: dict[str, int] | None = None) -> None:
        self.inputs = inputs
        self.iteration = iteration
        self.per = per_iteration or {}  # transfers of a stream per iteration (Ir.transfers_per_execution)
        self._outputs: dict[str, dict[int, np.ndarray]] = {}

    def _row(self, name: str, transfer: int) -> int:
        return self.iteration * self.per.get(name, 1) + transfer

    def load(self, name: str, transfer: int = 0) -> np.ndarray:
        return self.inputs[name][self._row(name, transfer)]

    def store(self, name: str, arr: np.ndarray, transfer: int = 0) -> None:
        self._outputs.setdefault(name, {})[self._row(name, transfer)] = np.array(arr, copy=True)

    @property
    def outputs(self) -> dict[str, list[np.ndarray]]:
        """Each output stream's batches in transfer order."""
        return {n: [rows[k] for k in sorted(rows)] for n, rows in self._outputs.items()}


# A hook that sees every op result, e.g. the opt-in non-finite check
Observer = Callable[[Op, list[np.ndarray]], None]
# Runs a collective op for this replica (runtime/replicas.py): (op, inputs) -> results
Collective = Callable[[Op, list[np.ndarray]], list[np.ndarray]]


def run_graph(
    ir: Ir,
    graph: Graph,
    args: list[np.ndarray],
    variables: dict[int, np.ndarray],
    streams: StreamIO | None = None,
    observer: Observer | None = None,
    collective: Collective | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Execute `graph`. Returns (outputs, final values of by-ref inputs in by_ref order).

    `variables` maps main-graph variable value ids to their live buffers, which
    in-place ops update.
    """
    env: dict[int, np.ndarray] = {}
    for v, a in zip(graph.inputs, args):
        env[v.storage] = np.array(a, dtype=v.dtype.numpy, copy=True)  # call by value
    for vid, buf in variables.items():
        if vid in graph.values:
            env[graph.values[vid].storage] = buf
    for vid, data in ir.constants.items():
        if vid in graph.values:
            env[graph.values[vid].storage] = data

    def read(v: Value) -> np.ndarray:
        try:
            return env[v.storage]
        except KeyError:
            raise RuntimeError(f"interpreter: {v.name!r} (%{v.id}) in graph {graph.id!r} has no value") from None

    for op in graph.ops:
        ins = [read(v) for v in op.inputs]
        if op.kind == "Call":
            assert op.called is not None
            outs, refs = run_graph(ir, op.called, ins, {}, streams, observer, collective)
            results = outs + refs  # updates are sorted by input index == sorted(by_ref)
        elif op.kind == "HostLoad":
            if streams is None:
                raise RuntimeError("HostLoad outside a session run")
            results = [np.array(streams.load(op.attrs["stream"], op.attrs.get("transfer", 0)), copy=True)]
        elif op.kind == "HostStore":
            if streams is None:
                raise RuntimeError("HostStore outside a session run")
            streams.store(op.attrs["stream"], ins[0], op.attrs.get("transfer", 0))
            results = []
        elif collective is not None and op.kind in COLLECTIVES:
            results = collective(op, ins)
        else:
            results = run_reference(op, ins)
        # a result may be an input's own array (e.g. `X` returned unchanged); copy it before any in-place
        # write below can overwrite that input
        results = [np.array(r, copy=True) if any(np.shares_memory(r, x) for x in ins) else np.asarray(r)
                   for r in results]
        if observer is not None:
            observer(op, results)
        for v, r in zip(op.results, results):
            if r.dtype != v.dtype.numpy or r.shape != v.shape:
                raise RuntimeError(
                    f"interpreter: {op.label} produced {r.dtype}{r.shape} for {v.name!r}, expected {v.spec}")
            if v.version > 0:  # in-place: write into the existing buffer
                np.copyto(env[v.storage], r)
            else:
                env[v.storage] = r
    outs = [np.array(read(v), copy=True) for v in graph.outputs]
    refs = [np.array(read(graph.inputs[i]), copy=True) for i in sorted(graph.by_ref)]
    return outs, refs
