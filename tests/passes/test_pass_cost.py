"""Pass cost against program size, counted (lines of Python executed), never timed.

Doubling the layers of a deep MLP doubles its ops; a pass whose work grows like n log n does at most
about 2.2x the work (a quadratic one 4x). memory_plan was quadratic until it became one sweep (a deep
forward pass keeps every activation alive to its end, and its placement compared each buffer with
every buffer alive with it); test_memory_plan_is_n_log_n_in_live_buffers holds it to the sweep.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
from session_helpers import ROOT

from compiler.ir.clone import clone
from passes.pipeline import pipeline
from passes.registry import PASSES
from work_count import lines_executed

sys.path.insert(0, str(ROOT / "examples"))
import deep_mlp  # noqa: E402

QUADRATIC: set[str] = set()


def _work(layers: int) -> dict[str, int]:
    ir, *_ = deep_mlp.train_ir(layers)
    work = clone(ir.core)
    return {name: lines_executed(lambda name=name: PASSES[name](work)) for name in pipeline(2)}


@pytest.fixture(scope="module")
def work() -> tuple[dict[str, int], dict[str, int]]:
    return _work(24), _work(48)


@pytest.mark.parametrize("name", pipeline(2))
def test_pass_work_grows_at_most_n_log_n(work, name):
    small, big = work
    ratio = big[name] / max(small[name], 1)
    if name in QUADRATIC:
        assert ratio <= 4.2, f"{name}: {small[name]} -> {big[name]} lines for twice the ops"
    else:
        assert ratio <= 2.3, f"{name}: {small[name]} -> {big[name]} lines for twice the ops (more than n log n)"


def test_memory_plan_is_n_log_n_in_live_buffers():
    """The worst case for placement: n buffers all alive at once (a forward pass kept for backward)."""
    from compiler import popxl
    from compiler.popxl import ops
    from passes.memory_plan import plan_graph

    def work(n: int) -> int:
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.ones(4, np.float32), name="x")
            ts = [ops.exp(x) * float(k + 1) for k in range(n)]  # every temporary read by the final sum
            total = ts[0]
            for t in ts[1:]:
                total = total + t
            ops.var_updates.copy_var_update_(x, total)
        return lines_executed(lambda: plan_graph(ir.core.main))

    small, big = work(200), work(400)
    assert big / small <= 2.3, f"memory_plan: {small} -> {big} lines for twice the buffers"
