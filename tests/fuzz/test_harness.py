"""The fuzzing harness itself: the generator covers what it claims, recipes replay, the comparison is
exact where it must be, injected bugs are caught, failures shrink and save as reproducers."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from compiler.ir import print_schedule
from tools.fuzz import build, count_steps, random_program
from tools.fuzz.differential import REFERENCE, compare, run
from tools.fuzz.exactness import op_is_exact
from tools.fuzz.shrink import shrink
from tools.fuzz.updates import UPDATES

ROOT = Path(__file__).resolve().parents[2]


def _walk(steps: list[dict], depth: int = 0):
    for s in steps:
        yield s, depth
        yield from _walk(s.get("body", []), depth + (s["op"] == "graph"))


def test_generator_covers_what_the_issue_asks_for():
    seen: Counter = Counter()
    for seed in range(120):
        prog = random_program(seed)
        for s, depth in _walk(prog["steps"]):
            seen[s["op"]] += 1
            seen[f"fn:{s.get('fn')}"] += s["op"] == "update"
            seen[f"dtype:{s.get('dtype')}"] += 1
            seen[f"seq:{s.get('mode')}"] += s["op"] == "seq"
            seen[f"adam:{s.get('variant')}/graph={s.get('graph')}"] += s["op"] == "adam"
            seen["nested graph"] += s["op"] == "graph" and depth >= 1
            seen["by-ref input"] += any(d["by_ref"] for d in s.get("inputs", []))
            seen["scalar var"] += s["op"] == "var" and s["shape"] == [] and s.get("role") != "hyper"
        ctx = build(prog)
        seen["broadcast"] += any(op.kind in ("Add", "Sub", "Mul", "Div", "Max", "Min") and
                                 op.inputs[0].shape != op.inputs[1].shape for op in ctx.ir.core.main.ops)
        seen["bit-exact output"] += sum(t == 0 for t in ctx.tol.values())
        seen["tolerant output"] += sum(t > 0 for t in ctx.tol.values())
    want = ["unary", "binary", "scalar", "cast", "where", "reduce", "matmul", "reshape", "transpose", "softmax",
            "load", "observe", "graph", "call", "seq", "adam", "nested graph", "by-ref input", "broadcast",
            "scalar var", "bit-exact output", "tolerant output", "seq:True", "seq:False", "seq:pass",
            *(f"fn:{f}" for f in UPDATES), *(f"dtype:{d}" for d in ("float32", "float16", "float64", "int32")),
            *(f"adam:{v}/graph={g}" for v in ("adam", "lamb", "adamax", "nobias") for g in (True, False))]
    assert [w for w in want if not seen[w]] == []


def test_programs_are_deterministic_json_and_replay():
    for seed in (3, 17, 42):
        a, b = random_program(seed), random_program(seed)
        assert a == b and json.loads(json.dumps(a)) == a
        s1 = [print_schedule(g) for g in build(a).ir.core.graphs.values()]
        s2 = [print_schedule(g) for g in build(json.loads(json.dumps(a))).ir.core.graphs.values()]
        assert s1 == s2 and len(build(a).ir.core.main.ops) > 0


@pytest.mark.parametrize("seed", [5, 11, 23])
def test_every_subset_of_steps_is_a_valid_program(seed):
    """What makes shrinking sound: deleting steps never yields a program the reference rejects."""
    rng = np.random.default_rng(seed)
    prog = random_program(seed)
    for _ in range(4):
        sub = json.loads(json.dumps(prog))
        for s, _ in list(_walk(sub["steps"])):
            for lst in [sub["steps"]] + [x.get("body", []) for x, _ in _walk(sub["steps"])]:
                if s in lst and rng.random() < 0.4:
                    lst.remove(s)
        run(build(sub), REFERENCE)


def test_comparison_is_bit_exact_or_scaled_by_the_tolerance():
    a = np.array([1.0, -0.0, np.nan, np.inf, 3.0], np.float32)
    ulp = np.nextafter(a, np.float32(9))
    assert compare("x", a, a.copy(), 0.0) is None
    assert compare("x", a, np.array([1.0, 0.0, np.nan, np.inf, 3.0], np.float32), 0.0) is None  # -0 == +0
    assert "differs at 1 of 5" in compare("x", a, np.where(np.arange(5) == 0, ulp, a), 0.0)
    assert compare("x", a, np.where(np.arange(5) == 0, ulp, a), 2e-5) is None
    assert "differs" in compare("x", a, np.where(np.arange(5) == 0, np.float32(1.01), a), 2e-5)
    assert "differs" in compare("x", a, np.where(np.arange(5) == 3, np.float32(-np.inf), a), 2e-5)
    assert "differs" in compare("x", a, np.where(np.arange(5) == 2, np.float32(0), a), 2e-5)
    assert "expected float32(5,), got float64(5,)" in compare("x", a, a.astype(np.float64), 0.0)
    assert "differs" in compare("i", np.arange(3, dtype=np.int32), np.array([0, 1, 3], np.int32), 1.0)


def test_tolerance_is_per_element_not_scaled_by_the_largest():
    """A small float16 element may not be off by a fraction of the array's largest value."""
    want = np.array([0.01, 16.0], np.float16)
    assert compare("h", want, np.array([0.0105, 16.1], np.float16), 1e-2) is None  # within 1e-2 * (|w| + 1)
    for off in (0.1, 0.03):  # old rule: allowed 1e-2 * (0.01 + 16) = 0.16
        assert "first at (0,)" in (compare("h", want, np.array([off, 16.0], np.float16), 1e-2) or "passed")


def test_exactness_classification():
    from compiler import popxl
    from compiler.popxl import ops

    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones((2, 2), np.float32))
        i = popxl.variable(np.ones((2, 2), np.int32))
        exact = [x + x, ops.maximum(x, x), ops.cast(x, popxl.float16), ops.sqrt(x), ops.sum(i), i @ i, ops.max(x)]
        inexact = [ops.tanh(x), ops.gelu(x), x @ x, ops.sum(x), ops.softmax(x), ops.pow(x, x)]
        ops.var_updates.accumulate_moving_average_(x, x, 0.9)  # adds and multiplies only: exact
        ops.var_updates.adam_updater(x, x, weight=x, time_step=popxl.variable(np.float32(0)), weight_decay=0.0,
                                     beta1=0.9, beta2=0.999)  # pow in the bias correction: inexact
    got = [op_is_exact(op) for op in ir.core.main.ops]
    assert got == [True] * len(exact) + [False] * len(inexact) + [True, False]


def test_shrinker_keeps_the_failure_and_drops_the_rest():
    prog = random_program(9)
    target = next(s for s, _ in _walk(prog["steps"]) if s["op"] == "binary")

    def still_fails(p: dict) -> bool:
        return any(s == target for s, _ in _walk(p["steps"])) and any(s["op"] == "binary" for s, _ in _walk(p["steps"]))

    small, tries = shrink(prog, still_fails)
    assert still_fails(small) and tries > 0
    kept = [s for s, _ in _walk(small["steps"])]
    assert target in kept and count_steps(small["steps"]) <= 1 + sum(1 for s in kept if "body" in s)
