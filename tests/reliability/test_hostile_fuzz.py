"""The fuzzer's hostile programs (bfloat16 tensors, casts of out-of-range, infinite and NaN values to
integers) run the same natively as in the interpreter. With numpy's undefined float -> int casts in the
interpreter, 5 of the first 6 such programs failed here."""
from __future__ import annotations

from tools.fuzz import random_program
from tools.fuzz.differential import Config, check


def test_hostile_programs_agree_with_the_interpreter(tmp_path):
    programs = [random_program(seed, size=8, hostile=True) for seed in range(8)]
    ops = [{s["op"] for s in p["steps"]} for p in programs]
    assert any("wild_cast" in o for o in ops)
    assert any(s.get("dtype") == "bfloat16" for p in programs for s in p["steps"])
    for p in programs:
        found = check(p, [Config("cpu", 2), Config("cpu", 0)], str(tmp_path))
        assert not found, f"seed {p['seed']}: {found[0]}"
