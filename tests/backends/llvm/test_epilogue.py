"""MatMulEpilogue in native code: bit-identical to the unfused compiled program (MatMul, then its
elementwise reader) at 1, 2 and 3 threads, for random shapes, every transpose layout, batched and 1-D
operands, in-place (optimizer-like) epilogues and the MNIST training step; close to the interpreter."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions, optimise
from compiler.popxl import ops
from compiler.popxl.ops._emit import emit_op, out
from session_helpers import run_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llvmcheck import check, program  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
OFF = ("fuse_matmul_epilogue", "inline_weight_updates", "fuse_matmul_prologue")
THREADS = (1, 2, 3)


def _normal(shape, seed, dt=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _kinds(build) -> list[str]:
    return [op.kind for g in optimise(build(), CompileOptions()).graphs.values() for op in g.ops]


def _fused_equals_unfused(build, threads=THREADS, runs: int = 1, inputs=None) -> dict[str, np.ndarray]:
    """Run `build` compiled without the epilogue passes (1 thread) and with them at every count in
    `threads`: every variable and stream output bit-identical. Returns the unfused variables."""
    assert "MatMulEpilogue" in _kinds(build), "the program was meant to have a fused matmul"
    ir = build()
    want, want_outs = run_session(ir, "cpu", inputs(ir) if inputs else None, runs,
                                  CompileOptions(skip=OFF, use_cache=False, threads=1))
    for n in threads:
        ir = build()
        got, outs = run_session(ir, "cpu", inputs(ir) if inputs else None, runs,
                                CompileOptions(use_cache=False, threads=n))
        for k in want:
            check(f"{n} threads: variable {k}", got[k], want[k], exact=True)
        for r, (a, b) in enumerate(zip(want_outs, outs)):
            for k in a:
                check(f"{n} threads: run {r} {k}", b[k], a[k], exact=True)
    return want


def _bias_gelu(sa, sb, ta, tb, bias_shape, dt=np.float32):
    arrays = {"a": _normal(sa, 1, dt), "b": _normal(sb, 2, dt), "bias": _normal(bias_shape, 3, dt)}

    def body(t):
        y = out(emit_op("MatMul", {"a": t["a"], "b": t["b"]}, {"transpose_a": ta, "transpose_b": tb}))
        return {"y": ops.gelu(y + t["bias"])}
    return program(arrays, body)


LAYOUTS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "tn", "nt", "tt"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_shapes_every_layout(ta, tb, seed):
    rng = np.random.default_rng(100 + seed)
    # sizes off the micro-kernels' 4-row / 64-column / 16-deep grid; big enough for several tiles
    m, k, n = (int(x) for x in rng.integers([1, 1, 1], [300, 200, 600]))
    m = m if seed else 523  # one case with many tiles (parallel) and ragged edges
    build = _bias_gelu((k, m) if ta else (m, k), (n, k) if tb else (k, n), ta, tb, (n,))
    want = _fused_equals_unfused(build)
    ref, _ = run_session(build(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"], ref["out_y"], atol=1e-4)


# k shorter than a vector with B transposed (path "ntp": B packed, i-k-j micro-kernels) and results
# narrower than the micro-kernel or with a column edge (the packed edge columns), at tile-grid edges
SHORT_OR_NARROW = [(128, 10, 512, False, True), (8, 10, 512, False, True), (523, 3, 130, False, True),
                   (77, 15, 65, False, True), (5, 1, 17, False, True), (128, 512, 10, False, False),
                   (512, 128, 10, True, False), (301, 40, 74, False, False), (9, 33, 1, True, False),
                   (130, 16, 63, False, True), (70, 20, 63, False, False), (33, 7, 100, True, False),
                   (12, 1100, 10, False, False)]  # the last: too deep for the packed edge (scalar loop)


@pytest.mark.parametrize("m,k,n,ta,tb", SHORT_OR_NARROW, ids=lambda v: str(v))
def test_short_depth_and_narrow_results(m, k, n, ta, tb):
    from compiler.backends.llvm.matmul import plan
    build = _bias_gelu((k, m) if ta else (m, k), (n, k) if tb else (k, n), ta, tb, (n,))
    mm = [op for op in optimise(build(), CompileOptions(skip=OFF)).main.ops if op.kind == "MatMul"]
    assert plan(mm[0]).path == ("ntp" if tb and k < 16 else "nt" if tb else "nn")
    want = _fused_equals_unfused(build)
    ref, _ = run_session(build(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"], ref["out_y"], atol=1e-4)


def test_short_depth_transposed_b_made_by_a_prologue():
    """Path "ntp" after operand b's prologue: b * 0.5 computed into its (N, K) stack buffer, then packed."""
    from compiler.ops.matmul_epilogue import prologues
    arrays = {"a": _normal((523, 10), 7), "b": _normal((130, 10), 8), "bias": _normal((130,), 9)}

    def body(t):
        y = out(emit_op("MatMul", {"a": t["a"], "b": t["b"] * 0.5}, {"transpose_a": False, "transpose_b": True}))
        return {"y": ops.gelu(y + t["bias"])}
    build = program(arrays, body)
    fused = [op for op in optimise(build(), CompileOptions()).main.ops if op.kind == "MatMulEpilogue"]
    assert 1 in prologues(fused[0]), "b's producer was meant to be fused as a prologue"
    want = _fused_equals_unfused(build)
    ref, _ = run_session(build(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"], ref["out_y"], atol=1e-4)


def test_a_batched_transposed_b_keeps_the_dot_products():
    """Packing op(B) once per call is only for a B shared by every batch matrix."""
    from compiler.backends.llvm.matmul import plan
    build = _bias_gelu((3, 20, 10), (3, 40, 10), False, True, (40,))
    mm = [op for op in optimise(build(), CompileOptions(skip=OFF)).main.ops if op.kind == "MatMul"]
    assert plan(mm[0]).path == "nt"
    want = _fused_equals_unfused(build)
    ref, _ = run_session(build(), "interpreter", None, 1, CompileOptions(level=0))
    check("vs interpreter", want["out_y"], ref["out_y"], atol=1e-4)


@pytest.mark.parametrize("sa,sb,bias", [((3, 37, 64), (64, 270), (37, 270)), ((2, 1, 40, 33), (3, 33, 50), (50,)),
                                        ((70,), (70, 90), (90,)), ((20, 70), (70,), (20,))],
                         ids=["batched", "broadcast-batch", "vector-a", "vector-b"])
def test_batched_and_vector_operands(sa, sb, bias):
    _fused_equals_unfused(_bias_gelu(sa, sb, False, False, bias))


def test_float16_matmul_epilogue():
    _fused_equals_unfused(_bias_gelu((65, 128), (128, 96), False, False, (96,), np.float16))


def _sgd_on_gradient(m, k, n, ta, tb, steps_lr=0.05):
    """w <- w - lr * tanh(op(x) @ op(dy)) in place: an update that reads the matmul's result and writes a
    weight the matmul does not read (the optimizer-in-the-epilogue case)."""
    arrays = {"x": _normal((k, m) if ta else (m, k), 4), "dy": _normal((n, k) if tb else (k, n), 5),
              "w": _normal((m, n), 6), "lr": np.asarray(steps_lr, np.float32)}

    def body(t):
        g = out(emit_op("MatMul", {"a": t["x"], "b": t["dy"]}, {"transpose_a": ta, "transpose_b": tb}))
        ops.scaled_add_(t["w"], ops.tanh(g), b=t["lr"] * -1.0)
        return None
    return program(arrays, body)


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "tn", "nt", "tt"])
def test_in_place_update_in_the_epilogue(ta, tb):
    """Each weight element is updated exactly once however the tiles are shared out (three steps: an
    element updated twice in a step would drift from the unfused program)."""
    build = _sgd_on_gradient(301, 19, 133, ta, tb)
    ir = optimise(build(), CompileOptions())
    fused = [op for op in ir.main.ops if op.kind == "MatMulEpilogue"]
    assert fused and fused[0].modifies, "the update should write the weight from the matmul's epilogue"
    want = _fused_equals_unfused(build, runs=3)
    ref, _ = run_session(build(), "interpreter", None, 3, CompileOptions(level=0))
    check("vs interpreter", want["w"], ref["w"], atol=1e-4)


def test_a_single_element_result_is_stored_once_after_the_tiles():
    """w <- w - 0.01 * tanh(x^T @ dy) * t and t <- t + 1 in one epilogue, over three steps and tiles shared
    among threads: every tile reads the step's t, and t grows by exactly one per step."""
    arrays = {"x": _normal((19, 301), 4), "dy": _normal((19, 133), 5), "w": _normal((301, 133), 6),
              "t": np.asarray(1.0, np.float32), "one": np.asarray(1.0, np.float32)}

    def body(t):
        g = out(emit_op("MatMul", {"a": t["x"], "b": t["dy"]}, {"transpose_a": True}))
        ops.scaled_add_(t["w"], ops.tanh(g) * t["t"], b=-0.01)
        ops.var_updates.accumulate_(t["t"], t["one"])
        return None
    build = program(arrays, body)
    (op,) = [o for o in optimise(build(), CompileOptions()).main.ops if o.kind == "MatMulEpilogue"]
    assert sorted(op.inputs[i].name for i in op.modifies) == ["t", "w"]
    want = _fused_equals_unfused(build, runs=3)
    assert want["t"] == 4.0
    ref, _ = run_session(build(), "interpreter", None, 3, CompileOptions(level=0))
    check("vs interpreter", want["w"], ref["w"], atol=1e-4)


def _mnist(bs: int):
    """A builder of the tutorial's training step (fp32 Adam state) and the inputs of one step."""
    sys.path.insert(0, str(ROOT / "examples"))
    import mnist_adam

    streams: dict[int, list] = {}

    def build():
        np.random.seed(0)
        ir, ss, _, _ = mnist_adam.train_ir(bs, 1e-3, popxl.float32)
        streams[id(ir)] = ss
        return ir

    def inputs(ir):
        rng = np.random.default_rng(7)
        img, labels = streams[id(ir)]
        return {img: rng.standard_normal((bs, 28, 28)).astype(np.float32),
                labels: rng.integers(0, 10, bs).astype(np.int32)}
    return build, inputs


def test_mnist_step_bit_identical_and_no_weight_gradient_written():
    build, inputs = _mnist(8)
    ir = optimise(build(), CompileOptions())
    weights = {v.storage for v in ir.main.values.values() if v.kind == "variable" and v.name.endswith("weight")}
    updated = {op.inputs[i].storage for op in ir.main.ops if op.kind == "MatMulEpilogue" for i in op.modifies}
    assert weights and weights <= updated, "every weight should be updated inside its gradient's matmul"
    shapes = {v.shape for v in ir.main.values.values() if v.storage in weights}
    written = [v for g in ir.graphs.values() for op in g.ops if op.kind == "MatMul" for v in op.outputs
               if v.shape in shapes]
    assert not written, f"weight-gradient matmuls still write their result: {written}"
    _fused_equals_unfused(build, runs=2, inputs=inputs)


def test_mnist_step_matches_the_interpreter():
    build, inputs = _mnist(8)
    want = _fused_equals_unfused(build, threads=(2,), runs=2, inputs=inputs)
    ir = build()
    ref, _ = run_session(ir, "interpreter", inputs(ir), 2, CompileOptions(level=0))
    for k in ref:
        check(f"variable {k}", want[k], ref[k], atol=1e-4)
