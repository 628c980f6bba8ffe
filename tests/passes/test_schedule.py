"""schedule: data order, in_sequence constraints, read-before-overwrite (also through by-ref calls), cycles."""
from __future__ import annotations

import numpy as np
import pytest

import custom_optimiser
from compiler import popxl
from compiler.ir import print_schedule
from compiler.popxl import ops
from pass_helpers import after, assert_same, kinds, run
from passes.schedule import ScheduleError, schedule_graph

SHUFFLED = """\
Graph : 
  () -> () {
    CopyVarUpdate.104 (%1 [(3,) float32], %2 [(3,) float32]) -> (%3 [(3,) float32])
    Add.103 (%4 [(3,) float32], %5 [(3,) float32]) -> (%2 [(3,) float32])
    Tanh.102 (%1 [(3,) float32]) -> (%5 [(3,) float32])
    Accumulate.101 (%6 [(3,) float32], %1 [(3,) float32]) -> (%7 [(3,) float32])
    Exp.100 (%6 [(3,) float32]) -> (%4 [(3,) float32])
  }"""
SCHEDULED = """\
Graph : 
  () -> () {
    Tanh.102 (%1 [(3,) float32]) -> (%2 [(3,) float32])
    Exp.100 (%3 [(3,) float32]) -> (%4 [(3,) float32])
    Add.103 (%4 [(3,) float32], %2 [(3,) float32]) -> (%5 [(3,) float32])
    Accumulate.101 (%3 [(3,) float32], %1 [(3,) float32]) -> (%6 [(3,) float32])
    CopyVarUpdate.104 (%1 [(3,) float32], %5 [(3,) float32]) -> (%7 [(3,) float32])
  }"""


def _hazards():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32), name="x")
        o = popxl.variable(np.full(3, 2.0, np.float32), name="o")
        y = ops.exp(x)  # reads x before Accumulate overwrites it
        ops.var_updates.accumulate_(x, o)  # reads o before CopyVarUpdate overwrites it
        z = ops.tanh(o)
        ops.var_updates.copy_var_update_(o, y + z)
    return ir


def test_golden_reversed_order_is_repaired():
    ir = _hazards()
    ir.core.main.ops.reverse()
    assert print_schedule(ir.core.main) == SHUFFLED
    assert schedule_graph(ir.core.main) is True
    assert print_schedule(ir.core.main) == SCHEDULED
    assert_same(run(_hazards()), run(ir))


def test_a_valid_schedule_is_left_alone():
    ir, _ = custom_optimiser.build_ir()
    before = {gid: list(g.ops) for gid, g in ir.core.graphs.items()}
    work = after(ir, ["schedule"])
    assert {gid: [op.id for op in g.ops] for gid, g in work.graphs.items()} == \
           {gid: [op.id for op in ops_] for gid, ops_ in before.items()}


def test_in_sequence_constraints_are_kept_against_program_order():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32), name="x")
        with popxl.in_sequence(True):
            a = ops.exp(x)
            b = ops.tanh(x)
        ops.var_updates.copy_var_update_(x, a + b)
    g = ir.core.main
    exp_, tanh_ = g.ops[0], g.ops[1]
    assert (exp_, tanh_) in g.constraints
    g.ops[0], g.ops[1] = tanh_, exp_
    schedule_graph(g)
    assert kinds(g)[:2] == ["Exp", "Tanh"]


def test_reader_runs_before_a_call_that_writes_its_tensor_by_reference():
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.ones(4, np.float32), name="w")
        out = popxl.variable(np.zeros(4, np.float32), name="out")

        def step(t: popxl.TensorByRef):
            ops.var_updates.accumulate_(t, ops.exp(t))

        g = ir.create_graph(step, w)
        y = ops.tanh(w)  # reads w version 0
        ops.call(g, w)  # writes w version 1
        ops.var_updates.copy_var_update_(out, y)
    want = run(ir)
    m = ir.core.main
    m.ops.insert(0, m.ops.pop(1))  # the call first: Tanh would see the update
    schedule_graph(m)
    assert kinds(m) == ["Tanh", "Call", "CopyVarUpdate"]
    assert_same(want, run(ir))


def test_contradicting_constraints_name_every_op_on_the_cycle():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32))
        ops.tanh(ops.exp(x))
    exp_, tanh_ = ir.core.main.ops
    ir.core.main.constraints.append((tanh_, exp_))
    with pytest.raises(ScheduleError) as e:
        schedule_graph(ir.core.main)
    msg = str(e.value)
    assert exp_.label in msg and tanh_.label in msg and "in_sequence" in msg and "produces" in msg
