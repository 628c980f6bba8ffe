"""A bounded differential-fuzzing run: random programs, compiled vs the reference interpreter."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from passes.pipeline import LEVELS
from tools.fuzz import check
from tools.progen import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("block", range(8))
def test_random_programs_compiled_match_reference(block):
    for seed in range(block * 40, block * 40 + 40):
        assert check(seed) is None, f"seed {seed}"


@pytest.mark.parametrize("skip", LEVELS[2])
def test_random_programs_with_each_pass_off(skip):
    for seed in range(1000, 1012):
        assert check(seed, skips=[(skip,)]) is None, f"seed {seed}"


def test_generator_is_deterministic():
    from compiler.ir import print_schedule

    a, b = generate(7), generate(7)
    assert [print_schedule(g) for g in a.graphs.values()] == [print_schedule(g) for g in b.graphs.values()]


def test_cli_reports_and_saves_reproducers(tmp_path, monkeypatch):
    r = subprocess.run([sys.executable, "-m", "tools.fuzz", "--programs", "3", "--seed", "5", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 programs x 1 configurations" in r.stdout and "0 mismatches" in r.stdout


def test_failures_are_shrunk_and_saved(tmp_path, monkeypatch):
    import tools.fuzz as fz

    def fake_check(seed, n_ops=None, skips=None):  # "fails" once the program has 3 ops or more
        return None if n_ops is not None and n_ops < 3 else "injected mismatch"

    monkeypatch.setattr(fz, "check", fake_check)
    assert fz.main(["--programs", "1", "--seed", "4", "--out", str(tmp_path)]) == 1
    assert "generate(4, 3)" in (tmp_path / "fail_4.py").read_text()
    from compiler.ir import Ir

    assert Ir.load(tmp_path / "fail_4.json").graphs
