"""Injected bugs are caught: the fuzzer is only worth its run time if it can fail. Also the CLI end to
end: a failing program is shrunk and saved as a runnable reproducer and a loadable Ir."""
from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tools.fuzz import count_steps, random_program
from tools.fuzz.differential import Config, check

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def div_by_reciprocal(monkeypatch):
    """A backend bug that only bit-exact comparison sees: a/b computed as a * (1/b)."""
    from llvmlite import ir

    from compiler.backends.llvm import rules
    from compiler.ops.primitives import Prim

    real = rules.RULES[Prim.div]

    def wrong(c, n, dts, a):
        if not n.dtype.is_float:
            return real(c, n, dts, a)
        return c.b.fmul(a[0], c.b.fdiv(ir.Constant(a[1].type, 1.0), a[1]))

    monkeypatch.setitem(rules.RULES, Prim.div, wrong)


@pytest.fixture
def constant_fold_off_by_a_bit(monkeypatch):
    """A pass bug: constant folding that nudges every float constant by one part in 2**12."""
    from passes import registry

    registry._load_all()
    real = registry.PASSES["constant_fold"]

    def wrong(ir):
        real(ir)
        for k, a in ir.constants.items():
            if a.dtype.kind == "f":
                ir.constants[k] = (a * (1 + 2.0 ** -12)).astype(a.dtype)
        return True

    monkeypatch.setitem(registry.PASSES, "constant_fold", wrong)


def _first_failure(config: Config, cache: str, seeds: range) -> tuple[int, object] | None:
    for seed in seeds:
        found = check(random_program(seed, size=6), [config], cache)
        if found:
            return seed, found[0]
    return None


def test_backend_bug_is_caught(div_by_reciprocal, tmp_path):
    hit = _first_failure(Config("cpu", 0), str(tmp_path), range(40))
    assert hit is not None, "a / b as a * (1/b) went unnoticed for 40 programs"
    assert hit[1].kind == "mismatch" and "bit for bit" in hit[1].detail


def test_pass_bug_is_caught(constant_fold_off_by_a_bit, tmp_path):
    hit = _first_failure(Config("interpreter", 2), str(tmp_path), range(40))
    assert hit is not None and hit[1].kind == "mismatch"


def test_cli_shrinks_and_saves_a_runnable_reproducer(div_by_reciprocal, tmp_path, capsys):
    import tools.fuzz as fz
    from compiler.ir import Ir

    seed = _first_failure(Config("cpu", 2), str(tmp_path / "c"), range(40))[0]
    rc = fz.main(["--programs", "1", "--seed", str(seed), "--size", "6", "--quick", "--out", str(tmp_path / "f"),
                  "--cache-dir", str(tmp_path / "c")])
    assert rc == 1 and "1 failing programs" in capsys.readouterr().out
    repro = tmp_path / "f" / f"{seed}-cpu-L2.py"
    ns = runpy.run_path(str(repro))  # the reproducer's program still fails while the bug is in
    found = check(ns["PROGRAM"], [ns["CONFIG"]], str(tmp_path / "c"))
    assert found and found[0].kind == "mismatch"
    before, after = map(int, re.search(r"shrunk from (\d+) to (\d+) steps", repro.read_text()).groups())
    assert after == count_steps(ns["PROGRAM"]["steps"]) and after < before  # the shrinker removed steps
    saved = repro.with_suffix("").with_suffix(".ir.json")
    assert Ir.load(saved).main.ops
    ns["build_ir"]().core.save(tmp_path / "rebuilt.json")  # the saved Ir is the reproducer's program
    assert _without_sources(tmp_path / "rebuilt.json") == _without_sources(saved)


def _without_sources(path: Path) -> object:
    """A saved Ir's JSON without the ops' build locations (which name the file that built it)."""
    def strip(x: object) -> object:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "source"}
        return [strip(v) for v in x] if isinstance(x, list) else x
    return strip(json.loads(path.read_text()))


def test_cli_campaign_reports_its_size(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.fuzz", "--programs", "3", "--seed", "5", "--size", "4", "--quick",
                        "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 programs x 1 configurations" in r.stdout and "0 failing programs" in r.stdout
