"""constant_fold, cse, dce: golden schedules, and the in-place cases where each must hold back."""
from __future__ import annotations

import numpy as np

from compiler import popxl
from compiler.ir import print_schedule
from compiler.popxl import ops
from pass_helpers import after, check_passes, kinds

BEFORE = """\
Graph : 
  () -> () {
    Mul.100 (%1 [(3,) float32], %2 [() float32]) -> (%3 [(3,) float32])
    Exp.101 (%4 [(3,) float32]) -> (%5 [(3,) float32])
    Exp.102 (%4 [(3,) float32]) -> (%6 [(3,) float32])
    Tanh.103 (%4 [(3,) float32]) -> (%7 [(3,) float32])
    Add.104 (%5 [(3,) float32], %6 [(3,) float32]) -> (%8 [(3,) float32])
    Add.105 (%8 [(3,) float32], %3 [(3,) float32]) -> (%9 [(3,) float32])
    Accumulate.106 (%4 [(3,) float32], %9 [(3,) float32]) -> (%10 [(3,) float32])
  }"""
AFTER = """\
Graph : 
  () -> () {
    Exp.101 (%1 [(3,) float32]) -> (%2 [(3,) float32])
    Add.104 (%2 [(3,) float32], %2 [(3,) float32]) -> (%3 [(3,) float32])
    Add.105 (%3 [(3,) float32], %4 [(3,) float32]) -> (%5 [(3,) float32])
    Accumulate.106 (%1 [(3,) float32], %5 [(3,) float32]) -> (%6 [(3,) float32])
  }"""


def _fold_cse_dce():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.linspace(0, 1, 3).astype(np.float32), name="x")
        c = popxl.constant(np.full(3, 2.0, np.float32)) * 3.0  # constants only: folded
        a = ops.exp(x)
        b = ops.exp(x)  # the same as a: merged
        ops.tanh(x)  # unread: removed
        ops.var_updates.accumulate_(x, a + b + c)
    return ir


def test_golden_fold_cse_dce():
    assert print_schedule(_fold_cse_dce().core.main) == BEFORE
    work = check_passes(_fold_cse_dce, ["constant_fold", "cse", "dce"])
    assert print_schedule(work.main) == AFTER
    folded = work.main.ops[2].inputs[1]
    assert folded.kind == "constant" and work.constants[folded.id].tolist() == [6.0, 6.0, 6.0]


def test_a_folded_value_that_is_later_updated_in_place_stays_an_op():
    def build():  # folding would make the update write into constant data shared by every run
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.ones(3, np.float32), name="x")
            t = popxl.constant(np.full(3, 2.0, np.float32)) * 3.0
            ops.var_updates.accumulate_(t, x)
            ops.var_updates.copy_var_update_(x, t)
        return ir

    work = check_passes(build, ["constant_fold", "dce"], runs=3)
    assert kinds(work.main) == ["Mul", "Accumulate", "CopyVarUpdate"]


def test_cse_keeps_a_copy_that_is_written_in_place():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.full(3, 0.5, np.float32), name="x")
            o = popxl.variable(np.zeros(3, np.float32), name="o")
            a = ops.tanh(x)
            b = ops.tanh(x)
            ops.var_updates.accumulate_(b, x)  # b changes; a must not
            ops.var_updates.copy_var_update_(o, a * b)
        return ir

    work = check_passes(build, ["cse", "dce"])
    assert kinds(work.main).count("Tanh") == 2


def test_dce_drops_unobservable_in_place_writes_but_keeps_variables():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.full(3, 0.5, np.float32), name="x")
            t = ops.exp(x)
            ops.var_updates.accumulate_(t, x)  # only t sees this, and nothing reads t afterwards
            ops.var_updates.accumulate_(x, x)  # a variable: always observable
        return ir

    work = check_passes(build, ["dce"])
    assert kinds(work.main) == ["Accumulate"] and work.main.ops[0].inputs[0].kind == "variable"


def test_dce_drops_call_outputs_nobody_reads_and_graphs_nobody_calls():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            w = popxl.variable(np.full(3, 0.5, np.float32), name="w")

            def step(t: popxl.TensorByRef):
                ops.var_updates.accumulate_(t, ops.tanh(t))
                return ops.exp(t), ops.sqrt(t)

            g = ir.create_graph(step, w)
            _, root = ops.call(g, w)
            ops.var_updates.accumulate_(w, root)
            ir.create_graph(step, w)  # never called
        return ir

    ir = build()
    assert len(ir.core.graphs) == 3
    work = check_passes(build, ["dce"])
    assert len(work.graphs) == 2
    sub = work.graphs[work.main.ops[0].called.id]
    assert kinds(sub) == ["Tanh", "Accumulate", "Sqrt"] and len(sub.outputs) == 1
    assert len(work.main.ops[0].outputs) == 1 and len(work.main.ops[0].attrs["out_specs"]) == 1
    assert after(work, ["dce"]).graphs.keys() == work.graphs.keys()
