"""inline: small elementwise graphs next to elementwise ops are copied into the caller, by-ref semantics kept."""
from __future__ import annotations

import numpy as np
import pytest

import custom_optimiser
from compiler import popxl
from compiler.ir import print_schedule
from compiler.popxl import ops
from pass_helpers import after, check_level, check_passes, kinds
from passes.inline import refusal

BEFORE = """\
Graph : 
  () -> () {
    Tanh.102 (%1 [(4,) float32]) -> (%2 [(4,) float32])
    Call.103(build.step_subgraph(0)) (%3 [(4,) float32], %2 [(4,) float32]) -> (%4 [(4,) float32])
    Mul.104 (%4 [(4,) float32], %3 [(4,) float32]) -> (%5 [(4,) float32])
    CopyVarUpdate.105 (%1 [(4,) float32], %5 [(4,) float32]) -> (%6 [(4,) float32])
  }
Graph : build.step_subgraph(0)
  (%1, %2) -> (%4) {
    Accumulate.100 (%1 [(4,) float32], %2 [(4,) float32]) -> (%3 [(4,) float32])
    Exp.101 (%1 [(4,) float32]) -> (%4 [(4,) float32])
  }"""
AFTER = """\
Graph : 
  () -> () {
    Tanh.102 (%1 [(4,) float32]) -> (%2 [(4,) float32])
    Accumulate.106 (%3 [(4,) float32], %2 [(4,) float32]) -> (%4 [(4,) float32])
    Exp.107 (%4 [(4,) float32]) -> (%5 [(4,) float32])
    Mul.104 (%5 [(4,) float32], %3 [(4,) float32]) -> (%6 [(4,) float32])
    CopyVarUpdate.105 (%1 [(4,) float32], %6 [(4,) float32]) -> (%7 [(4,) float32])
  }"""


def build():
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.linspace(-1, 1, 4).astype(np.float32), name="w")
        x = popxl.variable(np.full(4, 0.5, np.float32), name="x")

        def step(t: popxl.TensorByRef, g: popxl.Tensor):
            ops.var_updates.accumulate_(t, g, f=0.5)
            return ops.exp(t)

        graph = ir.create_graph(step, w, x)
        y, = ops.call(graph, w, ops.tanh(x))
        ops.var_updates.copy_var_update_(x, y * w)  # w: the version the call wrote back
    return ir


def test_golden_inline_then_one_kernel():
    ir = build()
    assert "\n".join(print_schedule(g) for g in ir.core.graphs.values()) == BEFORE
    work = check_passes(build, ["inline"])
    assert "\n".join(print_schedule(g) for g in work.graphs.values()) == AFTER
    assert kinds(check_level(build, 2).main) == ["FusedKernel"]


def _call_with(body, n_args: int = 2, same_operand: bool = False):
    def make():
        ir = popxl.Ir()
        with ir.main_graph:
            w = popxl.variable(np.linspace(-1, 1, 4).astype(np.float32), name="w")
            x = popxl.variable(np.full(4, 0.5, np.float32), name="x")
            graph = ir.create_graph(body, w, x) if n_args == 2 else ir.create_graph(body, w)
            a = ops.tanh(x)
            args = (w, w) if same_operand else ((w, a) if n_args == 2 else (w,))
            outs = ops.call(graph, *args)
            y = (outs[0] if outs else w) * a
            ops.var_updates.copy_var_update_(x, y + w)
        return ir
    return make


def _writes_twice(t: popxl.TensorByRef, g: popxl.Tensor):
    ops.var_updates.accumulate_(t, g)
    ops.var_updates.accumulate_(t, ops.exp(t))
    return ops.tanh(t)


def _reads_only(t: popxl.TensorByRef, g: popxl.Tensor):
    return ops.tanh(t) * g


def _writes_by_value(t: popxl.TensorByRef, g: popxl.Tensor):
    ops.var_updates.accumulate_(g, t)  # the callee's own copy of g
    return g * t


def _returns_input(t: popxl.Tensor):
    return ops.tanh(t), t


def _not_elementwise(t: popxl.TensorByRef, g: popxl.Tensor):
    return ops.sum(t * g) * g


@pytest.mark.parametrize("body", [_writes_twice, _reads_only])
def test_by_reference_inputs_written_any_number_of_times(body):
    work = check_passes(_call_with(body), ["inline"])
    assert "Call" not in kinds(work.main) and len(work.graphs) == 1


@pytest.mark.parametrize("body, args, same, why", [
    (_writes_by_value, 2, False, "writes its by-value input 1"),
    (_writes_twice, 2, True, "by-reference input 0 aliases another operand"),
    (_returns_input, 1, False, "returns an input"),
    (_not_elementwise, 2, False, "is not a small elementwise graph"),
])
def test_calls_whose_semantics_inlining_would_change_stay_calls(body, args, same, why):
    make = _call_with(body, args, same)
    call = next(op for op in make().core.main.ops if op.kind == "Call")
    assert why in refusal(call)
    work = check_passes(make, ["inline"])
    assert "Call" in kinds(work.main)


def test_optimizer_calls_without_elementwise_neighbours_stay_calls():
    work = after(custom_optimiser.build_ir()[0], ["inline"])
    assert kinds(work.main) == ["Call", "Call"] and len(work.graphs) == 3
