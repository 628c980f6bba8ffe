"""Corrupted compile-cache entries: the manifest and the object are verified together, so any edit of
either is detected, warned about (CacheWarning), rebuilt, and the program still runs correctly; nothing
blocks later compiles. In a child process: an edited workspace size used to crash it."""
from __future__ import annotations

import pytest

from .conftest import run_cases

PRELUDE = """
import json, sys, warnings
from pathlib import Path
import numpy as np
sys.path.insert(0, "examples")
import custom_optimiser
from compiler import popxl
from compiler.driver import CompileOptions
from runtime.cache import CacheWarning

class Result(Exception):
    pass

def run(cache):
    ir, h = custom_optimiser.build_ir()
    s = popxl.Session(ir, "cpu", options=CompileOptions(cache_dir=cache))
    with s:
        s.run()
    return s._exe.cache_hit, s.get_tensor_data(h["var"])

def corrupt_and_run(cache, edit):
    _, want = run(cache)
    hit, again = run(cache)
    assert hit and np.array_equal(want, again)
    meta = next(Path(cache).glob("*.json"))
    obj = meta.with_suffix(".o")
    edit(meta, obj)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        hit, got = run(cache)
    warned = [str(x.message) for x in w if issubclass(x.category, CacheWarning)]
    hit2, got2 = run(cache)  # the rebuilt entry is good again
    raise Result(json.dumps({"hit": hit, "same": bool(np.array_equal(want, got) and np.array_equal(want, got2)),
                             "warned": warned, "hit_after": hit2}))

def manifest(change):
    def edit(meta, obj):
        d = json.loads(meta.read_text())
        meta.write_text(json.dumps(change(d)))
    return edit
"""

EDITS = {
    "ws_size edited": "manifest(lambda d: {**d, 'layout': {**d['layout'], 'ws_size': d['layout']['ws_size'] + 4096}})",
    "ws_size negative": "manifest(lambda d: {**d, 'layout': {**d['layout'], 'ws_size': -64}})",
    "manifest null": "manifest(lambda d: None)",
    "manifest a list": "manifest(lambda d: [])",
    "layout missing": "manifest(lambda d: {k: v for k, v in d.items() if k != 'layout'})",
    "layout null": "manifest(lambda d: {**d, 'layout': None})",
    "sha256 missing": "manifest(lambda d: {k: v for k, v in d.items() if k != 'sha256'})",
    "manifest not JSON": "lambda meta, obj: meta.write_text('{not json')",
    "manifest empty": "lambda meta, obj: meta.write_text('')",
    "object truncated": "lambda meta, obj: obj.write_bytes(obj.read_bytes()[:200])",
    "object byte flipped": "lambda meta, obj: obj.write_bytes(bytes([obj.read_bytes()[0] ^ 1]) + obj.read_bytes()[1:])",
    "object empty": "lambda meta, obj: obj.write_bytes(b'')",
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("caches")
    return run_cases(PRELUDE, {case: f"corrupt_and_run({str(base / f'c{k}')!r}, {edit})"
                               for k, (case, edit) in enumerate(EDITS.items())})


@pytest.mark.parametrize("case", list(EDITS))
def test_a_corrupt_entry_is_rebuilt_with_a_warning(case, outcomes):
    import json

    got = outcomes[case]
    assert got.status == "raised" and got.exc == "Result", f"{case}: {got}"
    r = json.loads(got.msg)
    assert r["same"] and not r["hit"] and r["hit_after"], r
    assert len(r["warned"]) == 1 and "rebuilding it" in r["warned"][0], r
