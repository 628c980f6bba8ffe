"""Passes: golden before/after schedules on small graphs, semantics preserved on the tutorial graphs and on
random programs (hypothesis), the verifier after every pass, dedup counts, refusal reasons."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.ir import print_schedule
from compiler.ir.clone import clone
from compiler.popxl import ops
from conftest import run_session
from passes.manager import PassError, PassManager
from passes.pipeline import LEVELS, run_pipeline
from passes.registry import PASSES, _load_all
from passes.schedule import ScheduleError
from tools.progen import generate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import custom_optimiser  # noqa: E402

_load_all()
ALL = sorted(PASSES)


def _vars(ir, level: int, skip=()):
    out, _ = run_session(ir, "interpreter", options=CompileOptions(level=level, skip=tuple(skip), verify_each=True))
    return out


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_tutorial_adam_becomes_one_fused_kernel_per_graph():
    ir, _ = custom_optimiser.build_ir()
    w = clone(ir)
    run_pipeline(w, verify_each=True)
    for gid in ("Adam_subgraph(0)", "Adam_subgraph(1)"):
        ops_ = w.graphs[gid].ops
        assert [op.kind for op in ops_] == ["FusedKernel"]
        k = ops_[0]
        assert sorted(v.name for v in k.inputs if v.kind == "input")  # reads each tensor once
        assert len({v.storage for v in k.inputs}) == len(k.inputs)
        written = {v.storage for v in k.outputs}
        assert len(written) == len(k.outputs) == 4  # w, m, v and the step, once each
    _same(_vars(custom_optimiser.build_ir()[0], 0), _vars(custom_optimiser.build_ir()[0], 2))


GOLDEN_FOLD = """\
Graph : Adam_subgraph(1)
  (%1, %2, %3, first_order=%4, second_order=%5, step=%6) -> () {
    Accumulate.104 (%4 [(2, 2) float16], %2 [(2, 2) float32]) -> (%7 [(2, 2) float16])
    Accumulate.105 (%5 [(2, 2) float32], %2 [(2, 2) float32]) -> (%8 [(2, 2) float32])
    AdamUpdater.106 (%4 [(2, 2) float16], %5 [(2, 2) float32], %6 [() float32]) -> (%9 [(2, 2) float16])
    ScaledAddLhsInplace.108 (%1 [(2, 2) float32], %9 [(2, 2) float16], %3 [() float32]) -> (%10 [(2, 2) float32])
  }"""


def test_fold_neg_golden():
    ir, _ = custom_optimiser.build_ir()
    PassManager(["fold_neg_into_scaled_add", "dce"], verify_each=True).run(ir)
    assert print_schedule(ir.graphs["Adam_subgraph(1)"]) == GOLDEN_FOLD
    op = ir.graphs["Adam_subgraph(1)"].ops[-1]
    assert op.attrs["negate_b"] is True


def test_fold_constant_scales_and_mul_minus_one():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(4, np.float32), name="x")
        y = popxl.variable(np.full(4, 2.0, np.float32), name="y")
        lr = popxl.variable(np.asarray(0.5, np.float32), name="lr")
        ops.scaled_add_(x, y, b=lr * -1.0)
        ops.scaled_add_(y, x, a=popxl.constant(2.0), b=popxl.constant(3.0))
    before = _vars(ir, 0)
    w = clone(ir)
    PassManager(["fold_neg_into_scaled_add", "dce"], verify_each=True).run(w)
    kinds = [op.kind for op in w.main.ops]
    assert kinds == ["ScaledAddLhsInplace", "ScaledAddLhsInplace"]
    assert w.main.ops[1].attrs["a"] == 2.0 and w.main.ops[1].attrs["b"] == 3.0 and len(w.main.ops[1].inputs) == 2
    _same(before, _vars(w, 0))


def test_dce_cse_constant_fold_golden():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32), name="x")
        c = popxl.constant(np.full(3, 2.0, np.float32)) * 3.0  # constant: folded
        a = ops.exp(x)
        b = ops.exp(x)  # duplicate of a: CSE
        ops.tanh(x)  # unused: DCE
        ops.var_updates.accumulate_(x, a + b + c)
    w = clone(ir)
    PassManager(["constant_fold", "cse", "dce"], verify_each=True).run(w)
    assert [op.kind for op in w.main.ops] == ["Exp", "Add", "Add", "Accumulate"]
    _same(_vars(ir, 0), _vars(w, 0))


def _mnist_adam_ir(cache: bool):
    ir = popxl.Ir()
    opt = custom_optimiser.Adam(cache=cache)
    with ir.main_graph:
        for i, shape in enumerate([(784, 512), (512,), (512, 512), (512,), (512, 512), (512,), (512, 10), (10,)]):
            var = popxl.variable(np.zeros(shape, np.float32), name=f"w{i}")
            g = popxl.variable(np.zeros(shape, np.float32), name=f"g{i}")
            facts, graph = opt.create_graph(var, var.spec, lr=1e-3, weight_decay=0.0, bias_correction=False)
            graph.bind(facts.init()).call(var, g)
    return ir


def test_dedup_without_cache_gives_five_graphs():
    ir = _mnist_adam_ir(cache=False)
    assert len(ir.graphs) == 9
    PassManager(["dedup_subgraphs"], verify_each=True).run(ir)
    assert len(ir.graphs) == 6  # main + 5 distinct Adam graphs


def test_schedule_cycle_error_names_ops():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32))
        a = ops.exp(x)
        b = ops.tanh(a)
    ea, tb = ir.main.ops
    ir.main.constraints.append((tb, ea))
    with pytest.raises(ScheduleError, match=rf"{ea.label}.*{tb.label}|{tb.label}.*{ea.label}"):
        PASSES["schedule"](ir)


def test_schedule_orders_reads_before_overwrites():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32), name="x")
        o = popxl.variable(np.zeros(3, np.float32), name="o")
        y = ops.exp(x)  # reads x v0
        ops.var_updates.accumulate_(x, x)  # writes x v1
        ops.var_updates.copy_var_update_(o, y)
    ir.main.ops.reverse()  # an invalid order
    w = clone(ir)
    PASSES["schedule"](w)
    kinds = [op.kind for op in w.main.ops]
    assert kinds.index("Exp") < kinds.index("Accumulate")


def test_fusion_refusal_is_recorded():
    ir = popxl.Ir()
    with ir.main_graph:
        b = popxl.variable(np.ones(4, np.float32), name="b")
        x = popxl.variable(np.ones((3, 4), np.float32), name="x")
        ops.var_updates.accumulate_(b, ops.exp(b))  # writes b with shape (4,)
        y = x + b  # reads b broadcast over (3, 4): must not be fused with the write
        ops.var_updates.accumulate_(x, y)
    w = clone(ir)
    run_pipeline(w, verify_each=True)
    assert any("iteration shape" in r or "read with shape" in r for r in w.main.info["fusion_refusals"])
    _same(_vars(ir, 0), _vars(ir, 2))


def test_memory_plan_reuses_buffers():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(1024, np.float32), name="x")
        t = x
        for _ in range(6):
            t = ops.exp(ops.tanh(t)) @ ops.reshape(x, (1024, 1)) if False else ops.sum(ops.exp(t) * t, axis=0) * x
        ops.var_updates.copy_var_update_(x, t)
    w = clone(ir)
    run_pipeline(w, level=1)
    PassManager(["memory_plan"]).run(w)
    plan = w.main.info["memory_plan"]
    assert plan["peak_bytes"] < plan["naive_bytes"]


def test_pass_error_names_the_pass_and_history():
    from passes import registry

    def breaker(ir):
        ir.main.ops.reverse()
        return True

    registry.PASSES["_break"] = breaker
    try:
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.ones(3, np.float32))
            ops.var_updates.accumulate_(x, ops.exp(x))
        with pytest.raises(PassError, match=r"pass '_break' broke the IR \(passes run before it: dce\)"):
            PassManager(["dce", "_break"], verify_each=True).run(ir)
    finally:
        del registry.PASSES["_break"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_random_programs_pipeline_is_exact(seed):
    ref = _vars(generate(seed), 0)
    for level in (1, 2):
        _same(ref, _vars(generate(seed), level))


@pytest.mark.parametrize("skip", [p for p in LEVELS[2]])
def test_random_programs_each_pass_off(skip):
    for seed in range(6):
        _same(_vars(generate(seed), 0), _vars(generate(seed), 2, skip=(skip,)))
