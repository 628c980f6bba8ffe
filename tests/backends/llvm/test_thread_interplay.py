"""Parallel regions next to other threads and runtimes, each in a subprocess under a timeout (a hang
fails the test instead of stalling the suite): sessions run from several Python threads at once; a
process that imported torch first, and one that imports it afterwards (one libgomp either way, shared
with torch); a multiprocessing child started with fork after a compiled step ran (it runs its steps
on one thread; libgomp's workers do not survive fork)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PRELUDE = """
import os, sys, threading
import numpy as np
sys.path.insert(0, {examples!r})
from compiler import popxl
from compiler.driver import CompileOptions
import custom_optimiser

def build(n=1 << 17, seed=0):
    ir = popxl.Ir()
    rng = np.random.default_rng(seed)
    with ir.main_graph:
        w = popxl.variable(rng.standard_normal(n).astype(np.float32), name="w")
        g = popxl.variable(rng.standard_normal(n).astype(np.float32), name="g")
        facts, graph = custom_optimiser.Adam(cache=True).create_graph(w, w.spec, lr=1e-3)
        graph.bind(facts.init()).call(w, g)
    return ir

def step(threads, seed=0, runs=3):
    ir = build(seed=seed)
    sess = popxl.Session(ir, "cpu", options=CompileOptions(use_cache=False, threads=threads))
    with sess:
        for _ in range(runs):
            sess.run({{}})
    vid = next(v for v in ir.core.variables if ir.core.main.values[v].name == "w")
    return sess._host[vid].copy()

def reference(seed=0, runs=3):
    ir = build(seed=seed)
    sess = popxl.Session(ir, "interpreter", options=CompileOptions(level=0))
    with sess:
        for _ in range(runs):
            sess.run({{}})
    vid = next(v for v in ir.core.variables if ir.core.main.values[v].name == "w")
    return sess._host[vid].copy()
"""


def _run(body: str, timeout: float = 240) -> str:
    code = PRELUDE.format(examples=str(ROOT / "examples")) + textwrap.dedent(body)
    try:
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_sessions_from_several_python_threads_at_once():
    out = _run("""
        want = {s: step(1, seed=s) for s in range(4)}
        got = {}
        def work(s):
            got[s] = step(3, seed=s)
        ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert all(got[s].tobytes() == want[s].tobytes() for s in range(4))
        np.testing.assert_allclose(want[0], reference(0), rtol=1e-5, atol=1e-6)
        print("ok")
    """)
    assert out.strip() == "ok"


def _gomps() -> str:
    return "sorted({l.split()[-1] for l in open('/proc/self/maps') if 'libgomp' in l})"


@pytest.mark.parametrize("order", ["torch-first", "torch-after"])
def test_one_openmp_runtime_with_torch(order):
    pytest.importorskip("torch")
    first = "import torch; torch.ones(1 << 20).sum()" if order == "torch-first" else "pass"
    after = "import torch; torch.ones(1 << 20).sum()" if order == "torch-after" else "pass"
    out = _run(f"""
        {first}
        one = step(1)
        two = step(2)
        {after}
        again = step(2)
        assert one.tobytes() == two.tobytes() == again.tobytes()
        maps = {_gomps()}
        assert len(maps) == 1, maps
        print(maps[0])
    """)
    if order == "torch-first":  # we joined the runtime torch had loaded
        assert "torch" in out, out


def test_fork_child_after_a_parallel_step_runs_on_one_thread():
    out = _run("""
        import multiprocessing as mp
        want = step(2)
        def child(q):
            q.put(step(2).tobytes())
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        got = q.get(timeout=120)
        p.join(60)
        assert p.exitcode == 0 and got == want.tobytes()
        print("ok")
    """)
    assert out.strip() == "ok"
