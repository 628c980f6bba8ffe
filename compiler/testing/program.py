"""Fuzz programs as replayable recipes, built through the public popxl API.

A program is plain JSON: {"format": "optgraph-fuzz", "version": 1, "seed", "nht", "steps": [...]}.
Each step names an op family and the ids of the values it reads; it defines new values by id:

    {"op": "binary", "fn": "add", "in": [3, 7], "out": 9}

`build(program)` replays the steps in order. A step whose inputs no longer exist (because the
shrinker removed the step that made them) is skipped, so every subset of a valid program's steps is
again a valid program: that is what makes shrinking by deleting steps sound. Step semantics live in
steps.py; the random choice of steps in generate.py.

Every value carries `exact` (computed only by exact ops, see exactness.py, from exact sources: it
is compared bit for bit) and `bound` (an upper bound of |value|, which keeps programs finite).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from compiler import popxl
from compiler.ir import as_dtype

from .exactness import op_is_exact

FORMAT, VERSION = "optgraph-fuzz", 1
RUNS = 2  # each program runs twice, so state carried between runs is compared too


@dataclass
class Entry:
    t: Any  # popxl.Tensor
    exact: bool
    bound: float
    kind: str  # "var" (main-graph variable), "ref" (by-ref graph input), "value", "hyper", "state"
    updates: int = 0  # in-place updates so far (the generator caps them to keep values bounded)

    @property
    def mutable(self) -> bool:
        return self.kind in ("var", "ref", "value")


@dataclass
class GraphInfo:
    graph: Any  # popxl.Graph
    inputs: list[dict]  # the graph step's input declarations
    outputs: list[tuple[int, bool, float]] = field(default_factory=list)  # (body id, exact, bound) present
    ref_exact: dict[int, bool] = field(default_factory=dict)  # input index -> exact after the body


@dataclass
class Context:
    """What one build shares across graphs: the Ir, graphs by id, and what to compare."""

    ir: Any
    seed: int
    graphs: dict[int, GraphInfo] = field(default_factory=dict)
    exact: dict[str, bool] = field(default_factory=dict)  # variable / d2h stream name -> bit for bit
    loads: dict[str, Any] = field(default_factory=dict)  # h2d stream name -> stream handle


class Builder:
    """Applies steps to one graph. `log` (generation mode) collects the steps that were applied."""

    def __init__(self, ctx: Context, env: dict[int, Entry], depth: int = 0, log: list | None = None) -> None:
        self.ctx = ctx
        self.env = env
        self.depth = depth
        self.log = log

    @property
    def main(self) -> bool:
        return self.depth == 0

    def apply(self, step: dict, fill: Callable[["Builder"], None] | None = None) -> bool:
        """Build one step; False (and nothing built) when one of its inputs does not exist."""
        from .steps import HANDLERS

        ins = [self.env.get(i) for i in step.get("in", ())]
        if any(e is None for e in ins):
            return False
        if step["op"] == "call" and step["graph"] not in self.ctx.graphs:
            return False
        HANDLERS[step["op"]](self, step, ins, fill)
        if self.log is not None:
            self.log.append(step)
        return True

    def traced(self, fn: Callable[[], Any], *exact_inputs: bool) -> tuple[Any, bool]:
        """Run `fn` (which builds ops in the current graph); its result and whether it is exact."""
        g = popxl.gcg()._g
        n0 = len(g.ops)
        t = fn()
        return t, all(exact_inputs) and all(op_is_exact(op) for op in g.ops[n0:])


def build(program: dict) -> Context:
    """A fresh Ir for `program` (see the module docstring)."""
    if program.get("format") != FORMAT or program.get("version") != VERSION:
        raise ValueError(f"not a fuzz program of format {FORMAT!r} version {VERSION}")
    ir = popxl.Ir()
    ir.num_host_transfers = int(program.get("nht", 1))
    ctx = Context(ir, int(program["seed"]))
    with ir.main_graph:
        b = Builder(ctx, {})
        for step in program["steps"]:
            b.apply(step)
        for e in b.env.values():
            if e.kind in ("var", "hyper", "state"):
                ctx.exact[e.t.name] = ctx.exact.get(e.t.name, True) and e.exact
    return ctx


def inputs(ctx: Context, run: int) -> dict[Any, np.ndarray]:
    """Host-to-device data for one run: small values, deterministic in (seed, stream, run)."""
    nht = ctx.ir.num_host_transfers
    out = {}
    for name, h in sorted(ctx.loads.items()):
        rng = np.random.default_rng([ctx.seed, run, int(name[2:])])
        shape = ((nht,) if nht > 1 else ()) + tuple(h.shape)
        dt = as_dtype(h.dtype).numpy
        a = rng.integers(-5, 6, shape) if np.dtype(dt).kind in "iu" else rng.uniform(-1, 1, shape)
        out[h] = np.asarray(a).astype(dt)
    return out


def new_program(seed: int, nht: int = 1) -> dict:
    return {"format": FORMAT, "version": VERSION, "seed": seed, "nht": nht, "steps": []}


def count_steps(steps: list[dict]) -> int:
    return sum(1 + count_steps(s.get("body", [])) for s in steps)
