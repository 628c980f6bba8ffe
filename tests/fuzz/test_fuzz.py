"""Bounded differential fuzzing: random programs (tools/fuzz) on every configuration against the
reference interpreter. Longer campaigns: `python -m tools.fuzz --programs N --seed S`."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tools.fuzz import random_program
from tools.fuzz.differential import Config, check, default_pipeline

REPRODUCERS = Path(__file__).parent / "reproducers"
BLOCKS, PER_BLOCK = 8, 20  # 160 small programs on the default pipeline, compiled and interpreted


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    """A fresh compile cache: every program really compiles (identical optimised graphs still hit)."""
    return str(tmp_path_factory.mktemp("fuzz-cache"))


def small(seed: int, **kw) -> dict:
    return random_program(seed, size=2 + seed % 9, **kw)


def _assert_clean(findings: list, seed: int) -> None:
    assert not findings, f"seed {seed}: " + "\n".join(map(str, findings)) + (
        f"\nreproduce and shrink: python -m tools.fuzz --programs 1 --seed {seed} --size {2 + seed % 9}")


@pytest.mark.parametrize("block", range(BLOCKS))
def test_default_pipeline_matches_reference(block, cache_dir):
    """Passes (on the interpreter) and native code (with passes) agree with the reference."""
    for seed in range(block * PER_BLOCK, (block + 1) * PER_BLOCK):
        _assert_clean(check(small(seed), [Config("interpreter", 2), Config("cpu", 2)], cache_dir), seed)


def test_native_code_without_passes(cache_dir):
    for seed in range(500, 512):
        _assert_clean(check(small(seed), [Config("cpu", 0)], cache_dir), seed)


@pytest.mark.parametrize("level", [1, 3])
def test_other_pipeline_levels(level, cache_dir):
    for seed in range(540, 552):
        _assert_clean(check(small(seed), [Config("interpreter", level), Config("cpu", level)], cache_dir), seed)


@pytest.mark.parametrize("name", default_pipeline())
def test_each_pass_switched_off(name, cache_dir):
    for seed in range(600, 606):
        _assert_clean(check(small(seed), [Config("cpu", 2, (name,))], cache_dir), seed)


def test_nan_and_inf_inputs_propagate_like_numpy(cache_dir):
    for seed in range(700, 720):
        _assert_clean(check(small(seed, nonfinite=True), [Config("cpu", 2)], cache_dir), seed)


def test_sizes_above_the_threading_threshold(cache_dir):
    for seed in range(800, 802):
        _assert_clean(check(random_program(seed, size=5, big=1.0), [Config("cpu", 2)], cache_dir), seed)


def test_inplace_updates_of_intermediates(cache_dir):
    """In-place updates (and by-reference calls) on computed values, not only on variables."""
    for seed in range(900, 920):
        _assert_clean(check(small(seed, inplace_values=True), [Config("interpreter", 2), Config("cpu", 2)], cache_dir),
                      seed)


@pytest.mark.parametrize("path", sorted(REPRODUCERS.glob("*.py")), ids=lambda p: p.stem)
def test_saved_reproducers_stay_fixed(path, cache_dir):
    """Shrunk programs that once failed (saved by `python -m tools.fuzz`), kept as regression tests."""
    ns = runpy.run_path(str(path))
    assert not check(ns["PROGRAM"], [ns["CONFIG"], Config("cpu", 2)], cache_dir), ns["__doc__"].splitlines()[2]
