"""Matmul prologues in native code: bit-identical to the program compiled without fuse_matmul_prologue at
1, 2 and 3 threads, for random 2-d and batched shapes (broadcast batch dims too), 1-d operands, every
transpose layout, operand a and operand b, float16 operands, with an epilogue and an in-place update in the
same op; close to the interpreter."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions, optimise
from compiler.ops.matmul_epilogue import prologues
from compiler.popxl import ops
from compiler.popxl.ops._emit import emit_op, out
from session_helpers import run_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llvmcheck import check, program  # noqa: E402

OFF = ("fuse_matmul_prologue",)
THREADS = (1, 2, 3)
LAYOUTS = [(False, False), (True, False), (False, True), (True, True)]


def _normal(shape, seed, dt=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _slots(build) -> list[int]:
    return sorted(s for g in optimise(build(), CompileOptions()).graphs.values() for op in g.ops
                  if op.kind == "MatMulEpilogue" for s in prologues(op))


def _fused_equals_unfused(build, slots: list[int], threads=THREADS, runs: int = 1) -> dict[str, np.ndarray]:
    """`build` compiled without prologues (1 thread) and with them at every count in `threads`: every
    variable bit-identical. Returns the unfused variables."""
    assert _slots(build) == slots, "the program was meant to fuse prologues into these operands"
    want, _ = run_session(build(), "cpu", None, runs, CompileOptions(skip=OFF, use_cache=False, threads=1))
    for n in threads:
        got, _ = run_session(build(), "cpu", None, runs, CompileOptions(use_cache=False, threads=n))
        for k in want:
            check(f"{n} threads: variable {k}", got[k], want[k], exact=True)
    return want


def _scaled(sa, sb, ta, tb, on_b: bool, dt=np.float32, epilogue: bool = False):
    """op(tanh(a * s) + 1) @ op(b) (and b * 0.5 as b's prologue when on_b), optionally + bias -> gelu."""
    n = sb[-2] if tb else sb[-1]
    arrays = {"a": _normal(sa, 1, dt), "b": _normal(sb, 2, dt), "s": np.asarray(0.7, dt), "bias": _normal((n,), 3, dt)}

    def body(t):
        a = ops.tanh(t["a"] * t["s"]) + 1.0
        b = t["b"] * 0.5 if on_b else t["b"]
        y = out(emit_op("MatMul", {"a": a, "b": b}, {"transpose_a": ta, "transpose_b": tb}))
        return {"y": ops.gelu(y + t["bias"]) if epilogue else y}
    return program(arrays, body)


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "tn", "nt", "tt"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_shapes_every_layout(ta, tb, seed):
    rng = np.random.default_rng(200 + seed)
    # sizes off the micro-kernels' grid; seed 0: many rows, so many tiles shared among threads and b's
    # prologue cheap enough to fuse too
    m, k, n = (int(x) for x in rng.integers([1, 1, 1], [200, 200, 300]))
    m, on_b = (523, True) if seed == 0 else (m, False)
    build = _scaled((k, m) if ta else (m, k), (n, k) if tb else (k, n), ta, tb, on_b, epilogue=seed == 1)
    want = _fused_equals_unfused(build, [0, 1] if on_b else [0])
    ref, _ = run_session(build(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"], ref["out_y"], atol=1e-3)


def test_float16_operands_made_by_a_cast():
    """The plain (non-float32) micro-kernel path: a float32 operand cast to float16 in the prologue."""
    arrays = {"a": _normal((70, 45), 4), "b": _normal((45, 33), 5, np.float16)}

    def body(t):
        a = ops.cast(t["a"] * 0.25, popxl.float16)
        return {"y": out(emit_op("MatMul", {"a": a, "b": t["b"]}, {}))}
    want = _fused_equals_unfused(program(arrays, body), [0])
    ref, _ = run_session(program(arrays, body)(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"].astype(np.float32), ref["out_y"].astype(np.float32), atol=0.05)


@pytest.mark.parametrize("sx,sdy,sw", [((19, 301), (19, 133), (301, 133)), ((3, 19, 41), (3, 19, 37), (3, 41, 37))],
                         ids=["2-d", "batched"])
def test_a_prologue_with_an_in_place_update_in_the_epilogue(sx, sdy, sw):
    """w <- w - lr * tanh(op(x * s) @ dy) (per batch matrix) over three steps: the prologue reads x every
    step, the epilogue updates w exactly once per element however the tiles are shared out."""
    arrays = {"x": _normal(sx, 4), "dy": _normal(sdy, 5), "w": _normal(sw, 6), "s": np.asarray(0.3, np.float32)}

    def body(t):
        g = out(emit_op("MatMul", {"a": t["x"] * t["s"], "b": t["dy"]}, {"transpose_a": True}))
        ops.scaled_add_(t["w"], ops.tanh(g), b=-0.05)
        return None
    build = program(arrays, body)
    want = _fused_equals_unfused(build, [0], runs=3)
    ref, _ = run_session(build(), "interpreter", None, 3, CompileOptions(level=0))
    check("vs interpreter", want["w"], ref["w"], atol=1e-4)




def _batch_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Batch dims of a and b that broadcast together: 1 or 2 result dims, each operand keeping a dim,
    broadcasting it (1) or lacking it (leading dims only); at least one operand batched."""
    full = tuple(int(x) for x in rng.integers(2, 4, size=int(rng.integers(1, 3))))
    while True:
        shapes = []
        for _ in range(2):
            sh = tuple(d if rng.random() < 0.6 else 1 for d in full)
            shapes.append(sh[int(rng.integers(0, len(sh) + 1)):])
        if np.broadcast_shapes(*shapes) == full:
            return shapes[0], shapes[1]


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "tn", "nt", "tt"])
@pytest.mark.parametrize("seed", range(5))
def test_random_batched_shapes_every_layout(ta, tb, seed):
    """Batched operands with broadcast batch dims: a per tile of each batch matrix, b per change of its
    matrix along the tiles; sizes off the micro-kernels' grid, many tiles per batch matrix (shared among
    threads mid-matrix), both prologues cheap enough to fuse; seed 1 with a gelu epilogue."""
    rng = np.random.default_rng(300 + seed)
    ba, bb = _batch_shapes(rng)
    m, k, n = int(rng.integers(70, 160)), int(rng.integers(1, 90)), int(rng.integers(13, 90))
    sa = ba + ((k, m) if ta else (m, k))
    sb = bb + ((n, k) if tb else (k, n))
    build = _scaled(sa, sb, ta, tb, True, epilogue=seed == 1)
    want = _fused_equals_unfused(build, [0, 1])
    ref, _ = run_session(build(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"], ref["out_y"], atol=1e-3)


@pytest.mark.parametrize("case", ["a-batched", "b-batched", "b-outer-broadcast", "a-broadcast"])
def test_batched_shapes_pinned(case):
    """The batch layouts the random test may miss: only a batched (b's one matrix once per thread), only
    b batched (a broadcast, so recomputed per batch matrix, cheap at n = 40), b broadcast along the
    outer dim (its matrix changes at every batch step) and a broadcast along the inner dim."""
    sa, sb = {"a-batched": ((3, 2, 90, 33), (33, 40)), "b-batched": ((90, 33), (3, 33, 40)),
              "b-outer-broadcast": ((2, 3, 90, 33), (1, 3, 33, 40)),
              "a-broadcast": ((3, 1, 90, 33), (3, 2, 33, 40))}[case]
    _fused_equals_unfused(_scaled(sa, sb, False, False, True), [0, 1])


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "tn", "nt", "tt"])
def test_batched_float16_operands_made_by_a_cast(ta, tb):
    """The plain micro-kernel path with batched prologue buffers: a (2, ...) per tile, b (3, 1, ...)
    broadcast along the inner batch dim, both cast to float16 in their prologues."""
    arrays = {"a": _normal((2, 45, 70) if ta else (2, 70, 45), 4), "b": _normal((3, 1, 33, 45) if tb else (3, 1, 45, 33), 5)}

    def body(t):
        a = ops.cast(t["a"] * 0.25, popxl.float16)
        b = ops.cast(t["b"], popxl.float16)
        return {"y": out(emit_op("MatMul", {"a": a, "b": b}, {"transpose_a": ta, "transpose_b": tb}))}
    want = _fused_equals_unfused(program(arrays, body), [0, 1])
    ref, _ = run_session(program(arrays, body)(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"].astype(np.float32), ref["out_y"].astype(np.float32), atol=0.05)


@pytest.mark.parametrize("case", ["a-vector", "b-vector", "a-vector-batched-b", "b-vector-batched-a"])
def test_1d_operands(case):
    """A 1-d a is one row of the tile (computed once), a 1-d b one column (once per thread); with a
    batched other operand, a 1-d a is broadcast over the batch (n = 40: cheap enough to recompute)."""
    sa, sb, slots = {"a-vector": ((77,), (77, 40), [0]), "b-vector": ((300, 77), (77,), [0, 1]),
                     "a-vector-batched-b": ((33,), (3, 33, 40), [0]),
                     "b-vector-batched-a": ((2, 150, 33), (33,), [0, 1])}[case]
    build = _scaled(sa, sb, False, False, 1 in slots)
    want = _fused_equals_unfused(build, slots)
    ref, _ = run_session(build(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"], ref["out_y"], atol=1e-3)
