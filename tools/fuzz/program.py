"""Fuzz programs as replayable recipes, built through the public popxl API.

A program is plain JSON: {"format": "optgraph-fuzz", "version": 1, "seed", "nht", "steps": [...]}.
Each step names an op family and the ids of the values it reads; it defines new values by id:

    {"op": "binary", "fn": "add", "in": [3, 7], "out": 9}

`build(program)` replays the steps in order. A step whose inputs no longer exist (because the
shrinker removed the step that made them) is skipped, so every subset of a valid program's steps is
again a valid program: that is what makes shrinking by deleting steps sound. Step semantics live in
steps.py; the random choice of steps in generate.py.

Every value carries `tol`: 0 when only exact ops (see exactness.py) computed it from exact sources,
so it is compared bit for bit; else the relative tolerance of the least precise dtype an inexact
result passed through. And `bound`, an upper bound of |value|, which keeps programs finite.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from compiler import popxl
from compiler.ir import as_dtype

from .exactness import op_is_exact, tolerance

FORMAT, VERSION = "optgraph-fuzz", 1
RUNS = 2  # each program runs twice, so state carried between runs is compared too


@dataclass
class Entry:
    t: Any  # popxl.Tensor
    tol: float  # 0: bit for bit
    bound: float
    # "var" (main-graph variable), "ref" / "input" (graph input by reference / by value), "value" (computed),
    # "hyper" (a scalar hyper-parameter variable, never updated), "state" (optimizer state)
    kind: str
    updates: int = 0  # in-place updates so far (the generator caps them to keep values bounded)

    @property
    def exact(self) -> bool:
        return self.tol == 0.0

    @property
    def mutable(self) -> bool:
        return self.kind in ("var", "ref", "input", "value")


@dataclass
class GraphInfo:
    graph: Any  # popxl.Graph
    inputs: list[dict]  # the graph step's input declarations
    outputs: list[tuple[int, float, float]] = field(default_factory=list)  # (body id, tol, bound) present
    ref_tol: dict[int, float] = field(default_factory=dict)  # by-ref input index -> tol after the body


@dataclass
class Context:
    """What one build shares across graphs: the Ir, graphs by id, and what to compare."""

    ir: Any
    seed: int
    nonfinite: bool = False  # inputs carry NaN and +-Inf
    var_tol: float = 0.0  # tolerance of variables that inexact updates may reach (any float dtype used)
    graphs: dict[int, GraphInfo] = field(default_factory=dict)
    tol: dict[str, float] = field(default_factory=dict)  # variable / d2h stream name -> tolerance
    loads: dict[str, Any] = field(default_factory=dict)  # h2d stream name -> stream handle
    # h2d streams of indices (gen_hostile.py) -> valid range [lo, hi); runs in `bad_runs` feed one index outside
    index_streams: dict[str, tuple[int, int]] = field(default_factory=dict)
    bad_runs: tuple[int, ...] = ()
    refused: int = 0  # in-place writes of constants that building refused, as it must (gen_hostile.py)

    @property
    def runs(self) -> int:
        """How many runs to make: RUNS, and one good run after the last run fed a bad index."""
        return max(RUNS, max(self.bad_runs, default=-1) + 2)


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

    def traced(self, fn: Callable[[], Any], *input_tols: float) -> tuple[Any, float]:
        """Run `fn` (which builds ops in the current graph): its result and the result's tolerance."""
        g = popxl.gcg()._g
        n0 = len(g.ops)
        t = fn()
        new = g.ops[n0:]
        if max(input_tols, default=0.0) == 0.0 and all(op_is_exact(op) for op in new):
            return t, 0.0
        return t, max([*input_tols, *(tolerance(v.dtype) for op in new for v in op.results)])


def build(program: dict) -> Context:
    """A fresh Ir for `program` (see the module docstring)."""
    if program.get("format") != FORMAT or program.get("version") != VERSION:
        raise ValueError(f"not a fuzz program of format {FORMAT!r} version {VERSION}")
    ir = popxl.Ir()
    ir.num_host_transfers = int(program.get("nht", 1))
    ctx = Context(ir, int(program["seed"]), bool(program.get("nonfinite")), var_tol(program["steps"]),
                  bad_runs=tuple(program.get("bad_runs", ())))
    with ir.main_graph:
        b = Builder(ctx, {})
        for step in program["steps"]:
            b.apply(step)
        for e in b.env.values():
            if e.kind in ("var", "hyper", "state"):
                ctx.tol[e.t.name] = e.tol
    return ctx


def var_tol(steps: list[dict]) -> float:
    """The largest tolerance of any float dtype the steps use (what an inexact variable may need)."""
    tols = [0.0]
    for s in steps:
        tols += [tolerance(s[k]) for k in ("dtype", "to", "dtype_m", "dtype_v") if k in s]
        tols += [tolerance(d["dtype"]) for d in s.get("inputs", [])]
        tols.append(var_tol(s.get("body", [])))
    return max(tols)


def inputs(ctx: Context, run: int) -> dict[Any, np.ndarray]:
    """Host-to-device data for one run: small values (and, for `nonfinite` programs, about one in ten
    float elements NaN, +Inf or -Inf), deterministic in (seed, stream, run)."""
    nht = ctx.ir.num_host_transfers
    out = {}
    for name, h in sorted(ctx.loads.items()):
        rng = np.random.default_rng([ctx.seed, run, int(name[2:])])
        shape = ((nht,) if nht > 1 else ()) + tuple(h.shape)
        dt = as_dtype(h.dtype).numpy
        if name in ctx.index_streams:
            out[h] = _indices(rng, shape, *ctx.index_streams[name], run in ctx.bad_runs)
            continue
        a = rng.integers(-5, 6, shape) if np.dtype(dt).kind in "iu" else rng.uniform(-1, 1, shape)
        if ctx.nonfinite and np.dtype(dt).kind == "f":
            a = np.where(rng.random(shape) < 0.1, rng.choice([np.nan, np.inf, -np.inf], shape), a)
        out[h] = np.asarray(a).astype(dt)
    return out


def _indices(rng: np.random.Generator, shape: tuple, lo: int, hi: int, bad: bool) -> np.ndarray:
    """Valid indices in [lo, hi); `bad`: one element (the last, so earlier ones could already have been
    applied by a device that checks while it runs) just outside the range or far outside it."""
    a = rng.integers(lo, hi, shape).astype(np.int32)
    if bad and a.size:
        a.reshape(-1)[-1] = rng.choice([hi, lo - 1, 2 ** 31 - 1, -2 ** 31])
    return a


def new_program(seed: int, nht: int = 1, nonfinite: bool = False) -> dict:
    return {"format": FORMAT, "version": VERSION, "seed": seed, "nht": nht, "nonfinite": nonfinite, "steps": []}


def count_steps(steps: list[dict]) -> int:
    return sum(1 + count_steps(s.get("body", [])) for s in steps)
