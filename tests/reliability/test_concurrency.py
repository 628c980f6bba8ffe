"""Concurrency: Sessions built, compiled and run from several threads at once; one Session shared by
threads (runs are serialised); processes compiling the same graph into one compile cache at the same
moment; threads writing the same checkpoint."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops
from tools.fuzz import random_program
from tools.fuzz.differential import REFERENCE, Config, compare, run
from tools.fuzz.program import build
from runtime.checkpoint import read, save

ROOT = Path(__file__).resolve().parents[2]


def _in_threads(work, n: int) -> list:
    results: list = [None] * n
    errors: list = []

    def wrap(k: int) -> None:
        try:
            results[k] = work(k)
        except BaseException as e:  # reported below with the thread's index
            errors.append((k, e))

    threads = [threading.Thread(target=wrap, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_different_sessions_build_compile_and_run_in_threads_at_once(tmp_path):
    seeds = [11, 12, 13, 14]
    want = [run(build(random_program(s, size=8)), REFERENCE) for s in seeds]

    def work(k: int) -> dict:  # everything, from tracing to the last run, happens in the thread
        return run(build(random_program(seeds[k], size=8)), Config("cpu", 2), str(tmp_path / f"cache{k % 2}"))

    got = _in_threads(work, 4)
    alone = [run(build(random_program(s, size=8)), Config("cpu", 2), str(tmp_path / "alone")) for s in seeds]
    for seed, w, g, a in zip(seeds, want, got, alone):
        ctx = build(random_program(seed, size=8))
        assert w.keys() == g.keys() == a.keys()
        for name in w:  # bit for bit what the same program compiled alone gives; the reference within fuzz tolerance
            np.testing.assert_array_equal(g[name], a[name], err_msg=f"seed {seed} {name}")
            assert compare(name, w[name], g[name], ctx.tol.get(name.split("#")[0], ctx.var_tol)) is None


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_one_session_shared_by_threads_runs_one_step_at_a_time(device):
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream((1 << 16,), popxl.float32, name="x")
        v = popxl.variable(np.zeros(1 << 16, np.float32), name="v")
        x = ops.host_load(h, "x")
        ops.var_updates.accumulate_(v, x)
        d = popxl.d2h_stream((1 << 16,), popxl.float32, name="y")
        ops.host_store(d, x * 2.0 + ops.sum(x))
    s = popxl.Session(ir, device)
    if device == "cpu":
        assert type(s._exe).__name__ != "InterpreterExecutable", "the LLVM backend did not load"
    xs = [np.full(1 << 16, k / 8, np.float32) for k in range(4)]
    want = [x * 2 + np.float32(x.sum()) for x in xs]

    def work(k: int) -> bool:
        return all(np.array_equal(s.run({h: xs[k]})[d], want[k]) for _ in range(25))

    with s:
        assert _in_threads(work, 4) == [True] * 4
    np.testing.assert_array_equal(s.get_tensor_data(v), np.full(1 << 16, 25 * sum(k / 8 for k in range(4)), np.float32))


CHILD = r"""
import os, sys, time, json
sys.path.insert(0, {root!r})
import numpy as np
from tools.fuzz import random_program, build
from tools.fuzz.differential import Config, run
ctx = build(random_program(31, size=10, big=0.0))
print("ready", flush=True)
while not os.path.exists({go!r}):
    time.sleep(0.005)
from compiler import popxl
s = popxl.Session(ctx.ir, "cpu", options=Config("cpu", 2).options({cache!r}))
got = run(ctx, Config("cpu", 2), {cache!r})
print(json.dumps({{"hit": s._exe.cache_hit,
                   "sum": {{k: float(np.asarray(v, np.float64).sum()) for k, v in got.items()}}}}), flush=True)
"""


def test_processes_compiling_the_same_graph_into_one_cache_at_once(tmp_path):
    cache, go = tmp_path / "cache", tmp_path / "go"
    code = CHILD.format(root=str(ROOT), go=str(go), cache=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()  # all three compile the same graph into the same, empty cache now
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert all(o["sum"] == outs[0]["sum"] for o in outs)
    assert not [f for f in cache.rglob("*") if f.name.endswith(".tmp")]  # no half-written entries left
    later = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert later.returncode == 0, later.stderr[-3000:]
    last = json.loads(later.stdout.strip().splitlines()[-1])
    assert last["sum"] == outs[0]["sum"]
    assert last["hit"] is True  # the entry the racing compilers left is intact and used


def test_threads_saving_one_checkpoint_leave_one_complete_version(tmp_path):
    path = tmp_path / "ck.npz"

    def work(k: int) -> None:
        for _ in range(10):
            save(path, {"w": np.full(100_000, k, np.float32), "k": np.asarray(k)})

    _in_threads(work, 4)
    _, data = read(path)
    k = int(data["k"])
    assert np.all(data["w"] == k) and k in range(4)
