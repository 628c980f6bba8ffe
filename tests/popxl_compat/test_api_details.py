"""Small PopXL behaviours users see: Tensor.diag, the reshape/transpose error words, how isfinite and
nll_loss_with_softmax_grad are built, float labels, addons.cross_entropy at the top level, the torch table."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import addons, popxl
from compiler.popxl import ops


def _run(ir, device: str = "cpu") -> list[np.ndarray]:
    with popxl.Session(ir, device) as s:
        res = s.run()
    return [res[d] for d in ir._test_streams]


def _program(fn, *arrays):
    ir = popxl.Ir()
    with ir.main_graph:
        outs = fn(*[popxl.variable(a, downcast=False) for a in arrays])
        ir._test_streams = []
        for t in outs if isinstance(outs, tuple) else (outs,):
            d = popxl.d2h_stream(t.shape, t.dtype)
            ops.host_store(d, t)
            ir._test_streams.append(d)
    return ir


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (1, 1)])
@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_diag_is_the_main_diagonal(shape, device):
    x = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
    (got,) = _run(_program(lambda v: v.diag(), x), device)
    np.testing.assert_array_equal(got, np.diag(x))


@pytest.mark.parametrize("shape", [(10,), (2, 2, 2), ()])
def test_diag_needs_a_2d_tensor(shape):
    with popxl.Ir().main_graph:
        v = popxl.variable(np.zeros(shape, np.float32))
        with pytest.raises(ValueError, match="2-d"):
            v.diag()


def test_reshape_and_transpose_error_words():
    with popxl.Ir().main_graph:
        a = popxl.variable(np.ones((1, 2, 3), np.float32))
        with pytest.raises(ValueError, match=r"Invalid shape value in reshape: \(-1, 0, 1\)"):
            a.reshape((-1, 0, 1))
        with pytest.raises(ValueError, match=r"Invalid shape value in reshape: \(6, -2, 1\)"):
            a.reshape((6, -2, 1))
        with pytest.raises(ValueError, match=r"Values in permutation must be less than the rank 3"):
            ops.transpose(a, (5, 4, 3))


def test_isfinite_is_built_as_popxl_builds_it():
    ir = _program(ops.isfinite, np.array([1.0, np.inf, -np.inf, np.nan, 0.0], np.float32))
    kinds = [op.kind for op in ir.main_graph._g.ops if op.kind != "HostStore"]
    assert sorted(kinds) == ["And", "IsInf", "IsNaN", "Not", "Not"]
    np.testing.assert_array_equal(_run(ir)[0], [True, False, False, False, True])


def test_nll_with_softmax_grad_takes_float_labels_and_a_loss_grad_constant():
    probs = np.random.default_rng(0).dirichlet(np.ones(10), 4).astype(np.float32)
    int_labels = np.array([1, 3, 0, 9], np.int32)
    float_labels = np.array([1.7, 3.2, 0.4, 9.9], np.float32)  # truncated toward zero, as a cast
    results = []
    for labels in (int_labels, float_labels):
        ir = _program(lambda p, lab: ops.nll_loss_with_softmax_grad(p, lab, loss_grad=2), probs, labels)
        g = ir.main_graph
        assert len(g.tensors) == 5 + 2  # probs, labels, the loss_grad constant, loss, dx (+ 2 stream tensors)
        assert [c.name for c in g.constants] == ["loss_grad"]
        results.append(_run(ir, "cpu") + _run(ir, "interpreter"))
    want_loss = -np.mean(np.log(probs[np.arange(4), int_labels] + 1e-7))
    for got in results:
        np.testing.assert_allclose(got[0], want_loss, rtol=1e-6)
        np.testing.assert_allclose(got[2], want_loss, rtol=1e-6)
        np.testing.assert_allclose(got[1], got[3], rtol=1e-6)
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_addons_exports_cross_entropy_at_the_top_level():
    assert addons.cross_entropy is addons.ops.cross_entropy
    assert addons.cross_entropy_with_grad is addons.ops.cross_entropy_with_grad


def test_torch_dtype_table_has_numpy_counterparts_only():
    torch = pytest.importorskip("torch")
    from compiler.popxl.dtypes import _NP_TO_POPXL, _PT_TO_POPXL

    assert torch.float32 in _PT_TO_POPXL and torch.bfloat16 not in _PT_TO_POPXL
    for t, d in _PT_TO_POPXL.items():
        assert _NP_TO_POPXL[torch.empty((), dtype=t).numpy().dtype] is d
    assert popxl.dtype.as_dtype(torch.bfloat16) is popxl.bfloat16
