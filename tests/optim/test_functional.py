"""The functional Optimizer: every built-in optimizer against a numpy reference written here, tracing rules."""
from __future__ import annotations

import numpy as np
import pytest

import compiler.optim.numpy as jnp
from compiler.optim import LAMB, SGD, Adam, Adamax, AdamW, Lion, Optimizer

rng = np.random.default_rng(0)


def ref_adam(p, g, st, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    st["t"] = st.get("t", 0) + 1
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    mh, vh = st["m"] / (1 - b1 ** st["t"]), st["v"] / (1 - b2 ** st["t"])
    return p - (lr * mh / (np.sqrt(vh) + eps) + lr * wd * p)


def ref_sgd(p, g, st, lr=1e-2, mom=0.9, nesterov=True):
    st["b"] = mom * st.get("b", 0) + g
    return p - lr * (g + mom * st["b"] if nesterov else st["b"])


def ref_adamax(p, g, st, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8):
    st["t"] = st.get("t", 0) + 1
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["u"] = np.maximum(b2 * st.get("u", 0), np.abs(g))
    return p - lr / (1 - b1 ** st["t"]) * st["m"] / (st["u"] + eps)


def ref_lion(p, g, st, lr=1e-3, b1=0.9, b2=0.99, wd=0.1):
    m = st.get("m", 0)
    upd = np.sign(b1 * m + (1 - b1) * g)
    st["m"] = b2 * m + (1 - b2) * g
    return p - lr * (upd + wd * p)


def ref_lamb(p, g, st, lr=1e-2, b1=0.9, b2=0.999, eps=1e-6, wd=0.01):
    st["t"] = st.get("t", 0) + 1
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    r = st["m"] / (1 - b1 ** st["t"]) / (np.sqrt(st["v"] / (1 - b2 ** st["t"])) + eps) + wd * p
    wn, rn = np.linalg.norm(p), np.linalg.norm(r)
    return p - lr * (wn / rn if wn > 0 and rn > 0 else 1.0) * r


CASES = {
    "adam": (lambda: Adam(lr=1e-2), ref_adam),
    "adamw": (lambda: AdamW(lr=1e-2, weight_decay=0.1), lambda p, g, st: ref_adam(p, g, st, wd=0.1)),
    "sgd_nesterov": (lambda: SGD(lr=1e-2, momentum=0.9, nesterov=True), ref_sgd),
    "adamax": (lambda: Adamax(), ref_adamax),
    "lion": (lambda: Lion(lr=1e-3, weight_decay=0.1), ref_lion),
    "lamb": (lambda: LAMB(lr=1e-2), ref_lamb),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_numpy_reference(name):
    make, ref = CASES[name]
    opt = make()
    shapes = {"w": (5, 7), "b": (7,)}
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    want = {k: v.astype(np.float64) for k, v in params.items()}
    states = {k: {} for k in shapes}
    for _ in range(20):
        grads = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        opt(params, grads)
        for k in shapes:
            want[k] = ref(want[k], grads[k].astype(np.float64), states[k])
    for k in shapes:
        np.testing.assert_allclose(params[k], want[k], rtol=2e-4, atol=2e-5, err_msg=k)
    assert opt.compiles == 1


def test_array_hyperparameter_is_an_input_and_shapes_retrace():
    class Scaled(Optimizer):
        def __init__(self):
            self.lr = np.asarray(0.5, np.float32)  # an array: a kernel input, so schedules never recompile

        def call_param(self, key, grad, param=None):
            return self.lr * grad

    opt = Scaled()
    p = {"w": np.ones(3, np.float32)}
    opt(p, {"w": np.ones(3, np.float32)})
    opt.lr[...] = 0.25
    opt(p, {"w": np.ones(3, np.float32)})
    np.testing.assert_allclose(p["w"], 1 - 0.5 - 0.25)
    assert opt.compiles == 1
    p2 = {"w": np.ones(4, np.float32)}
    opt(p2, {"w": np.ones(4, np.float32)})
    assert opt.compiles == 2  # a new shape compiles again


def test_errors():
    opt = Adam()
    with pytest.raises(KeyError, match="no gradient given"):
        opt({"w": np.ones(2, np.float32)}, {})
    with pytest.raises(ValueError, match="C-contiguous"):
        opt({"w": np.ones((2, 2), np.float32).T}, {"w": np.ones((2, 2), np.float32)})


def test_jnp_is_numpy_on_arrays():
    x = np.array([-1.0, 4.0])
    np.testing.assert_array_equal(jnp.sqrt(jnp.abs(x)), np.sqrt(np.abs(x)))
    np.testing.assert_array_equal(jnp.where(x > 0, x, 0.0), np.where(x > 0, x, 0.0))
    assert jnp.zeros_like(x).shape == (2,)
