"""Random programs (hypothesis): every pass alone, every level, and every level-3 pass switched off give
bit-identical results on the interpreter; the verifier and the pass invariants run after every pass."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import gen_programs
from pass_helpers import after, assert_same, at_level, run
from passes import registry
from passes.pipeline import LEVELS

registry._load_all()
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# what a pass needs before it to have anything to do
PREREQUISITES = {"fuse_horizontal": ["fuse_elementwise"], "inplace": ["fuse_elementwise"],
                 "memory_plan": ["inplace"]}


@pytest.mark.parametrize("name", sorted(registry.PASSES))
@settings(max_examples=8, **SETTINGS)
@given(recipe=gen_programs.recipes)
def test_each_pass_alone_is_exact(name, recipe):
    want = run(gen_programs.build(recipe))
    got = run(after(gen_programs.build(recipe), PREREQUISITES.get(name, []) + [name]))
    assert_same(want, got)


@pytest.mark.parametrize("level", [1, 2, 3])
@settings(max_examples=25, **SETTINGS)
@given(recipe=gen_programs.recipes)
def test_every_level_is_exact(level, recipe):
    want = run(gen_programs.build(recipe))
    work = at_level(gen_programs.build(recipe), level)
    assert_same(want, run(work))
    assert_same(want, run(at_level(work, level)))  # the pipeline accepts its own output


@pytest.mark.parametrize("skip", LEVELS[3])
@settings(max_examples=5, **SETTINGS)
@given(recipe=gen_programs.recipes)
def test_each_pass_off_is_exact(skip, recipe):
    assert_same(run(gen_programs.build(recipe)), run(at_level(gen_programs.build(recipe), 3, (skip,))))
