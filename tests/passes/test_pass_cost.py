"""Pass cost against program size, counted (lines of Python executed), never timed.

Doubling the layers of a deep MLP doubles its ops; a pass whose work grows like n log n does at most
about 2.2x the work (a quadratic one 4x). memory_plan is the known exception: its first-fit placement
compares each buffer with every buffer alive at the same time, and a forward graph keeps every
activation alive to its end (for the backward pass), so it grows with the square of the depth.
"""
from __future__ import annotations

import sys

import pytest
from conftest import ROOT

from compiler.ir.clone import clone
from passes.pipeline import pipeline
from passes.registry import PASSES

sys.path.insert(0, str(ROOT / "examples"))
import deep_mlp  # noqa: E402

QUADRATIC = {"memory_plan"}


def lines_executed(fn) -> int:
    n = 0

    def local(frame, event, arg):
        nonlocal n
        n += 1
        return local

    old = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        fn()
    finally:
        sys.settrace(old)
    return n


def _work(layers: int) -> dict[str, int]:
    ir, *_ = deep_mlp.train_ir(layers)
    work = clone(ir)
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
