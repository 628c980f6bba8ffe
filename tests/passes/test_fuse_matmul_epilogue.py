"""fuse_matmul_epilogue and inline_weight_updates: what becomes one MatMulEpilogue, what is refused and
why, how it prints and draws, and that the program means the same (interpreter, bit for bit)."""
from __future__ import annotations

import numpy as np
import pytest

import mnist_adam
from compiler import popxl
from compiler.ir import print_schedule
from compiler.ir.dot import to_dot
from compiler.popxl import ops
from compiler.popxl.ops._emit import emit_op, out
from pass_helpers import assert_same, at_level, check_level, check_passes, kinds, run
from passes.fuse_matmul_epilogue import format_refusals

EPILOGUE = ["fuse_elementwise", "fuse_matmul_epilogue"]


def _linear_gelu(extra=None, ta: bool = False):
    """x @ w + b -> gelu, copied into `out` (an in-place write the epilogue makes)."""
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, 6 * 5).reshape((5, 6) if ta else (6, 5)).astype(np.float32), name="x")
            w = popxl.variable(np.linspace(-2, 1, 5 * 7).reshape(5, 7).astype(np.float32), name="w")
            b = popxl.variable(np.linspace(0, 1, 7).astype(np.float32), name="b")
            res = popxl.variable(np.zeros((6, 7), np.float32), name="out")
            y = out(emit_op("MatMul", {"a": x, "b": w}, {"transpose_a": ta}))
            ops.var_updates.copy_var_update_(res, ops.gelu(y + b))
            if extra is not None:
                extra(y, x, w)
        return ir
    return build


GOLDEN = """\
Graph : 
  () -> () {
    MatMulEpilogue.105 (%1 [(6, 5) float32], %2 [(5, 7) float32], %3 [(7,) float32], %4 [(6, 7) float32]) -> (%5 [(6, 7) float32])
      v0 = input 0() : float32
      v1 = input 1() : float32
      v2 = input 2() : float32
      v3 = add(v0, v1) : float32"""


def test_bias_and_gelu_become_the_matmuls_epilogue():
    work = check_passes(_linear_gelu(), EPILOGUE)
    assert kinds(work.main) == ["MatMulEpilogue"]
    op = work.main.ops[0]
    assert print_schedule(work.main).startswith(GOLDEN)
    assert op.attrs["members"] == ("MatMul.100", "Add.101", "Gelu.102", "CopyVarUpdate.103")
    assert [v.name for v in op.inputs] == ["x", "w", "b", "out"] and op.modifies == (3,) and op.aliases == {0: 3}
    assert format_refusals(work) == ""


def test_transposed_operand_and_the_default_pipeline():
    work = check_level(_linear_gelu(ta=True), 2)
    (op,) = [o for o in work.main.ops if o.kind == "MatMulEpilogue"]
    assert op.attrs["transpose_a"] is True


def test_a_result_read_twice_keeps_its_buffer():
    work = check_passes(_linear_gelu(lambda y, x, w: _sink(ops.sum(y))), EPILOGUE)
    assert "MatMul" in kinds(work.main) and "MatMulEpilogue" not in kinds(work.main)
    assert "is read by 2 ops" in format_refusals(work)


def _program(body):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            a = popxl.variable(np.linspace(-1, 1, 12).reshape(3, 4).astype(np.float32), name="a")
            w = popxl.variable(np.linspace(-1, 1, 20).reshape(4, 5).astype(np.float32), name="w")
            body(a, w)
        return ir
    return build


def _sink(t):
    o = popxl.variable(np.zeros(t.shape, t.dtype.numpy), name="sink")
    ops.var_updates.copy_var_update_(o, t)


REFUSALS = {
    "not-elementwise": (lambda a, w: _sink(ops.sum(a @ w)), "which is not elementwise"),
    "writes-an-operand": (lambda a, w: ops.var_updates.accumulate_(w, ops.tanh(_square(a, w))), "which the matmul reads"),
    "broadcast-loop": (lambda a, w: _sink(a @ w + popxl.variable(np.ones((2, 3, 5), np.float32), name="big")),
                       "runs a loop of shape (2, 3, 5)"),
}


def _square(a, w):
    """w (4, 5) <- w + tanh(a^T a w): the epilogue writes w, which the matmul reads."""
    aa = out(emit_op("MatMul", {"a": a, "b": a}, {"transpose_a": True}))  # (4, 4)
    return aa @ w


def _scalar_result(a, w):
    """exp(a @ w) * s, and s <- s + 1 in the same kernel (both read s): a single-element result."""
    s = popxl.variable(np.asarray(0.5, np.float32), name="s")
    one = popxl.variable(np.asarray(1.0, np.float32), name="one")
    _sink(ops.exp(a @ w) * s)
    ops.var_updates.accumulate_(s, one)


def test_a_single_element_result_stays_in_the_epilogue():
    """exp(a @ w) * s and s <- s + 1 in one kernel: the backend stores s once after the tiles."""
    work = check_passes(_program(_scalar_result), EPILOGUE)
    (op,) = [o for o in work.main.ops if o.kind == "MatMulEpilogue"]
    assert "s" in [op.inputs[i].name for i in op.modifies]
    assert format_refusals(work) == ""


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusals_name_the_reason(name):
    body, why = REFUSALS[name]
    work = check_passes(_program(body), EPILOGUE)
    text = format_refusals(work)
    assert why in text, text


def test_an_update_reading_the_gradient_fuses_when_the_matmul_reads_other_tensors():
    def body(a, w):
        g = out(emit_op("MatMul", {"a": a, "b": a}, {"transpose_a": True}))  # (4, 4), reads a only
        v = popxl.variable(np.ones((4, 4), np.float32), name="v")
        ops.var_updates.accumulate_(v, ops.tanh(g), -0.5)
    work = check_passes(_program(body), EPILOGUE)
    assert kinds(work.main) == ["MatMulEpilogue"]
    op = work.main.ops[0]
    assert [op.inputs[i].name for i in op.modifies] == ["v"]


def test_mnist_step_weight_updates_move_into_the_gradient_matmuls():
    """After the default pipeline the tutorial's Adam graphs of the four weights are inlined next to their
    gradient's MatMul and run in its epilogue; the step means the same on the interpreter, bit for bit."""
    def build():
        np.random.seed(0)
        return mnist_adam.train_ir(4)

    ir, streams, _, _ = build()
    work = at_level(ir, 2)
    fused = [op for op in work.main.ops if op.kind == "MatMulEpilogue"]
    weights = {v.storage: v.name for v in work.main.values.values() if v.kind == "variable"}
    updated = sorted(weights[op.inputs[i].storage] for op in fused for i in op.modifies if op.inputs[i].storage in weights)
    assert [u for u in updated if u.endswith("weight")] == ["fc1.weight", "fc2.weight", "fc3.weight", "fc4.weight"]
    assert any("Accumulate" in m for op in fused for m in op.attrs["members"])
    rng = np.random.default_rng(0)
    feeds = {streams[0]: rng.standard_normal((4, 28, 28)).astype(np.float32),
             streams[1]: rng.integers(0, 10, 4).astype(np.int32)}
    assert_same(run(build()[0], 2, feeds), run(work, 2, feeds))


def test_the_epilogue_is_a_cluster_in_the_drawing():
    work = check_passes(_linear_gelu(), EPILOGUE)
    src = to_dot(work).source
    op = work.main.ops[0]
    assert f"cluster_op{op.id}" in src and f'label="MatMulEpilogue.{op.id} (4 ops)"' in src
    assert f"op{op.id}_mm -> op{op.id}_n0" in src  # the matmul's tile feeds the epilogue's input 0


def test_print_schedule_lists_the_refusals():
    from tools.print_schedule import refusals

    work = check_passes(_program(REFUSALS["not-elementwise"][0]), EPILOGUE)
    assert refusals(work) == [
        "main: fuse_matmul_epilogue: MatMul.100 keeps its result: its result 'matmul_out' is read by "
        "ReduceSum.101, which is not elementwise"]
