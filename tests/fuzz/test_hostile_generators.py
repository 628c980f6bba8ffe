"""The hostile generators (tools/fuzz/gen_hostile.py) make what they promise, the differential harness
holds each device to the guarantees they test, and the harness fails when a guarantee is broken."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from tools.fuzz import build, random_program
from tools.fuzz.differential import Broken, Config, check, run

SEEDS = range(40)


@pytest.fixture(scope="module")
def programs() -> list[dict]:
    return [random_program(seed, size=10, hostile=True) for seed in SEEDS]


def _ops(steps: list[dict]) -> collections.Counter:
    c: collections.Counter = collections.Counter()
    for s in steps:
        c[s["op"]] += 1
        c += _ops(s.get("body", []))
    return c


def test_hostile_programs_contain_every_hostile_kind(programs):
    seen = sum((_ops(p["steps"]) for p in programs), collections.Counter())
    assert min(seen[k] for k in ("hconst", "const_write", "host_index", "wild_cast")) >= 3, seen
    assert sum(bool(p["bad_runs"]) for p in programs) >= 5
    assert any(s.get("dtype") == "bfloat16" for p in programs for s in p["steps"])
    ctxs = [build(p) for p in programs]
    assert sum(c.refused for c in ctxs) >= 3  # each in-place write of a constant was refused while building
    uses = {s["use"] for p in programs for s in p["steps"] if s["op"] == "host_index"}
    assert uses == {"labels", "sparse"}


def test_ordinary_programs_are_unchanged_by_the_hostile_kinds():
    p = random_program(5, size=10)
    assert "bad_runs" not in p and not {"hconst", "const_write", "host_index"} & set(_ops(p["steps"]))


@pytest.mark.parametrize("block", range(4))
def test_hostile_programs_agree_on_both_devices(block, programs, tmp_path):
    for p in programs[block * 10:(block + 1) * 10]:
        found = check(p, [Config("cpu", 2), Config("interpreter", 2)], str(tmp_path))
        assert not found, f"seed {p['seed']}: {found[0]}"


def _with_bad_run() -> dict:
    return next(p for p in (random_program(s, size=10, hostile=True) for s in range(100))
                if p["bad_runs"] and any(s["op"] == "host_index" for s in p["steps"]))


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_a_refused_run_reports_nothing_changed(device, tmp_path):
    ctx = build(_with_bad_run())
    got = run(ctx, Config(device, 2), str(tmp_path))
    refused = [k for k in got if k.startswith("refused#")]
    assert refused and all(bool(got[k]) for k in refused)


def test_the_harness_fails_a_device_that_changes_state_in_a_refused_run(monkeypatch, tmp_path):
    """Without the session's check of host-fed indices before the run, the device fails partway (after
    earlier updates): the harness must report that, not pass it."""
    import compiler.popxl.session as session

    p = _with_bad_run()
    assert not check(p, [Config("cpu", 2)], str(tmp_path))
    monkeypatch.setattr(session, "check_batch", lambda checks, streams: None)
    found = check(p, [Config("cpu", 2)], str(tmp_path))
    assert found and "was refused for a bad host-fed index but changed" in found[0].detail, found


def test_the_harness_fails_a_run_that_changes_a_constant(monkeypatch, tmp_path):
    p = next(p for p in (random_program(s, size=10, hostile=True) for s in range(100))
             if any(s["op"] == "hconst" for s in p["steps"]))
    ctx = build(p)
    import compiler.popxl as popxl

    real_run = popxl.Session.run

    def run_and_scribble(self, *a, **k):
        out = real_run(self, *a, **k)
        for arr in ctx.ir.core.constants.values():
            if arr.size and arr.dtype.kind == "f":
                arr.reshape(-1)[0] += np.asarray(1, arr.dtype)
        return out

    monkeypatch.setattr(popxl.Session, "run", run_and_scribble)
    with pytest.raises(Broken, match="changed the Ir's constants"):
        run(ctx, Config("interpreter", 0), str(tmp_path))
