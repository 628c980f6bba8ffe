"""The functional Optimizer and the matmul epilogue: where the traced step itself makes a weight gradient
with a matmul (a linear layer's dW = x^T @ dy from the step's inputs), the update, the optimizer state and
the bias-corrected Adam's step counter (a single-element result) run in that matmul's epilogue and dW is
never written; bit-identical to the same optimizer compiled with the epilogue passes off, at 1-3 threads.
A gradient handed to the step as an array (the usual case: the model's backward ran elsewhere) is an
input of the compiled program: no matmul of the program makes it, so there is nothing to fuse into."""
from __future__ import annotations

import numpy as np
import pytest

import compiler.optim.numpy as jnp
from compiler.driver import CompileOptions
from compiler.optim import Optimizer
from tools.report import EPILOGUE_PASSES


class LinearLayerAdam(Optimizer):
    """Bias-corrected Adam; call_model makes the weight gradient of y = x @ w + b from the step's inputs."""

    def __init__(self, options: CompileOptions, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
        self.compile_options = options
        self.lr = np.asarray(lr, np.float32)
        self.b1, self.b2, self.eps = b1, b2, eps
        self.t = jnp.zeros((), jnp.float32)
        self.m, self.v = {}, {}

    def call_model(self, grads, params=None, loss=None, xT=None, dy=None):
        self.t = self.t + 1.0
        return {**grads, "w": xT @ dy}

    def call_param(self, key, grad, param=None, **kw):
        if key not in self.m:
            self.m[key] = jnp.zeros_like(param)
            self.v[key] = jnp.zeros_like(param)
        self.m[key] = self.b1 * self.m[key] + (1 - self.b1) * grad
        self.v[key] = self.b2 * self.v[key] + (1 - self.b2) * grad * grad
        mhat = self.m[key] / (1 - self.b1 ** self.t)
        vhat = self.v[key] / (1 - self.b2 ** self.t)
        return self.lr * mhat / (jnp.sqrt(vhat) + self.eps)


def _train(options: CompileOptions, steps: int = 3, eager: bool = False):
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((300, 70)).astype(np.float32), "b": np.zeros(70, np.float32)}
    opt = LinearLayerAdam(options)
    for _ in range(steps):
        xT = rng.standard_normal((300, 24)).astype(np.float32)
        dy = rng.standard_normal((24, 70)).astype(np.float32)
        grads = {"w": np.zeros_like(params["w"]), "b": dy.sum(0)}  # w's is made in the step
        (opt.eager if eager else opt)(params, grads, xT=xT, dy=dy)
    return params, opt


def _program(opt: Optimizer):
    """The optimised IR of the (last compiled) step."""
    return list(opt.__dict__["_kernels"].values())[-1].exe.ir


def test_the_update_runs_in_the_gradient_matmuls_epilogue():
    _, opt = _train(CompileOptions(threads=1))
    ir = _program(opt)
    fused = [op for g in ir.graphs.values() for op in g.ops if op.kind == "MatMulEpilogue"]
    assert len(fused) == 1, [op.kind for op in ir.main.ops]
    written = [v for v in (fused[0].inputs[i] for i in fused[0].modifies)]
    # the weight, its two moments and the single-element step counter
    assert sorted(v.shape for v in written) == [(), (300, 70), (300, 70), (300, 70)], written
    assert {"param[w]", "t"} <= {v.name for v in written}
    assert not [op for g in ir.graphs.values() for op in g.ops if op.kind == "MatMul"], "dW is still written"


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bit_identical_to_the_epilogue_passes_off(threads):
    want, off = _train(CompileOptions(threads=1, skip=EPILOGUE_PASSES))
    assert [op.kind for op in _program(off).main.ops].count("MatMul") == 1
    got, opt = _train(CompileOptions(threads=threads))
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    np.testing.assert_array_equal(opt.t, off.t)
    for k in want:
        np.testing.assert_array_equal(opt.m[k], off.m[k], err_msg=f"m[{k}]")
        np.testing.assert_array_equal(opt.v[k], off.v[k], err_msg=f"v[{k}]")


def test_close_to_the_hooks_run_by_numpy():
    got, opt = _train(CompileOptions())
    want, ref = _train(CompileOptions(), eager=True)
    assert float(opt.t) == float(ref.t) == 3.0
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=k)


def test_a_gradient_given_as_an_array_has_no_matmul_to_fuse_into():
    """The functional optimizer's usual step: every gradient is an input of the program."""
    class Adam(LinearLayerAdam):
        def call_model(self, grads, params=None, loss=None):
            self.t = self.t + 1.0
            return grads

    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((300, 70)).astype(np.float32)}
    opt = Adam(CompileOptions())
    opt(params, {"w": rng.standard_normal((300, 70)).astype(np.float32)})
    ir = _program(opt)
    assert not [op for op in ir.main.ops if op.kind in ("MatMul", "MatMulEpilogue")]
    assert [op.kind for op in ir.main.ops] == ["FusedKernel"]
