"""Thread counts: one compiled program runs with any number of threads (a run-time argument, not part
of the compile cache key) and gives bit-identical results at 1, 2, 3, 4 and 7 threads (more threads
than this machine's cores is fine for correctness), all within tolerance of the interpreter. Each
program is big enough that its kernels contain parallel regions (checked in the LLVM IR): fused
elementwise loops, MultiKernel groups, groups of independent calls, matmuls (every layout, batched,
float16) and reductions (outer dimension kept or reduced)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl.ops._emit import emit_op, out
from session_helpers import run_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
from llvmcheck import check, np_dtype, program, sgd_program  # noqa: E402

COUNTS = (1, 2, 3, 4, 7)


def _normal(shape, dt, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np_dtype(dt))


def _same_at_every_count(build, tmp_path, level=2, runs=2, atol=None) -> None:
    ref, _ = run_session(build(), "interpreter", runs=runs, options=CompileOptions(level=0))
    first = None
    for n in COUNTS:
        opts = CompileOptions(level=level, threads=n, cache_dir=str(tmp_path))
        sess = popxl.Session(build(), "cpu", options=opts)
        assert sess._exe.threads == n
        assert sess._exe.cache_hit == (first is not None), "the thread count must not change the compiled code"
        sess._exe._executor._ws.fill(0xFF)  # NaN everywhere: scratch that no thread wrote shows up
        with sess:
            for _ in range(runs):
                sess.run({})
        got = {sess.ir.core.main.values[vid].name: sess._host[vid].copy() for vid in sess.ir.core.variables}
        if first is None:
            first = got
            assert "@GOMP_parallel" in sess._exe.llvm_ir, "this program was meant to contain a parallel region"
            for k in ref:
                check(f"{n} threads: {k}", got[k], ref[k], atol=atol)
        else:
            for k in first:
                assert got[k].tobytes() == first[k].tobytes(), f"{k}: {n} threads differ from 1 thread"


def _adam(n: int, dt=np.float32):
    import custom_optimiser

    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            w = popxl.variable(_normal(n, np.float32, 1), name="w")
            g = popxl.variable(_normal(n, np.float32, 2), name="g")
            facts, graph = custom_optimiser.Adam(cache=True).create_graph(w, w.spec, lr=1e-3, first_order_dtype=dt)
            graph.bind(facts.init()).call(w, g)
        return ir
    return build


@pytest.mark.parametrize("n,dt", [(300_007, np.float32), (1 << 17, popxl.float16)], ids=["odd-f32", "f16-state"])
def test_fused_elementwise(tmp_path, n, dt):
    _same_at_every_count(_adam(n, dt), tmp_path)


@pytest.mark.parametrize("shapes", [
    [(100_003,), (3,), (70_001,), (1000, 7)],  # block edges inside groups, odd sizes, a 2-d group
    [(1000,)] * 70 + [(7,)] * 10,  # many small groups
], ids=["mixed", "many-small"])
def test_multikernel_groups(tmp_path, shapes):
    _same_at_every_count(sgd_program(shapes), tmp_path, level=3)


@pytest.mark.parametrize("shapes", [[(60_000,)] * 9, [(150_000,), (10,), (30_000,), (9_000,)] * 3],
                         ids=["equal", "uneven"])
def test_independent_calls(tmp_path, shapes):
    """Each thread runs its calls in its own workspace lane (a shared one would mix the threads'
    intermediates; seen only when the threads overlap in time, so on a busy machine not every run
    would catch it)."""
    _same_at_every_count(sgd_program(shapes, normalised=True), tmp_path, level=2)


def _matmul(sa, sb, dt, ta=False, tb=False):
    a, b = _normal(sa, dt, 1), _normal(sb, dt, 2)
    attrs = {"transpose_a": ta, "transpose_b": tb}
    return program({"a": a, "b": b}, lambda t: {"y": out(emit_op("MatMul", {"a": t["a"], "b": t["b"]}, attrs))})


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_layouts(tmp_path, ta, tb):
    m, k, n = 133, 97, 301  # edges in every direction of the 4x64 / 4x4 micro-kernels
    _same_at_every_count(_matmul((k, m) if ta else (m, k), (n, k) if tb else (k, n), np.float32, ta, tb), tmp_path,
                         atol=1e-4)


@pytest.mark.parametrize("sa,sb,dt", [((3, 37, 64), (64, 270), np.float32), ((2, 1, 40, 33), (3, 33, 50), np.float32),
                                      ((65, 128), (128, 96), np.float16), ((70, 90), (90, 80), np.float64)],
                         ids=["batched", "broadcast-batch", "float16", "float64"])
def test_matmul_batched_and_other_dtypes(tmp_path, sa, sb, dt):
    _same_at_every_count(_matmul(sa, sb, dt), tmp_path, atol=1e-2 if dt == np.float16 else 1e-4)


@pytest.mark.parametrize("kind,shape,axes,dt", [
    ("ReduceSum", (300_001,), None, np.float32),  # one output: fixed blocks, partials combined in order
    ("ReduceSum", (1000, 70), (0,), np.float32),  # outer dim reduced: partial rows
    ("ReduceMean", (700, 131), (1,), np.float32),  # outer dim kept: blocks own their outputs
    ("ReduceSumSquare", (64, 40, 30), (0, 2), np.float16),  # narrow output through float32 accumulators
    ("ReduceMax", (100_000,), None, np.float32),
    ("ReduceMean", (90_000,), None, np.int32),
], ids=["sum-all", "sum-outer", "mean-inner", "sumsq-f16", "max", "mean-int"])
def test_reductions(tmp_path, kind, shape, axes, dt):
    if np_dtype(dt).kind == "i":
        x = np.random.default_rng(5).integers(0, 1000, shape).astype(dt)  # a mean far from 0
    else:
        x = _normal(shape, dt, 5)
    build = program({"x": x}, lambda t: {"y": out(emit_op(kind, {"x": t["x"]}, {"axes": axes, "keepdims": False}))})
    _same_at_every_count(build, tmp_path, runs=1, atol=1e-3 * np.sqrt(np.prod(shape)))


def test_thread_count_changes_between_runs_without_recompiling(tmp_path):
    build = _adam(1 << 17)
    outs = []
    for counts in ((1, 1, 1), (4, 2, 7)):
        sess = popxl.Session(build(), "cpu", options=CompileOptions(use_cache=False, threads=counts[0]))
        with sess:
            for n in counts:
                sess._exe.threads = n
                sess.run({})
        outs.append({sess.ir.core.main.values[v].name: sess._host[v].copy() for v in sess.ir.core.variables})
    for k in outs[0]:
        assert outs[0][k].tobytes() == outs[1][k].tobytes(), k


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="CompileOptions.threads must be a positive integer"):
        popxl.Session(_adam(16)(), "cpu", options=CompileOptions(use_cache=False, threads=bad))


def test_default_is_every_cpu_we_may_run_on(request):
    import os

    sess = popxl.Session(_adam(16)(), "cpu", options=CompileOptions(use_cache=False))
    forced = request.config.getoption("--optc-threads")  # the suite run at a fixed count (tests/thread_option.py)
    assert sess._exe.threads == (forced if forced is not None else len(os.sched_getaffinity(0)))
