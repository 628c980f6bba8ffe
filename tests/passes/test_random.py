"""Random programs (tools/fuzz with its pass-shaped steps: duplicate expressions, constant arithmetic,
negated ScaledAdd scales, on top of updates, optimizer graphs, calls and in_sequence blocks): every
pass alone, every level, and every level-3 pass switched off give bit-identical results on the
interpreter; the verifier and the pass invariants run after every pass. A failing seed reproduces
with `random_program(seed, size=..., patterns=True)` (see _program)."""
from __future__ import annotations

import pytest

from pass_helpers import after, assert_same, at_level, run
from passes import registry
from passes.pipeline import LEVELS
from tools.fuzz import build, inputs, random_program

registry._load_all()
# what a pass needs before it to have anything to do
PREREQUISITES = {"fuse_horizontal": ["fuse_elementwise"], "inplace": ["fuse_elementwise"],
                 "memory_plan": ["inplace"]}


def _program(seed: int):
    """A fresh Ir of the seed's program and its host inputs (the same for every run)."""
    ctx = build(random_program(seed, size=3 + seed % 10, patterns=True))
    return ctx.ir, inputs(ctx, 0)


def _same(seed: int, rewrite) -> None:
    ir, feed = _program(seed)
    want = run(ir, inputs=feed)
    assert_same(want, run(rewrite(_program(seed)[0]), inputs=feed))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name", sorted(registry.PASSES))
def test_each_pass_alone_is_exact(name, seed):
    _same(100 * len(name) + seed, lambda ir: after(ir, PREREQUISITES.get(name, []) + [name]))


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("level", [1, 2, 3])
def test_every_level_is_exact(level, seed):
    def twice(ir):
        work = at_level(ir, level)
        return at_level(work, level)  # the pipeline accepts its own output
    _same(1000 * level + seed, lambda ir: at_level(ir, level))
    _same(1000 * level + seed, twice)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("skip", LEVELS[3])
def test_each_pass_off_is_exact(skip, seed):
    _same(5000 + 10 * LEVELS[3].index(skip) + seed, lambda ir: at_level(ir, 3, (skip,)))
