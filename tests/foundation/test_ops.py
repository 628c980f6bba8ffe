"""popxl.ops and Tensor operators against numpy, on the interpreter and compiled."""
from __future__ import annotations

import math

import numpy as np
import pytest
from session_helpers import assert_close, run_session

from compiler import popxl
from compiler.popxl import ops

rng = np.random.default_rng(1)
A = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal((3, 4)).astype(np.float32)
P = (np.abs(A) + 0.5).astype(np.float32)
W = rng.standard_normal((4, 5)).astype(np.float32)
BIAS = rng.standard_normal((4,)).astype(np.float32)


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


CASES = {
    "add": (lambda a, b, p, w, bias: a + b, lambda: A + B),
    "sub": (lambda a, b, p, w, bias: a - b, lambda: A - B),
    "mul": (lambda a, b, p, w, bias: a * b, lambda: A * B),
    "div": (lambda a, b, p, w, bias: a / p, lambda: A / P),
    "pow": (lambda a, b, p, w, bias: p ** 2.0, lambda: P ** 2),
    "rsub_scalar": (lambda a, b, p, w, bias: 1.0 - a, lambda: 1 - A),
    "neg": (lambda a, b, p, w, bias: -a, lambda: -A),
    "bias_add": (lambda a, b, p, w, bias: a + bias, lambda: A + BIAS),
    "sqrt": (lambda a, b, p, w, bias: ops.sqrt(p), lambda: np.sqrt(P)),
    "exp": (lambda a, b, p, w, bias: ops.exp(a), lambda: np.exp(A)),
    "log": (lambda a, b, p, w, bias: ops.log(p), lambda: np.log(P)),
    "tanh": (lambda a, b, p, w, bias: ops.tanh(a), lambda: np.tanh(A)),
    "relu": (lambda a, b, p, w, bias: ops.relu(a), lambda: np.maximum(A, 0)),
    "gelu": (lambda a, b, p, w, bias: ops.gelu(a), lambda: _gelu(A)),
    "softmax": (lambda a, b, p, w, bias: ops.softmax(a, axis=-1), lambda: _softmax(A)),
    "matmul": (lambda a, b, p, w, bias: a @ w, lambda: A @ W),
    "reshape": (lambda a, b, p, w, bias: a.reshape((4, 3)), lambda: A.reshape(4, 3)),
    "transpose": (lambda a, b, p, w, bias: a.T, lambda: A.T.copy()),
    "cast": (lambda a, b, p, w, bias: ops.cast(ops.cast(a, popxl.float16), popxl.float32),
             lambda: A.astype(np.float16).astype(np.float32)),
    "sum": (lambda a, b, p, w, bias: ops.sum(a, axis=1), lambda: A.sum(1)),
    "mean": (lambda a, b, p, w, bias: ops.mean(a, axis=0, keepdims=True), lambda: A.mean(0, keepdims=True)),
    "max": (lambda a, b, p, w, bias: ops.max(a), lambda: np.asarray(A.max())),
}


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_numpy(case, device):
    build, want_fn = CASES[case]
    want = np.asarray(want_fn(), np.float32)
    ir = popxl.Ir()
    with ir.main_graph:
        ts = [popxl.variable(x, name=n) for n, x in zip("abpw", (A, B, P, W))] + [popxl.variable(BIAS, name="bias")]
        out = popxl.variable(np.zeros(want.shape, np.float32), name="out")
        ops.var_updates.copy_var_update_(out, build(*ts))
    got, _ = run_session(ir, device)
    assert_close(case, got["out"], want)
