"""Every gradient rule against central finite differences (float64), then compiled (cpu) against the interpreter."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.ops import OPS
from compiler.ops.collectives import KINDS as COLLECTIVES
from compiler.popxl import ops
from compiler.popxl.ops._emit import emit_op, out

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gradcheck import check, grad_program, run  # noqa: E402


def _op(kind: str, attrs: dict | None = None, **ins: popxl.Tensor) -> popxl.Tensor:
    return out(emit_op(kind, ins, attrs))


def _layer_graph(x, w):
    """A subgraph (built once per Ir) computing gelu(x @ w), called from the differentiated graph."""
    cache = x.ir.core.meta.setdefault("test_layer", {})
    if "g" not in cache:
        cache["g"] = x.ir.create_graph(lambda a, b: ops.gelu(a @ b), x.spec, w.spec)
    return cache["g"]


# name: (fn, input shapes, positive inputs, op kinds whose rule it checks)
CASES = {
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)], False, ["MatMul"]),
    "matmul_batched": (lambda a, b: a @ b, [(2, 3, 4), (4, 2)], False, ["MatMul"]),
    "matmul_ta": (lambda a, b: _op("MatMul", {"transpose_a": True}, a=a, b=b), [(4, 3), (4, 2)], False, ["MatMul"]),
    "matmul_tb": (lambda a, b: _op("MatMul", {"transpose_b": True}, a=a, b=b), [(3, 4), (2, 4)], False, ["MatMul"]),
    "matmul_tab": (lambda a, b: _op("MatMul", {"transpose_a": True, "transpose_b": True}, a=a, b=b),
                   [(4, 3), (2, 4)], False, ["MatMul"]),
    "add_broadcast": (lambda a, b: a + b, [(3, 4), (4,)], False, ["Add"]),
    "sub_broadcast": (lambda a, b: a - b, [(3, 4), (3, 1)], False, ["Sub"]),
    "mul_broadcast": (lambda a, b: a * b, [(2, 3), (3,)], False, ["Mul"]),
    "div_broadcast": (lambda a, b: a / b, [(2, 3), (2, 1)], True, ["Div"]),
    "pow": (lambda a, b: ops.pow(a, b), [(2, 3), (2, 3)], True, ["Pow"]),
    "pow_const": (lambda a: a ** 3.0, [(4,)], False, ["Pow"]),
    "maximum": (lambda a, b: ops.maximum(a, b), [(3, 4), (4,)], False, ["Max"]),
    "minimum": (lambda a, b: ops.minimum(a, b), [(3, 4), (3, 4)], False, ["Min"]),
    "where": (lambda a, b: ops.where(ops.greater(a, b), a * b, b), [(3, 4), (4,)], False, ["Where"]),
    "fma": (lambda a, b, c: _op("Fma", a=a, b=b, c=c), [(2, 3), (3,), (2, 3)], False, ["Fma"]),
    "scaled_add": (lambda a, b: ops.scaled_add(a, b, 0.5, -2.0), [(2, 3), (2, 3)], False, ["ScaledAdd"]),
    "neg": (lambda a: -a, [(3,)], False, ["Neg"]),
    "identity": (lambda a: ops.identity(a) * a, [(3,)], False, ["Identity"]),
    "sign_floor": (lambda a: ops.sign(a) * a + ops.floor(a), [(4,)], False, ["Sign", "Floor"]),
    "abs": (lambda a: ops.abs(a), [(3, 4)], False, ["Abs"]),
    "square": (lambda a: _op("Square", x=a), [(3, 4)], False, ["Square"]),
    "reciprocal": (lambda a: _op("Reciprocal", x=a), [(3, 4)], True, ["Reciprocal"]),
    "clip": (lambda a: ops.clip(a, -0.5, 0.7), [(4, 5)], False, ["Clip"]),
    "reshape": (lambda a: a.reshape((6, 2)) * a.reshape((6, 2)), [(3, 4)], False, ["Reshape"]),
    "transpose": (lambda a: a.T @ a, [(3, 2)], False, ["Transpose"]),
    # PopXL's view variants (computed as copies here) differentiate as their out-of-place kinds
    "views": (lambda a: ops.transpose_(a) @ ops.reshape_(a * a, (3, 2)) + ops.detach_(a)[0:2] * 0.0, [(3, 2)], False,
              ["TransposeInplace", "ReshapeInplace", "DetachInplace"]),
    "slice": (lambda a: a[1:, ::-2] * ops.slice_(a, start=[0, 1], stop=[2, 3]), [(3, 4)], False,
              ["Slice", "SliceInplace"]),
    "concat": (lambda a, b: ops.concat([a, b * b], axis=1) * ops.concat_([b, a], axis=1), [(2, 3), (2, 3)],
               False, ["Concat", "ConcatInplace"]),
    "detach": (lambda a: ops.detach(a) * 0.0 + a * a, [(3,)], False, ["Detach"]),  # no gradient through detach
    "swish": (lambda a: ops.swish(a), [(3, 4)], False, ["Swish"]),
    "ceil": (lambda a: ops.ceil(a) + a * a, [(3, 4)], False, ["Ceil"]),  # piecewise constant: no gradient
    "transpose_perm": (lambda a: ops.transpose(a, (2, 0, 1)) * 2.0, [(2, 3, 4)], False, ["Transpose"]),
    "gelu": (lambda a: ops.gelu(a), [(3, 5)], False, ["Gelu"]),
    "geluerf": (lambda a: ops.geluerf(a), [(3, 5)], False, ["GeluErf"]),
    "relu": (lambda a: ops.relu(a), [(3, 5)], False, ["Relu"]),
    "tanh": (lambda a: ops.tanh(a), [(3, 5)], False, ["Tanh"]),
    "exp": (lambda a: ops.exp(a), [(3, 5)], False, ["Exp"]),
    "log": (lambda a: ops.log(a), [(3, 5)], True, ["Log"]),
    "sqrt": (lambda a: ops.sqrt(a), [(4,)], True, ["Sqrt"]),
    "sigmoid": (lambda a: ops.sigmoid(a), [(4,)], False, ["Sigmoid"]),
    "softmax": (lambda a: ops.softmax(a, axis=-1), [(3, 5)], False, ["Softmax"]),
    "softmax_axis0": (lambda a: ops.softmax(a, axis=0), [(3, 5)], False, ["Softmax"]),
    "sum": (lambda a: ops.sum(a, axis=1, keepdims=True) * a, [(3, 4)], False, ["ReduceSum"]),
    "sum_all": (lambda a: ops.sum(a) * a, [(2, 3)], False, ["ReduceSum"]),
    "mean": (lambda a: ops.mean(a, axis=0), [(3, 4)], False, ["ReduceMean"]),
    "max": (lambda a: ops.max(a, axis=1), [(3, 4)], False, ["ReduceMax"]),
    "min": (lambda a: ops.min(a, axis=(0, 2), keepdims=True), [(2, 3, 2)], False, ["ReduceMin"]),
    "sumsquare": (lambda a: ops.sumsquare(a, axis=0), [(3, 4)], False, ["ReduceSumSquare"]),
    "l1": (lambda a: ops.l1(a, axis=1), [(3, 4)], False, ["ReduceL1"]),
    "l2": (lambda a: ops.l2(a, axis=0, keepdims=True) * a, [(3, 4)], False, ["ReduceL2"]),
    "logsum": (lambda a: ops.logsum(a, axis=(0, 2)), [(2, 3, 2)], True, ["ReduceLogSum"]),
    "logsumexp": (lambda a: ops.logsumexp(a * 4.0, axis=-1), [(3, 4)], False, ["ReduceLogSumExp"]),
    "prod": (lambda a: ops.prod(a, axis=1), [(3, 4)], False, ["ReduceProd"]),
    "nll": (lambda a: ops.nll_loss(ops.softmax(a, axis=-1), popxl.constant(np.array([1, 0, 3], np.int32)),
                                   ignore_index=0), [(3, 4)], False, ["Nll"]),
    "nll_none_logprob": (lambda a: ops.nll_loss(a, popxl.constant(np.array([2.0, 1.0], np.float32)),
                                                reduction="none", log_prob=True) * 3.0, [(2, 3)], False, ["Nll"]),
    "sin_cos": (lambda a: ops.sin(a) * ops.cos(a * 2.0), [(3, 4)], False, ["Sin", "Cos"]),
    "cast": (lambda a: ops.cast(ops.cast(a, popxl.float32), popxl.float64) + a, [(3,)], False, ["Cast"]),
    "reuse": (lambda a: a * a + ops.exp(a), [(3,)], False, []),
    "mlp": (lambda x, w1, b1, w2: ops.gelu(x @ w1 + b1) @ w2, [(2, 3), (3, 4), (4,), (4, 2)], False, []),
    "call": (lambda x, w: ops.tanh(ops.call(_layer_graph(x, w), x, w)[0]) * x, [(2, 3), (3, 3)], False, ["Call"]),
    "call_twice": (lambda x, w: ops.call(_layer_graph(x, w), ops.call(_layer_graph(x, w), x, w)[0], w)[0],
                   [(2, 3), (3, 3)], False, ["Call"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_finite_differences(case):
    fn, shapes, positive, _ = CASES[case]
    if case == "cast":  # a float32 round trip: finite differences need a step float32 resolves
        check(fn, shapes, positive, eps=1e-2)
    else:
        check(fn, shapes, positive)


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_detach_stops_the_gradient(device):
    """d/da (detach(a) * a) is detach(a) = a: nothing flows back through the detached factor."""
    ir = grad_program(lambda a: ops.detach(a) * a, [(5,)])
    res = run(ir, device)
    names = {ir.core.main.values[v].name: v for v in ir.core.variables}
    want = ir.core.variables[names["w"]] * ir.core.variables[names["x0"]]
    np.testing.assert_allclose(res["g0"], want, rtol=1e-12)


def test_every_float_rule_is_checked():
    """Every op kind that has a gradient rule appears in a case above."""
    checked = {k for *_, kinds in CASES.values() for k in kinds}
    # collectives need several replicas: their gradients are checked in tests/dataparallel
    with_rule = {k for k, d in OPS.items() if d.grad is not None and not k.endswith("Grad") and k not in COLLECTIVES}
    assert with_rule <= checked, f"rules without a finite-difference case: {sorted(with_rule - checked)}"
