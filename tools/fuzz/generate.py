"""Random valid programs: `random_program(seed)` -> a recipe (see program.py), deterministic in seed.

Shapes come from one broadcast family per program (e.g. (3, 5) with (5,), (3, 1), (1, 5), ()),
occasionally a large one that crosses the backend's threading threshold; dtypes from float32,
float16, float64 and int32. Steps are chosen by weight among elementwise ops (with broadcasting and
Python scalars), casts, comparisons + where, reductions, matmuls, reshapes, softmax, every in-place
update, whole optimizer steps, in_sequence blocks and subgraphs called with by-reference inputs
(nested up to two levels). Discontinuous ops (sign, floor, casts to int, comparisons) only ever see
exact values, so an allowed last-bit difference upstream can never flip them.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import numpy as np

from . import gen_hostile, patterns
from .exactness import tolerance
from .program import Builder, Context, Entry, build, new_program
from .steps import BINARY, DISCONTINUOUS, INT_BINARY, INT_UNARY, UNARY
from .updates import NO_X, UPDATES

FAMILIES = [
    [(37,), (1,), ()],
    [(6, 17), (17,), (6, 1), ()],
    [(3, 5), (5,), (3, 1), (1, 5), ()],
    [(2, 3, 4), (3, 4), (4,), (2, 1, 4), (1, 3, 1), ()],
    [(64,), (1,), ()],
    [(1000,), ()],
    [(4, 33), (33,), (4, 1), ()],
]
BIG = [[(524_291,), ()], [(2, 262_147), (262_147,), (2, 1), ()]]  # above the two-thread split threshold
DTYPES = ["float32", "float16", "float64", "int32"]
LIMIT = 16.0  # rescale values whose bound grows past this
MAX_UPDATES = 6
PURE = ("unary", "binary", "scalar", "cast", "where", "reduce", "matmul", "reshape", "transpose", "softmax")
WEIGHTS = {"unary": 12, "binary": 16, "scalar": 5, "cast": 4, "where": 4, "reduce": 6, "matmul": 5, "reshape": 2,
           "transpose": 2, "softmax": 2, "update": 18, "adam": 4, "graph": 5, "call": 4, "seq": 5, "load": 1}
PATTERN_WEIGHTS = patterns.WEIGHTS


def _scale_for(bound: float, is_float: bool) -> int:
    if bound <= LIMIT:
        return 0
    return int(np.ceil(np.log2(bound))) if is_float else 1


def _broadcasts(a: tuple, b: tuple) -> bool:
    """a and b broadcast together, into no more elements than the larger of them (or 1M): a (N, 1) and an
    (N,) of the big family would otherwise make an N x N outer product (seed 500000 of --hostile asked
    numpy for 512 GiB)."""
    try:
        out = np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return math.prod(out) <= max(math.prod(a), math.prod(b), 1 << 20)


class Generator:
    def __init__(self, rng: random.Random, family: list[tuple], dtypes: list[str], inplace_values: bool,
                 patterns: bool = False) -> None:
        self.rng = rng
        # the pass-shaped kinds only join when asked, so every other seed builds the program it always did
        self.weights = {**WEIGHTS, **PATTERN_WEIGHTS} if patterns else WEIGHTS
        self.inplace_values = inplace_values  # in-place updates of intermediates, not only of variables
        self.nonfinite = False
        self.family = family
        self.dtypes = dtypes
        self.next_id = 0
        self.next_graph = 0

    def can_update(self, e: Entry) -> bool:
        """May `e` be updated in place (directly or as a by-reference call argument)?"""
        return e.mutable and (e.kind != "value" or self.inplace_values) and e.updates < MAX_UPDATES

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # ------------------------------------------------------------ choices
    def pick(self, b: Builder, pred: Callable[[Entry], bool]) -> tuple[int, Entry] | None:
        c = [(i, e) for i, e in b.env.items() if pred(e)]
        return self.rng.choice(c) if c else None

    def header(self, b: Builder) -> None:
        r = self.rng
        for _ in range(r.randint(2, 5)):
            dt = r.choice(self.dtypes)
            b.apply({"op": "var", "out": self.new_id(), "shape": list(r.choice(self.family)), "dtype": dt,
                     "exact": r.random() < 0.5, "init": r.choice(["uniform", "uniform", "pos", "zeros"])})
        for value in (0.5, 0.875, 3.0):
            b.apply({"op": "var", "out": self.new_id(), "shape": [], "dtype": "float32", "exact": True,
                     "init": "value", "value": value, "role": "hyper"})
        for _ in range(2 if self.nonfinite else r.random() < 0.5):
            self.step_load(b)

    def fill(self, b: Builder, n: int, kinds: tuple[str, ...] | None = None) -> None:
        for _ in range(n):
            self.random_step(b, kinds)

    def random_step(self, b: Builder, kinds: tuple[str, ...] | None = None) -> None:
        allowed = {k: w for k, w in self.weights.items() if kinds is None or k in kinds}
        if not b.main:
            allowed = {k: w for k, w in allowed.items() if k not in ("adam", "load")}
        if b.depth >= 2:
            allowed.pop("graph", None)
        for _ in range(8):  # a kind may find no suitable operands; try another
            kind = self.rng.choices(list(allowed), weights=list(allowed.values()))[0]
            step = getattr(self, f"step_{kind}")(b)
            if step is not False:
                if b.main and isinstance(step, dict) and "out" in step and self.rng.random() < 0.5:
                    out = step["out"]
                    if isinstance(out, int) and out in b.env:
                        b.apply({"op": "observe", "in": [out], "how": self.rng.choice(["copy", "store"])})
                return

    def observe_most(self, b: Builder) -> None:
        """Observe most values nothing observed yet (the rest stays dead code, for DCE)."""
        seen = {s["in"][0] for s in b.log or [] if s["op"] == "observe"}
        for i, e in list(b.env.items()):
            if e.kind == "value" and i not in seen and self.rng.random() < 0.7:
                b.apply({"op": "observe", "in": [i], "how": self.rng.choice(["copy", "store"])})

    def _apply(self, b: Builder, step: dict, fill: Any = None) -> dict | bool:
        return step if b.apply(step, fill) else False

    def _out(self, step: dict, bound: float, is_float: bool) -> dict:
        step["out"] = self.new_id()
        k = _scale_for(bound, is_float)
        if k:
            step["scale"] = k
        return step

    # -------------------------------------------------------------- kinds
    def step_load(self, b: Builder) -> dict | bool:
        dt = self.rng.choice(self.dtypes)
        return self._apply(b, {"op": "load", "out": self.new_id(), "shape": list(self.rng.choice(self.family)),
                               "dtype": dt})

    def step_unary(self, b: Builder) -> dict | bool:
        fn = self.rng.choice(list(UNARY))
        need_exact = fn in DISCONTINUOUS
        p = self.pick(b, lambda e: (e.t.dtype.is_float or (fn in INT_UNARY and e.t.dtype.name == "int32"))
                      and (e.exact or not need_exact))
        if p is None:
            return False
        i, e = p
        bound = UNARY[fn][1](e.bound)
        return self._apply(b, self._out({"op": "unary", "fn": fn, "in": [i]}, bound, e.t.dtype.is_float))

    def step_binary(self, b: Builder) -> dict | bool:
        fn = self.rng.choice(list(BINARY))
        p = self.pick(b, lambda e: e.t.dtype.is_float or (fn in INT_BINARY and e.t.dtype.name == "int32"))
        if p is None:
            return False
        i, x = p
        q = self.pick(b, lambda e: e.t.dtype.is_float == x.t.dtype.is_float and e.t.dtype.name != "bool"
                      and _broadcasts(e.t.shape, x.t.shape))
        j, y = q  # x itself always qualifies
        bound = BINARY[fn][1](x.bound, y.bound)
        return self._apply(b, self._out({"op": "binary", "fn": fn, "in": [i, j]}, bound, x.t.dtype.is_float))

    def step_scalar(self, b: Builder) -> dict | bool:
        p = self.pick(b, lambda e: e.t.dtype.is_float or e.t.dtype.name == "int32")
        if p is None:
            return False
        i, e = p
        fn = self.rng.choice(["add", "mul", "rsub", "div"] if e.t.dtype.is_float else ["add", "mul", "rsub"])
        c = self.rng.choice([0.5, -0.25, 3.0, 0.1, 2.0]) if e.t.dtype.is_float else self.rng.choice([1, -2, 3])
        bound = e.bound + abs(c) if fn in ("add", "rsub") else (e.bound * abs(c) if fn == "mul" else e.bound / abs(c))
        return self._apply(b, self._out({"op": "scalar", "fn": fn, "c": c, "in": [i]}, bound, e.t.dtype.is_float))

    def step_cast(self, b: Builder) -> dict | bool:
        to = self.rng.choice(self.dtypes)
        p = self.pick(b, lambda e: e.t.dtype.name in self.dtypes and e.t.dtype.name != to
                      and (to != "int32" or (e.exact and not (self.nonfinite and e.t.dtype.is_float))))
        if p is None:
            return False
        i, e = p
        bound = 4 * e.bound + 1 if to == "int32" and e.t.dtype.is_float else e.bound * 1.01
        return self._apply(b, self._out({"op": "cast", "to": to, "in": [i]}, bound, to != "int32"))

    def step_wild_cast(self, b: Builder) -> dict | bool:
        """A cast of values beyond the integer range, infinities or NaN (only in hostile programs)."""
        p = self.pick(b, lambda e: e.t.dtype.is_float and e.exact and not self.nonfinite)
        if p is None or not b.main:  # host_store: main graph only
            return False
        i, _ = p
        c = self.rng.choice([1e10, -1e10, 3e9, -7e4, 1e30, float("inf"), float("nan")])
        return self._apply(b, {"op": "wild_cast", "c": c, "to": self.rng.choice(["int32", "uint8", "int8", "uint32"]),
                               "in": [i], "out": self.new_id()})

    def step_where(self, b: Builder) -> dict | bool:
        p = self.pick(b, lambda e: e.exact and e.t.dtype.name in self.dtypes)
        if p is None:
            return False
        i, a = p
        j, _ = self.pick(b, lambda e: e.exact and e.t.dtype.is_float == a.t.dtype.is_float
                         and _broadcasts(e.t.shape, a.t.shape))
        shape = np.broadcast_shapes(a.t.shape, b.env[j].t.shape)
        x = self.pick(b, lambda e: e.t.dtype.name in self.dtypes and _broadcasts(e.t.shape, shape))
        if x is None:
            return False
        k, xe = x
        shape = np.broadcast_shapes(shape, xe.t.shape)
        ll, ye = self.pick(b, lambda e: e.t.dtype.is_float == xe.t.dtype.is_float and _broadcasts(e.t.shape, shape))
        step = {"op": "where", "cmp": self.rng.choice(["greater", "less", "equal"]), "in": [i, j, k, ll]}
        return self._apply(b, self._out(step, max(xe.bound, ye.bound), xe.t.dtype.is_float))

    def step_reduce(self, b: Builder) -> dict | bool:
        from . import gen_tensor

        return gen_tensor.reduce(self, b)

    def step_matmul(self, b: Builder) -> dict | bool:
        from . import gen_tensor

        return gen_tensor.matmul(self, b)

    def step_reshape(self, b: Builder) -> dict | bool:
        from . import gen_tensor

        return gen_tensor.reshape(self, b)

    def step_transpose(self, b: Builder) -> dict | bool:
        from . import gen_tensor

        return gen_tensor.transpose(self, b)

    def step_softmax(self, b: Builder) -> dict | bool:
        from . import gen_tensor

        return gen_tensor.softmax(self, b)

    # ------------------------------------------------------------ updates
    def _hyper(self, b: Builder) -> int | None:
        p = self.pick(b, lambda e: e.kind == "hyper" and e.bound <= 1.0)
        return p[0] if p else None

    def step_update(self, b: Builder) -> dict | bool:
        from .gen_updates import update_step

        return update_step(self, b)

    def step_adam(self, b: Builder) -> dict | bool:
        from .gen_updates import adam_step

        return adam_step(self, b)

    # ------------------------------------------------------------ pass-shaped (patterns.py)
    def step_dup(self, b: Builder) -> dict | bool:
        return patterns.dup_step(self, b)

    def step_const(self, b: Builder) -> dict | bool:
        return patterns.const_step(self, b)

    def step_scaled_neg(self, b: Builder) -> dict | bool:
        return patterns.scaled_neg_step(self, b)

    def step_prologue(self, b: Builder) -> dict | bool:
        return patterns.prologue_step(self, b)

    # ------------------------------------------------------------ hostile (gen_hostile.py)
    def step_hconst(self, b: Builder) -> dict | bool:
        return gen_hostile.hconst_step(self, b)

    def step_const_write(self, b: Builder) -> dict | bool:
        return gen_hostile.const_write_step(self, b)

    def step_host_index(self, b: Builder) -> dict | bool:
        return gen_hostile.host_index_step(self, b)

    # ------------------------------------------------------------ control
    def step_seq(self, b: Builder) -> dict | bool:
        mode = self.rng.choice([True, True, False, "pass"])
        step = {"op": "seq", "mode": mode, "body": []}
        n = self.rng.randint(2, 5)
        return self._apply(b, step, lambda sub: self.fill(sub, n, PURE if mode is False else None))

    def step_graph(self, b: Builder) -> dict | bool:
        from .gen_graphs import graph_step

        return graph_step(self, b)

    def step_call(self, b: Builder) -> dict | bool:
        from .gen_graphs import call_step

        return call_step(self, b)


def random_program(seed: int, size: int | None = None, big: float = 0.0, inplace_values: bool = False,
                   nonfinite: bool = False, hostile: bool = False, patterns: bool = False) -> dict:
    """A random valid program (a recipe for `build`). `big` is the chance of a multi-threaded size;
    `inplace_values` lets in-place updates and by-reference calls target intermediates too;
    `nonfinite` feeds NaN and Inf through host streams (and then never casts floats to int, which
    is undefined for them); `hostile` adds bfloat16 to the dtypes, casts of out-of-range, infinite and
    NaN values to integers, constants (also written in place, which building must refuse) and indices fed
    from the host, some runs with a bad one (gen_hostile.py); `patterns` adds steps shaped for particular passes (patterns.py)."""
    rng = random.Random(seed)
    family = rng.choice(BIG) if rng.random() < big else rng.choice(FAMILIES)
    dtypes = ["float32"] + rng.sample(DTYPES[1:], rng.randint(0, 3))
    prog = new_program(seed, nht=rng.choice([1, 1, 1, 2]), nonfinite=nonfinite)
    if hostile:
        dtypes.append("bfloat16")
    gen = Generator(rng, family, dtypes, inplace_values, patterns)
    if hostile:
        gen.weights = {**gen.weights, "wild_cast": 4, **gen_hostile.WEIGHTS}
    gen.nonfinite = nonfinite
    import compiler.popxl as popxl

    # while generating only "exact or not" matters; build() works out the real tolerance from the steps
    ctx = Context(popxl.Ir(), seed, nonfinite, var_tol=max(tolerance(d) for d in dtypes))
    ctx.ir.num_host_transfers = prog["nht"]
    with ctx.ir.main_graph:
        b = Builder(ctx, {}, 0, log=prog["steps"])
        gen.header(b)
        gen.fill(b, size if size is not None else rng.randint(4, 20))
        gen.observe_most(b)
    if hostile:
        prog["bad_runs"] = gen_hostile.bad_runs(gen, bool(ctx.index_streams))
    return prog


__all__ = ["random_program", "build", "NO_X", "UPDATES"]
