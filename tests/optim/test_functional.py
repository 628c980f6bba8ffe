"""The functional Optimizer: every built-in against a numpy reference written here, compiled against the
same hooks run eagerly by numpy, and the tracing rules (what compiles again, what is state, errors)."""
from __future__ import annotations

import numpy as np
import pytest

import compiler.optim.numpy as jnp
from compiler.driver import CompileOptions
from compiler.optim import LAMB, SGD, Adam, Adamax, AdamW, Lion, Optimizer
from compiler.optim.optimizer import TracingError

SHAPES = {"w": (5, 7), "b": (7,), "s": ()}


def ref_adam(p, g, st, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    st["t"] = st.get("t", 0) + 1
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    mh, vh = st["m"] / (1 - b1 ** st["t"]), st["v"] / (1 - b2 ** st["t"])
    return p - lr * mh / (np.sqrt(vh) + eps) - lr * wd * p


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
    "sgd_momentum": (lambda: SGD(lr=1e-2, momentum=0.9), lambda p, g, st: ref_sgd(p, g, st, nesterov=False)),
    "sgd": (lambda: SGD(lr=1e-2), lambda p, g, st: ref_sgd(p, g, st, mom=0.0, nesterov=False)),
    "adamax": (lambda: Adamax(), ref_adamax),
    "lion": (lambda: Lion(lr=1e-3, weight_decay=0.1), ref_lion),
    "lamb": (lambda: LAMB(lr=1e-2), ref_lamb),
}


def _data(dtype, steps, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: np.asarray(rng.standard_normal(s), dtype) for k, s in SHAPES.items()}
    grads = [{k: np.asarray(rng.standard_normal(s), dtype) for k, s in SHAPES.items()} for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_builtin_against_numpy_reference(name):
    make, ref = CASES[name]
    opt = make()
    params, grads = _data(np.float32, 20)
    want = {k: v.astype(np.float64) for k, v in params.items()}
    states = {k: {} for k in SHAPES}
    arrays = dict(params)
    for g in grads:
        assert opt(params, g) is params
        for k in SHAPES:
            want[k] = ref(want[k], g[k].astype(np.float64), states[k])
    for k in SHAPES:
        assert params[k] is arrays[k]  # updated in place
        np.testing.assert_allclose(params[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert opt.compiles == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("name", ["adam", "lamb", "lion", "sgd_nesterov"])
def test_compiled_matches_the_same_hooks_run_by_numpy(name, dtype):
    """numpy's promotion and per-op rounding: float16 parameters and state, float32 time step."""
    make = CASES[name][0]
    compiled, eager = make(), make()
    p1, grads = _data(dtype, 8)
    p2 = {k: v.copy() for k, v in p1.items()}
    for g in grads:
        compiled(p1, g)
        eager.eager(p2, g)
    tol = 1e-6 if dtype == np.float32 else 1e-3
    for k in SHAPES:
        assert p1[k].dtype == dtype
        np.testing.assert_allclose(p1[k], p2[k], rtol=tol, atol=tol, err_msg=k)
    for n, v in vars(eager).items():  # the same state, in the same dtypes
        if isinstance(v, dict) and v:
            for k in v:
                assert getattr(compiled, n)[k].dtype == v[k].dtype
                np.testing.assert_allclose(getattr(compiled, n)[k], v[k], rtol=tol, atol=tol, err_msg=f"{n}[{k}]")


def test_state_is_created_lazily_and_updated_in_place():
    opt = Adam(lr=0.1)
    params, grads = _data(np.float32, 3)
    assert opt.m == {} and opt.t.shape == ()
    opt(params, grads[0])
    m, t = opt.m["w"], opt.t
    assert set(opt.m) == set(SHAPES) and float(t) == 1.0
    opt(params, grads[1])
    assert opt.m["w"] is m and opt.t is t and float(t) == 2.0  # the same arrays, written by the kernel


def test_array_hyperparameter_is_an_input_and_python_numbers_are_baked():
    class Scaled(Optimizer):
        def __init__(self, lr, momentum=0.0):
            self.lr = lr
            self.momentum = momentum

        def call_param(self, key, grad, param=None):
            return self.lr * grad

    opt = Scaled(np.asarray(0.5, np.float32))  # an array: a kernel input, so schedules never recompile
    p = {"w": np.ones(3, np.float32)}
    g = {"w": np.ones(3, np.float32)}
    for lr in (0.5, 0.25, 0.125):
        opt.lr[...] = lr
        opt(p, g)
    np.testing.assert_allclose(p["w"], 1 - 0.875)
    assert opt.compiles == 1
    opt(p, {"w": g["w"].astype(np.float32)})
    opt({"w": np.ones(4, np.float32)}, {"w": np.ones(4, np.float32)})
    assert opt.compiles == 2  # a new shape
    opt.momentum = 0.5  # a baked Python number changed: a new kernel
    opt(p, g)
    assert opt.compiles == 3


def test_first_sight_program_differs_from_the_steady_one():
    """A hook that does something else on first sight of a key gets its own kernel for the first call."""
    class Warm(Optimizer):
        def __init__(self):
            self.buf = {}

        def call_param(self, key, grad, param=None):
            if key not in self.buf:
                self.buf[key] = grad * 2  # first step: not zeros, a computed value
                return 0 * grad
            self.buf[key] = self.buf[key] + grad
            return self.buf[key]

    opt = Warm()
    p = {"w": np.zeros(2, np.float32)}
    for _ in range(3):
        opt(p, {"w": np.ones(2, np.float32)})
    np.testing.assert_allclose(opt.buf["w"], [4.0, 4.0])  # 2, 3, 4
    np.testing.assert_allclose(p["w"], [-7.0, -7.0])  # -0, -3, -4
    assert opt.compiles == 2


def test_state_in_attributes_zeros_and_loss_input():
    class Counting(Optimizer):
        """Counts steps in lazily created attribute state; scales by the loss (a kernel input)."""

        def call_model(self, grads, params=None, loss=None):
            if not hasattr(self, "n"):
                self.n = jnp.zeros((), jnp.float32)
            self.n = self.n + 1.0
            self.last_loss = jnp.zeros((), jnp.float32) + loss
            return grads

        def call_param(self, key, grad, param=None):
            return jnp.clip(grad * self.last_loss, -1.0, 1.0) / self.n

    opt = Counting()
    p = {"w": np.zeros(3, np.float32)}
    for loss in (0.5, 2.0):
        opt(p, {"w": np.array([0.5, -1.0, 2.0], np.float32)}, loss=loss)
    assert float(opt.n) == 2.0 and float(opt.last_loss) == 2.0
    np.testing.assert_allclose(p["w"], -(np.clip(np.array([0.5, -1, 2]) * 0.5, -1, 1)
                                        + np.clip(np.array([0.5, -1, 2]) * 2.0, -1, 1) / 2))
    assert opt.compiles == 1


def test_interpreter_and_compiled_agree():
    a, b = LAMB(lr=1e-2), LAMB(lr=1e-2)
    b.compile_options = CompileOptions(device="interpreter")
    p1, grads = _data(np.float32, 5)
    p2 = {k: v.copy() for k, v in p1.items()}
    for g in grads:
        a(p1, g)
        b(p2, g)
    for k in SHAPES:
        np.testing.assert_allclose(p1[k], p2[k], rtol=1e-6, atol=1e-7)


def test_errors():
    opt = Adam()
    with pytest.raises(KeyError, match="no gradient given"):
        opt({"w": np.ones(2, np.float32)}, {})
    with pytest.raises(ValueError, match="C-contiguous"):
        opt({"w": np.ones((2, 2), np.float32).T}, {"w": np.ones((2, 2), np.float32)})
    with pytest.raises(ValueError, match="has shape"):
        opt({"w": np.ones(2, np.float32)}, {"w": np.ones(3, np.float32)})

    class Counter(Optimizer):
        def __init__(self):
            self.step = 0

        def call_model(self, grads, params=None, loss=None):
            self.step += 1  # a Python number: would be baked, so the count would never advance
            return grads

        def call_param(self, key, grad, param=None):
            return grad

    with pytest.raises(TracingError, match=r"self.step changed from 0 to 1 while tracing.*np.asarray"):
        Counter()({"w": np.ones(2, np.float32)}, {"w": np.ones(2, np.float32)})

    class Forgot(Optimizer):
        def call_param(self, key, grad, param=None):
            grad * 2

    with pytest.raises(TracingError, match="returned None"):
        Forgot()({"w": np.ones(2, np.float32)}, {"w": np.ones(2, np.float32)})

    class Branchy(Optimizer):
        def call_param(self, key, grad, param=None):
            return grad if jnp.sum(grad) > 0 else -grad

    with pytest.raises(TypeError, match="use jnp.where"):
        Branchy()({"w": np.ones(2, np.float32)}, {"w": np.ones(2, np.float32)})


def test_the_traced_kernel_owns_no_buffer():
    """Parameters, gradients and state are caller-owned values of the kernel's IR (no data in it); a
    run that does not bind one is refused, naming it."""
    from compiler.ir import Ir

    params = {"w": np.ones((2, 3), np.float32)}
    opt = Adam()
    opt(params, {"w": np.ones((2, 3), np.float32)})
    entry = next(iter(opt.__dict__["_kernels"].values()))
    ir = entry.exe.ir
    assert isinstance(ir, Ir) and ir.variables == {} and sorted(ir.externals) == sorted(entry.vids)
    names = {ir.main.values[v].name for v in ir.externals}
    assert {"param[w]", "grad[w]"} <= names
    with pytest.raises(ValueError, match=r"no array bound to caller-owned buffer 'param\[w\]'"):
        entry.exe.run({}, {}, 1)
