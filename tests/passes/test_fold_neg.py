"""fold_neg_into_scaled_add: no Neg left in the tensor-lr Adam; the exact negation forms fold, Sub(+0.0, x) does not."""
from __future__ import annotations

import numpy as np
import pytest

import custom_optimiser
from compiler import popxl
from compiler.ir import print_schedule
from compiler.popxl import ops
from pass_helpers import after, assert_same, check_passes, kinds, run
from tutorial_programs import TUTORIAL_TENSOR_LR_SCHEDULE

GOLDEN_AFTER = """\
Graph : Adam_subgraph(1)
  (%1, %2, %3, first_order=%4, second_order=%5, step=%6) -> () {
    Accumulate.104 (%4 [(2, 2) float16], %2 [(2, 2) float32]) -> (%7 [(2, 2) float16])
    Accumulate.105 (%5 [(2, 2) float32], %2 [(2, 2) float32]) -> (%8 [(2, 2) float32])
    AdamUpdater.106 (%4 [(2, 2) float16], %5 [(2, 2) float32], %6 [() float32]) -> (%9 [(2, 2) float16])
    ScaledAddLhsInplace.108 (%1 [(2, 2) float32], %9 [(2, 2) float16], %3 [() float32]) -> (%10 [(2, 2) float32])
  }"""


def test_golden_tensor_lr_adam_has_no_neg():
    ir, _ = custom_optimiser.build_ir()
    assert print_schedule(ir.core.graphs["Adam_subgraph(1)"]) == TUTORIAL_TENSOR_LR_SCHEDULE
    work = check_passes(lambda: custom_optimiser.build_ir()[0], ["fold_neg_into_scaled_add", "dce"])
    assert print_schedule(work.graphs["Adam_subgraph(1)"]) == GOLDEN_AFTER
    sa = work.graphs["Adam_subgraph(1)"].ops[-1]
    assert sa.attrs["negate_b"] is True and sa.input("b").name == ir.core.graphs["Adam_subgraph(1)"].inputs[2].name


def _scaled(form: str, x0: float = 1.0, lr0: float = 0.5):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.full(4, x0, np.float32), name="x")
            y = popxl.variable(np.array([1.0, -2.0, 0.0, 3.0], np.float32), name="y")
            lr = popxl.variable(np.asarray(lr0, np.float32), name="lr")
            if form == "neg":
                b = -lr
            elif form == "mul":
                b = lr * -1.0
            elif form == "mul_left":
                b = ops.mul(popxl.constant(np.asarray(-1.0, np.float32)), lr)
            elif form == "sub_negzero":
                b = popxl.constant(np.asarray(-0.0, np.float32)) - lr
            else:
                b = popxl.constant(np.asarray(0.0, np.float32)) - lr
            ops.scaled_add_(x, y, b=b)
        return ir
    return build


@pytest.mark.parametrize("form", ["neg", "mul", "mul_left", "sub_negzero"])
def test_exact_negations_fold(form):
    work = check_passes(_scaled(form), ["fold_neg_into_scaled_add", "dce"])
    assert kinds(work.main) == ["ScaledAddLhsInplace"]
    assert work.main.ops[0].attrs["negate_b"] is True


def test_sub_from_positive_zero_is_not_a_negation():
    # x = -0, lr = +0: x + (0 - lr)*y = -0 + (+0) = +0, but x - lr*y = -0 - (+0) = -0
    build = _scaled("sub_plus_zero", x0=-0.0, lr0=0.0)
    work = after(build(), ["fold_neg_into_scaled_add", "dce"])
    assert kinds(work.main) == ["Sub", "ScaledAddLhsInplace"]
    got = run(work)
    assert_same(run(build()), got)
    assert np.signbit(got[next(k for k in got if k.startswith("x%"))][0]) == np.False_


def test_constant_scales_become_attributes():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, 4).astype(np.float32), name="x")
            y = popxl.variable(np.full(4, 2.0, np.float16), name="y")
            lr = popxl.constant(np.asarray(0.1, np.float16))  # rounds like the tensor it replaces
            ops.scaled_add_(x, y, b=-lr)
            ops.scaled_add_(y, x, a=popxl.constant(np.asarray(2.0, np.float64)), b=popxl.constant(3.0))
        return ir

    work = check_passes(build, ["fold_neg_into_scaled_add", "dce"])
    a, b = work.main.ops
    assert [len(a.inputs), len(b.inputs)] == [2, 2]
    assert a.attrs["b"] == -float(np.float16(0.1)) and "negate_b" not in a.attrs
    assert (b.attrs["a"], b.attrs["b"]) == (2.0, 3.0)
