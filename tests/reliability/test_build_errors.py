"""Building a program wrongly raises a Python exception that says what, where and what to do: op errors
name the tensors, their shapes and dtypes and the user's source line; hyper-parameter combinations
PopART rejects are refused at build time with PopXL's wording (or clearer). Run in a child process."""
from __future__ import annotations

import pytest

from .conftest import run_cases

PRELUDE = """
import numpy as np
from compiler import popxl
from compiler.popxl import ops
VU = ops.var_updates
ir = popxl.Ir()
g = ir.main_graph
g.__enter__()
a = popxl.variable(np.ones((3, 4), np.float32), name="a")
b = popxl.variable(np.ones((5,), np.float32), name="b")
h = popxl.variable(np.ones((3, 4), np.float16), name="h")
i = popxl.variable(np.ones((3, 4), np.int32), name="i")
s = popxl.variable(np.float32(0.5), name="s")
"""

# case -> (code, exception type, substrings the message must contain); "@" stands for "(at <case NAME>:1)"
SHAPES = {
    "broadcast": ("a + b", "OpError", ["Add", "'a'", "'b'", "(3, 4)", "(5,)", "float32", "do not broadcast", "@"]),
    "dtype": ("a + h", "OpError", ["'a'", "'h'", "float32", "float16", "ops.cast", "@"]),
    "matmul": ("a @ a", "OpError", ["MatMul", "contraction", "(3, 4)", "'a'", "@"]),
    "var update bool": ("VU.accumulate_(i > i, i > i)", "OpError", ["numeric", "bool", "@"]),
    "var update shape": ("VU.accumulate_(a, b)", "OpError", ["'a'", "'b'", "(3, 4)", "(5,)", "do not broadcast", "@"]),
    "copy dtype": ("VU.copy_var_update_(a, h)", "OpError", ["'a'", "'h'", "float16", "@"]),
    "adam m v": ("VU.adam_updater(a, b, weight_decay=0.0)", "OpError", ["'a'", "'b'", "(5,)", "@"]),
    "step not scalar": ("VU.adam_updater(a, a, time_step=a, beta1=0.9, beta2=0.9, weight_decay=0.0)", "OpError",
                        ["step", "scalar", "(3, 4)", "@"]),
    "unary int": ("ops.tanh(i)", "OpError", ["Tanh", "'i'", "int32", "@"]),
    "reshape": ("a.reshape((5,))", "OpError", ["Reshape", "12 elements", "(5,)", "'a'", "@"]),
    "transpose": ("ops.transpose(a, (0, 0))", "OpError", ["permutation (0, 0)", "'a'", "@"]),
    "reduce axis": ("ops.sum(a, axis=3)", "OpError", ["axis 3", "rank 2", "'a'", "@"]),
    "where cond": ("ops.where(a > a, a, h)", "OpError", ["Where", "float32", "float16", "@"]),
    "matmul scalar": ("s @ s", "OpError", ["MatMul", "rank >= 1", "'s'", "@"]),
    "nll labels": ("ops.nll_loss_with_softmax_grad(a, a)", "OpError", ["labels", "shape", "(3, 4)", "@"]),
    "not a tensor": ("ops.tanh(np.ones(3))", "TypeError", ["Tanh", "popxl Tensor", "ndarray"]),
    "host_load of a variable": ("ops.host_load(a, 'x')", "TypeError", ["h2d_stream", "Variable"]),
}
HYPER = {
    "scaled_add tensor a, float b": ("ops.scaled_add_(a, a, a=s, b=0.5)", "OpError",
                                     ["Unsupported tensor scale0 with non-tensor scale1", "@"]),
    "scaled_add tensor b, a != 1": ("ops.scaled_add(a, a, a=0.5, b=s)", "OpError",
                                    ["Unsupported scale0 0.5 with tensor scale1", "@"]),
    "scaled_add on int": ("ops.scaled_add_(i, i)", "OpError", ["floating-point", "'i'"]),
    "bias correction without betas": ("VU.adam_updater(a, a, weight=a, time_step=s, weight_decay=0.0)", "ValueError",
                                      ["Bias correction requires both beta1 and beta2 to not be None."]),
    "lamb bias without beta2": ("VU.lamb_updater(a, a, time_step=s, beta1=0.9, weight_decay=0.0)", "ValueError",
                                ["Bias correction requires both beta1 and beta2"]),
    "adamax without time_step": ("VU.adamax_updater(a, a, weight_decay=0.0)", "ValueError",
                                 ["AdaMax requires time_step to not be None."]),
    "weight decay without weight": ("VU.adam_updater(a, a, weight_decay=0.1)", "ValueError",
                                    ["Weight decay requires weight to not be None."]),
    "accumulate f=0.0": ("VU.accumulate_(a, a, f=0.0)", "OpError", ["f=0.0", "accumulator_zero_"]),
    "in_sequence(None)": ("popxl.in_sequence(None).__enter__()", "TypeError", ["`None` cannot be passed to in_sequence"]),
}
GRAPHS = {
    "op outside a graph": ("g.__exit__(None, None, None)\ntry:\n    ops.tanh(a)\nfinally:\n    g.__enter__()",
                           "RuntimeError", ["no current graph", "ir.main_graph"]),
    "variable in a subgraph": ("ir.create_graph(lambda t: popxl.variable(np.ones(3)), a)", "ValueError",
                               ["only be created in the main graph"]),
    "tensor captured by a subgraph": ("ir.create_graph(lambda t: t + a, a)", "ValueError",
                                      ["'a'", "belongs to graph", "Pass it into the subgraph"]),
    "call with a wrong spec": ("ops.call(ir.create_graph(lambda t: t * 2.0, a), b)", "ValueError",
                               ["expects", "(3, 4)", "(5,)"]),
    "call with too many inputs": ("ops.call(ir.create_graph(lambda t: t * 2.0, a), a, a)", "ValueError",
                                  ["2 inputs given", "takes 1"]),
    "unknown dtype": ("popxl.variable(np.ones(3), 'float8')", "ValueError", ["float8"]),
    "string data": ("popxl.variable(np.array(['x']))", "TypeError", ["no equivalent dtype", "float32"]),
}
ALL = {**SHAPES, **HYPER, **GRAPHS}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return run_cases(PRELUDE, {k: code for k, (code, _, _) in ALL.items()})


@pytest.mark.parametrize("case", list(ALL))
def test_bad_build_raises_a_clear_python_error(case, outcomes):
    _, exc, parts = ALL[case]
    got = outcomes[case]
    assert got.status == "raised" and got.exc == exc, f"{case}: {got}"
    want = [p.replace("@", f"(at <case {case}>:1)") for p in parts]
    missing = [p for p in want if p not in got.msg]
    assert not missing, f"{case}: message lacks {missing}:\n{got.msg}"
