"""compiler.optim.numpy: numpy on host values; on traced values, IR ops with numpy's promotion rules,
checked by running the same hook compiled and eagerly (numpy)."""
from __future__ import annotations

import numpy as np
import pytest

import compiler.optim.numpy as jnp
from compiler.optim import Optimizer


class Everything(Optimizer):
    """Uses every function of the namespace; stores intermediate results as state to compare dtypes."""

    def __init__(self):
        self.t = jnp.zeros((), jnp.float32)
        self.lr = np.asarray(0.01, np.float32)
        self.out = {}

    def call_model(self, grads, params=None, loss=None):
        self.t = self.t + 1.0
        return grads

    def call_param(self, key, grad, param=None):
        if key not in self.out:
            self.out[key] = jnp.ones_like(param)
        a = jnp.where(grad > 0, jnp.exp(-jnp.abs(grad)), jnp.log(jnp.abs(grad) + 1.0))
        b = jnp.clip(jnp.tanh(grad) * jnp.sign(param), -0.5, 0.5) + jnp.square(jnp.minimum(grad, 0.25))
        c = jnp.maximum(jnp.sqrt(jnp.abs(param)), jnp.power(jnp.abs(grad), 1.5)) - jnp.mean(grad) + jnp.max(param)
        n = jnp.norm(grad) + jnp.vdot(param, grad) * 0.0 - jnp.min(grad) + jnp.sum(grad * grad, keepdims=False)
        self.out[key] = self.out[key] * 0.5 + (a + b) / (1.0 + jnp.abs(c))  # stays in the state's dtype
        self.mixed = (grad * self.t).astype(np.float32)  # float16 * float32 0-d -> float32 (numpy 2)
        return self.lr * self.out[key] / (1.0 + n) + 1e-3 * jnp.where(param < grad, 1.0, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_every_function_compiled_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    shapes = {"w": (4, 9), "b": (9,)}
    p1 = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    p2 = {k: v.copy() for k, v in p1.items()}
    a, b = Everything(), Everything()
    for _ in range(4):
        g = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
        a(p1, g)
        b.eager(p2, g)
    tol = 2e-6 if dtype == np.float32 else 2e-3
    for k in shapes:
        np.testing.assert_allclose(p1[k], p2[k], rtol=tol, atol=tol, err_msg=k)
        assert a.out[k].dtype == b.out[k].dtype == dtype
        np.testing.assert_allclose(a.out[k], b.out[k], rtol=tol, atol=tol, err_msg=k)
    assert a.mixed.dtype == b.mixed.dtype == np.float32
    assert a.compiles == 1


@pytest.mark.parametrize("fn,args", [
    (jnp.sqrt, (np.array([1.0, 4.0]),)), (jnp.maximum, (np.array([1, 5]), 3)), (jnp.where, (np.array([True, False]), 1, 2)),
    (jnp.clip, (np.array([-2.0, 0.5, 3.0]), -1, 1)), (jnp.sum, (np.ones((2, 3)),)), (jnp.norm, (np.array([3.0, 4.0]),)),
    (jnp.zeros_like, (np.ones((2, 2), np.float16),)), (jnp.full, ((2,), 7.0)), (jnp.sign, (np.array([-3.0, 0.0, 2.0]),)),
])
def test_is_numpy_on_host_values(fn, args):
    got = fn(*args)
    want = getattr(np, fn.__name__, None) or np.linalg.norm
    want = want(*args) if fn is not jnp.full else np.full(*args, dtype=np.float32)
    np.testing.assert_array_equal(got, want)
    assert np.asarray(got).dtype == np.asarray(want).dtype


def test_creation_of_traced_state_outside_tracing_is_an_error():
    from compiler.ops.builder import Builder
    from compiler.optim.traced import Traced

    x = Traced(Builder().main.external("x", (2,), np.float32))
    with pytest.raises(RuntimeError, match="only exists while an Optimizer is traced"):
        jnp.zeros_like(x)
    assert (x * np.float16(2)).dtype == np.float32 and (x.astype(np.float16) * 2.0).dtype == np.float16
    assert (x > 0).dtype == np.bool_ and (x.astype(np.int32) / 2).dtype == np.float64
