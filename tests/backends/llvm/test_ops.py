"""The ops that are not elementwise, compiled, against the interpreter: matmul (blocked micro-kernels,
edges, batches, transposes), reductions, softmax, the cross-entropy gradient, data movement, host
streams over several iterations, sparse accumulation."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops
from compiler.popxl.ops._emit import emit_op, out, outputs
from session_helpers import run_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llvmcheck import compare, np_dtype, program  # noqa: E402

FLOATS = [np.float32, np.float16, np.float64, "bfloat16"]


def _normal(shape, dt, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np_dtype(dt))


def _eps(dt) -> float:
    return {"float16": 2**-10, "bfloat16": 2**-7, "float64": 2**-52}.get(np_dtype(dt).name, 2**-23)


def _run_both(build, level=2, threads=None):
    ref, _ = run_session(build(), "interpreter", options=CompileOptions(level=0))
    got, _ = run_session(build(), "cpu", options=CompileOptions(level=level, use_cache=False, threads=threads))
    return ref, got


def _within(got, want, bound, dt, name):
    """|got - want| <= bound (the accumulated rounding error allowed) + one ulp of the output dtype."""
    g, w = got.astype(np.float64), want.astype(np.float64)
    allowed = bound + 2 * _eps(dt) * np.abs(w) + 1e-30
    bad = np.abs(g - w) > allowed
    assert not bad.any(), f"{name}: {bad.sum()} elements off, e.g. got {g[bad][:3]}, want {w[bad][:3]}"


MM_SHAPES = [((1, 1), (1, 1)), ((4, 64), (64, 64)), ((5, 37), (37, 19)), ((9, 130), (130, 67)),
             ((8, 784), (784, 512)), ((2, 3, 5, 7), (7, 4)), ((3, 5, 7), (3, 7, 2)), ((7,), (7, 3)), ((4, 6), (6,))]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("sa,sb", MM_SHAPES, ids=[f"{a}@{b}" for a, b in MM_SHAPES])
def test_matmul(sa, sb, dt):
    a, b = _normal(sa, dt, 1), _normal(sb, dt, 2)
    ref, got = _run_both(program({"a": a, "b": b}, lambda t: {"y": t["a"] @ t["b"]}))
    k = sa[-1]
    bound = 4 * k * _eps(np.float64 if np_dtype(dt) == np.float64 else np.float32) * (
        np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))
    _within(got["out_y"], ref["out_y"], bound, dt, f"{sa} @ {sb}")


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("dt", [np.float32, np.float16])
@pytest.mark.parametrize("m,k,n", [(5, 37, 19), (128, 33, 12)])
def test_matmul_transpose_flags(m, k, n, ta, tb, dt):
    a = _normal((k, m) if ta else (m, k), dt, 1)
    b = _normal((n, k) if tb else (k, n), dt, 2)
    body = lambda t: {"y": out(emit_op("MatMul", {"a": t["a"], "b": t["b"]},  # noqa: E731
                                       {"transpose_a": ta, "transpose_b": tb}))}
    ref, got = _run_both(program({"a": a, "b": b}, body))
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    bound = 4 * k * 2**-23 * (np.abs(a.T if ta else a).astype(np.float64) @ np.abs(b.T if tb else b).astype(np.float64))
    _within(ref["out_y"], want.astype(ref["out_y"].dtype), bound, dt, "reference")
    _within(got["out_y"], ref["out_y"], bound, dt, "compiled")


REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare"]


@pytest.mark.parametrize("dt", FLOATS + [np.int32, np.int8, np.uint8])
@pytest.mark.parametrize("axes,keep", [(None, False), ((0, 2), True), ((-1,), False)])
@pytest.mark.parametrize("kind", REDUCE)
def test_reductions(kind, axes, keep, dt):
    shape = (3, 17, 5)
    if np_dtype(dt).kind in "iu":
        info = np.iinfo(np_dtype(dt))
        x = np.random.default_rng(3).integers(max(info.min, -100), min(info.max, 100), shape).astype(dt)
    else:
        x = _normal(shape, dt, 3)
    attrs = {"axes": axes, "keepdims": keep}
    ref, got = _run_both(program({"x": x}, lambda t: {"y": out(emit_op(kind, {"x": t["x"]}, attrs))}))
    g, w = got["out_y"], ref["out_y"]
    if kind in ("ReduceMax", "ReduceMin") or np_dtype(dt).kind in "iu":
        np.testing.assert_array_equal(g.astype(np.float64), w.astype(np.float64))
    else:  # float32 accumulation in another order than numpy's pairwise sum
        xs = np.abs(x.astype(np.float64)) ** (2 if kind == "ReduceSumSquare" else 1)
        ax = tuple(range(3)) if axes is None else tuple(a % 3 for a in axes)
        total = np.mean if kind == "ReduceMean" else np.sum
        bound = total(xs, axis=ax, keepdims=keep) * 40 * _eps(np.float32 if np_dtype(dt) != np.float64 else dt)
        if np_dtype(dt).name == "bfloat16":
            # the reference adds in bfloat16 (an error of its own), we in float32 and round once: so ours is
            # held to the exact sum, within float32 accumulation and the one bfloat16 rounding (_within)
            exact = total(x.astype(np.float64) ** (2 if kind == "ReduceSumSquare" else 1), axis=ax, keepdims=keep)
            _within(g, exact, bound, dt, f"{kind} vs the exact sum")
            bound = total(xs, axis=ax, keepdims=keep) * 20 * _eps(dt)  # ours vs the bfloat16-accumulating reference
        _within(g, w, bound, dt, kind)


@pytest.mark.filterwarnings("ignore:invalid value")  # an all -inf row is NaN in both
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("shape,axis", [((8, 10), -1), ((3, 4, 5), 0), ((2, 9, 3), 1), ((1, 1), -1), ((128, 10), 1)])
def test_softmax(shape, axis, dt):
    x = _normal(shape, dt, 4, scale=8.0)
    x.reshape(-1)[::11] = -np.inf  # a masked entry
    atol = {"float32": 2e-6, "float64": 1e-15}.get(np_dtype(dt).name)  # else the dtype's own tolerance
    compare(program({"x": x}, lambda t: {"y": ops.softmax(t["x"], axis=axis)}), atol=atol)


@pytest.mark.parametrize("dt", [np.float32, np.float16])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore", [None, 3])
@pytest.mark.parametrize("label_dt,grad_input", [(np.int32, False), (np.uint8, True)])
def test_nll_with_softmax_grad(dt, reduction, ignore, label_dt, grad_input):
    probs = np.random.default_rng(5).dirichlet(np.ones(10), size=(6, 4)).astype(dt)
    labels = np.random.default_rng(6).integers(0, 10, (6, 4)).astype(label_dt)
    labels[0, :2] = 3
    arrays = {"p": probs, "l": labels, "g": np.asarray(0.5, dt)}

    def body(t):
        lg = t["g"] if grad_input else 2.0
        loss, dx = outputs(emit_op("NlllWithSoftmaxGradDirect", {"probs": t["p"], "labels": t["l"]} | (
            {"loss_grad": lg} if grad_input else {}), {"reduction": reduction, "ignore_index": ignore} | (
            {} if grad_input else {"loss_grad": lg})))
        return {"loss": loss, "dx": dx}
    compare(program(arrays, body), atol=1e-6 if dt == np.float32 else 2e-3)


@pytest.mark.parametrize("dt", [np.float32, np.float16, np.int32, np.bool_, "bfloat16"])
@pytest.mark.parametrize("shape,perm", [((3, 5), None), ((2, 3, 4), (1, 0, 2)), ((2, 3, 4), (2, 0, 1)),
                                        ((4, 1, 6), (2, 1, 0)), ((0, 3), None)])
def test_transpose_and_reshape(shape, perm, dt):
    x = (np.arange(int(np.prod(shape))).reshape(shape) % 7).astype(np_dtype(dt))

    def body(t):
        y = ops.transpose(t["x"], perm)
        return {"t": y, "r": ops.reshape(y, (-1,) if 0 not in shape else (0,))}
    compare(program({"x": x}, body), exact=True)


def _streams_program(dt):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            s_in = popxl.h2d_stream((4, 3), dt, "xs")
            s_out = popxl.d2h_stream((4, 3), dt, "ys")
            s_sum = popxl.d2h_stream((3,), dt, "colsum")
            acc = popxl.variable(np.zeros((4, 3), dt), name="acc")
            x = ops.host_load(s_in)
            ops.var_updates.copy_var_update_(acc, acc + x)
            ops.host_store(s_out, acc + acc)
            ops.host_store(s_sum, ops.sum(x, axis=0))
        ir.num_host_transfers = 3
        ir._test_streams = s_in
        return ir
    return build


@pytest.mark.parametrize("dt", [np.float32, np.int32])
def test_host_streams_over_iterations(dt):
    data = (np.arange(36).reshape(3, 4, 3) - 17).astype(dt)
    compare(_streams_program(dt), exact=True, runs=2, inputs=lambda ir: {ir._test_streams: data.copy()})


@pytest.mark.parametrize("dt", [np.float32, np.float16])
@pytest.mark.parametrize("axis", [0, 1])
def test_sparse_accumulate(dt, axis):
    t = _normal((6, 5), dt, 7)
    n = t.shape[axis]
    idx = np.array([1, 0, 1, -1, n - 2, 1], np.int32)  # duplicates accumulate; -1 is the last row
    x = _normal(tuple(len(idx) if d == axis else s for d, s in enumerate(t.shape)), dt, 8)

    def body(a):
        ops.var_updates.sparse_accumulate_(a["t"], a["x"], a["i"], axis=axis, f=a["f"])
    compare(program({"t": t, "x": x, "i": idx, "f": np.asarray(0.5, dt)}, body), exact=True)


def test_init_and_lamb_square():
    x = _normal((300,), np.float32, 9)

    def body(t):
        z = ops.init((4, 3), popxl.float32)
        return {"z": z + 1.0, "sq": ops.lamb_square(t["x"])}
    compare(program({"x": x}, body), atol=1e-4)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,k,n", [(128, 784, 512), (32, 512, 784), (206, 301, 137)])
def test_large_matmuls_split_rows_over_two_threads_bit_for_bit(m, k, n, ta, tb):
    """float32 matmuls above PARALLEL_MIN_MACS compute their top and bottom rows on two threads; each
    element is summed exactly as by one thread, so the results are identical, and within the bound of
    the interpreter."""
    from compiler.backends.llvm.thresholds import PARALLEL_MIN_MACS

    assert m * k * n >= PARALLEL_MIN_MACS
    a = _normal((k, m) if ta else (m, k), np.float32, 1)
    b = _normal((n, k) if tb else (k, n), np.float32, 2)
    body = lambda t: {"y": out(emit_op("MatMul", {"a": t["a"], "b": t["b"]},  # noqa: E731
                                       {"transpose_a": ta, "transpose_b": tb}))}
    ref, two = _run_both(program({"a": a, "b": b}, body), threads=2)
    _, one = _run_both(program({"a": a, "b": b}, body), threads=1)
    np.testing.assert_array_equal(two["out_y"], one["out_y"])
    bound = 4 * k * 2**-23 * (np.abs(a.T if ta else a).astype(np.float64) @ np.abs(b.T if tb else b).astype(np.float64))
    _within(two["out_y"], ref["out_y"], bound, np.float32, "two threads")
