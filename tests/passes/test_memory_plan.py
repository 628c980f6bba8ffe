"""memory_plan: temporaries share bytes only when their lifetimes do not overlap; the checker catches a bad plan."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import mnist_adam
from compiler import popxl
from compiler.ir.clone import clone
from compiler.popxl import ops
from pass_helpers import after
from passes import registry
from passes.manager import PassError, PassManager


def _chain(n: int = 4):
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(256, np.float32), name="x")  # 1 KiB per temporary
        t = x
        for _ in range(n):
            t = ops.tanh(t) + x  # each temporary dies once the next one exists
        ops.var_updates.copy_var_update_(x, t)
    return ir


def test_a_chain_needs_two_buffers():
    work = after(_chain(), ["memory_plan"])
    plan = work.main.memory_plan
    assert plan.naive_bytes == 8 * 1024  # Tanh and Add results, 4 times
    assert plan.peak_bytes == 2 * 1024
    assert set(plan.offsets.values()) == {0, 1024}
    variables = {v.storage for v in work.main.values.values() if v.kind in ("variable", "constant")}
    assert not variables & set(plan.offsets)


def test_subgraph_outputs_live_to_the_end():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(16, np.float32), name="x")

        def body(t: popxl.Tensor):
            a = ops.exp(t)  # returned: must not share with b
            b = ops.tanh(t)
            return a, ops.sqrt(b)

        ops.call(ir.create_graph(body, x), x)
    work = after(ir, ["memory_plan"])
    sub = next(g for g in work.graphs.values() if g is not work.main)
    offs = sub.memory_plan.offsets
    exp_out = sub.ops[0].outputs[0].storage
    assert all(offs[s] != offs[exp_out] for s in offs if s != exp_out)


def test_the_mnist_step_plans_less_than_it_allocates():
    ir, *_ = mnist_adam.train_ir(8)
    work = after(ir, ["schedule", "memory_plan"])  # after() also checks that no live storages overlap
    plans = [g.memory_plan for g in work.graphs.values()]
    assert all(p.peak_bytes <= p.naive_bytes for p in plans)
    assert sum(p.peak_bytes for p in plans) < sum(p.naive_bytes for p in plans)


def test_an_overlapping_plan_is_caught(monkeypatch):
    real = registry.get_pass("memory_plan")

    def squash(ir):
        real(ir)
        for g in ir.graphs.values():  # everything at offset 0
            g.memory_plan = replace(g.memory_plan, offsets=dict.fromkeys(g.memory_plan.offsets, 0))
        return False

    monkeypatch.setitem(registry.PASSES, "memory_plan", squash)
    with pytest.raises(PassError, match="memory plan overlaps"):
        PassManager(["memory_plan"], verify_each=True).run(clone(_chain().core))


def test_a_pass_that_changes_the_ir_drops_the_plan_and_the_pipeline_makes_a_new_one():
    """Found by the random pass tests: a second pipeline over optimised IR saw the first run's plan."""
    work = after(_chain(), ["memory_plan"])
    assert work.main.memory_plan is not None
    work = after(work, ["inplace"])  # changes the IR
    assert work.main.memory_plan is None
    assert len(after(work, ["memory_plan"]).main.memory_plan.offsets) == 1  # one buffer after in-placing
