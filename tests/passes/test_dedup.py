"""dedup_subgraphs: structurally identical graphs merge without cache=True; anything that differs keeps them apart."""
from __future__ import annotations

import numpy as np
import pytest

import custom_optimiser
import mnist_adam
from compiler import popxl
from compiler.ir import print_schedule
from compiler.ir.hashing import digest, graph_key
from compiler.popxl import ops
from pass_helpers import after, assert_same, run
from tutorial_programs import adam_per_variable


def test_mnist_adam_graphs_collapse_from_eight_to_five():
    ir = adam_per_variable()
    assert len(ir.core.graphs) == 1 + 8
    work = after(ir, ["dedup_subgraphs"])
    assert len(work.graphs) == 1 + 5  # one per distinct shape: 784x512, 512, 512x512, 512x10, 10
    callees = [op.called.id for op in work.main.ops]
    assert len(set(callees)) == 5 and callees[1] == callees[3] == callees[5] and callees[2] == callees[4]
    assert set(work.merged_graphs) == {op.called.id for op in ir.core.main.ops} - set(callees)
    assert_same(run(adam_per_variable(), runs=1), run(work, runs=1))


GOLDEN_MAIN = """\
Graph : 
  () -> () {
    Call.104(Adam_subgraph(0)) (%1 [(3,) float32], %2 [(3,) float32], %3 [(3,) float16], %4 [(3,) float32]) -> ()
    Call.109(Adam_subgraph(0)) (%5 [(3,) float32], %6 [(3,) float32], %7 [(3,) float16], %8 [(3,) float32]) -> ()
    Call.114(Adam_subgraph(2)) (%9 [(3,) float32], %10 [(3,) float32], %11 [(3,) float16], %12 [(3,) float32]) -> ()
  }"""


def test_golden_call_sites_retarget_and_different_hyper_parameters_stay_apart():
    def build():
        ir = adam_per_variable([(3,), (3,)])
        with ir.main_graph:  # same shapes, another learning rate: a different graph
            var = popxl.variable(np.ones(3, np.float32), name="w2")
            facts, graph = custom_optimiser.Adam().create_graph(var, var.spec, lr=1e-4, weight_decay=0.0,
                                                                bias_correction=False)
            graph.bind(facts.init()).call(var, popxl.variable(np.ones(3, np.float32), name="g2"))
        return ir

    work = after(build(), ["dedup_subgraphs"])
    assert print_schedule(work.main) == GOLDEN_MAIN
    assert sorted(work.graphs) == ["", "Adam_subgraph(0)", "Adam_subgraph(2)"]
    assert_same(run(build()), run(work))


def _linear_layers(n_layers: int, width: int = 6):
    ir = popxl.Ir()
    np.random.seed(0)
    with ir.main_graph:
        x = popxl.variable(np.random.rand(2, width).astype(np.float32), name="x")
        for _ in range(n_layers):
            facts, graph = mnist_adam.Linear(width).create_graph(x)
            x, = graph.bind(facts.init()).call(x)
        out = popxl.variable(np.zeros((2, width), np.float32), name="out")
        ops.var_updates.copy_var_update_(out, x)
    return ir


def test_identical_linear_layers_share_one_graph():
    ir = _linear_layers(3)
    assert len(ir.core.graphs) == 4
    work = after(ir, ["dedup_subgraphs"])
    assert len(work.graphs) == 2
    assert_same(run(_linear_layers(3)), run(work))


def _nested(inner_lr: list[float]):
    """Two outer graphs, each calling its own copy of an inner graph."""
    ir = popxl.Ir()
    with ir.main_graph:
        ws = [popxl.variable(np.full(4, 1.0 + i, np.float32), name=f"w{i}") for i in range(len(inner_lr))]
        for w, lr in zip(ws, inner_lr):
            def inner(t: popxl.TensorByRef, lr=lr):
                ops.scaled_add_(t, ops.tanh(t), b=lr)

            def outer(t: popxl.TensorByRef, g=ir.create_graph(inner, w)):
                ops.call(g, t)
                ops.var_updates.accumulate_(t, ops.exp(t))

            ops.call(ir.create_graph(outer, w), w)
    return ir


@pytest.mark.parametrize("lrs, graphs_after", [([0.5, 0.5], 3), ([0.5, 0.25], 5)])
def test_graphs_that_call_duplicates_merge_too(lrs, graphs_after):
    work = after(_nested(lrs), ["dedup_subgraphs"])
    assert len(work.graphs) == graphs_after
    assert_same(run(_nested(lrs)), run(work))


@pytest.mark.parametrize("change", ["by_ref", "dtype", "attr", "constant"])
def test_structural_key_sees_every_difference_but_names(change):
    def build(variant: bool):
        ir = popxl.Ir()
        with ir.main_graph:
            dt = np.float16 if variant and change == "dtype" else np.float32
            w = popxl.variable(np.ones(4, dt), name="renamed" if variant else "w")
            c = 3.0 if variant and change == "constant" else 2.0
            f = 0.5 if variant and change == "attr" else 0.25

            def body(t: popxl.TensorByRef):
                ops.var_updates.accumulate_(t, ops.tanh(t) * popxl.constant(np.asarray(c, dt)), f=f)

            def body_by_value(t: popxl.Tensor):  # the same ops; only the by-ref flag differs
                ops.var_updates.accumulate_(t, ops.tanh(t) * popxl.constant(np.asarray(c, dt)), f=f)

            g = ir.create_graph(body_by_value if variant and change == "by_ref" else body, w)
        return ir, g._g

    (ir_a, a), (ir_b, b) = build(False), build(True)
    assert digest(graph_key(ir_a.core, a)) != digest(graph_key(ir_b.core, b))
    ir_c, c = build(False)
    c.inputs[0].name = "another name"
    assert digest(graph_key(ir_a.core, a)) == digest(graph_key(ir_c.core, c))
