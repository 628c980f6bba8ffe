"""fuse_matmul_prologue: which operand producers move into their matmul, what is refused and why, how it
prints and draws, and that the program means the same on the interpreter, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

import mnist_adam
from compiler import popxl
from compiler.ir import Op, print_schedule
from compiler.ir.dot import to_dot
from compiler.ops.matmul_epilogue import expand, prologues
from compiler.popxl import ops
from compiler.popxl.ops._emit import emit_op, out
from pass_helpers import at_level, check_passes, kinds
from passes.fuse_matmul_prologue import format_refusals

PASSES = ["fuse_elementwise", "fuse_matmul_epilogue", "fuse_matmul_prologue"]


def _program(body, m: int = 6, k: int = 5, n: int = 7):
    """Variables x (m, k), w (k, n), s (a scalar), out (m, n); body(x, w, s) returns the matmul's result,
    copied into out."""
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, m * k).reshape(m, k).astype(np.float32), name="x")
            w = popxl.variable(np.linspace(-2, 1, k * n).reshape(k, n).astype(np.float32), name="w")
            s = popxl.variable(np.asarray(0.5, np.float32), name="s")
            res = popxl.variable(np.zeros((m, n), np.float32), name="out")
            ops.var_updates.copy_var_update_(res, body(x, w, s))
        return ir
    return build


def _mm(a, b, ta: bool = False, tb: bool = False):
    return out(emit_op("MatMul", {"a": a, "b": b}, {"transpose_a": ta, "transpose_b": tb}))


GOLDEN = """\
Graph : 
  () -> () {
    MatMulEpilogue.106 (%1 [(6, 5) float32], %2 [() float32], %3 [(5, 7) float32], %4 [(6, 7) float32]) -> (%5 [(6, 7) float32])
      prologue a: v0 = input 0() : float32
      prologue a: v1 = input 1() : float32
      prologue a: v2 = mul(v0, v1) : float32
      prologue a: v3 = tanh(v2) : float32
      prologue a: return v3
      epilogue: v0 = input 0() : float32
      epilogue: v1 = input 1() : float32
      epilogue: return v0
  }"""


def test_a_scaled_left_operand_moves_into_the_matmul():
    work = check_passes(_program(lambda x, w, s: _mm(ops.tanh(x * s), w)), PASSES)
    assert kinds(work.main) == ["MatMulEpilogue"]
    op = work.main.ops[0]
    assert print_schedule(work.main) == GOLDEN
    assert op.attrs["members"] == ("Mul.100", "Tanh.101", "MatMul.102", "CopyVarUpdate.103")
    assert [v.name for v in op.inputs] == ["x", "s", "w", "out"] and op.modifies == (3,)
    assert [k.kind for k in expand(op)] == ["FusedKernel", "MatMul", "FusedKernel"]
    assert format_refusals(work) == ""


def test_both_operands_and_the_epilogue_in_one_op():
    """b's producer is cheap and the matmul has many rows (its recomputation per thread is affordable)."""
    def body(x, w, s):
        return ops.gelu(_mm(x * s, w * 2.0, tb=False) + 1.0)
    work = check_passes(_program(body, m=300), PASSES)
    (op,) = work.main.ops
    assert sorted(prologues(op)) == [0, 1]
    assert [k.kind for k in expand(op)] == ["FusedKernel", "FusedKernel", "MatMul", "FusedKernel"]


@pytest.mark.parametrize("ta,tb", [(True, False), (False, True), (True, True)], ids=["tn", "nt", "tt"])
def test_transposed_operands(ta, tb):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, 30).reshape((5, 6) if ta else (6, 5)).astype(np.float32), name="x")
            w = popxl.variable(np.linspace(-2, 1, 35).reshape((7, 5) if tb else (5, 7)).astype(np.float32), name="w")
            res = popxl.variable(np.zeros((6, 7), np.float32), name="out")
            ops.var_updates.copy_var_update_(res, _mm(x * 3.0, w, ta, tb))
        return ir
    work = check_passes(build, PASSES)
    (op,) = work.main.ops
    assert list(prologues(op)) == [0] and bool(op.attrs.get("transpose_a")) == ta


def _read_twice(x, w, s):
    xs = x * s
    _sink(ops.sum(xs))
    return _mm(xs, w)


def _sink(t):
    o = popxl.variable(np.zeros(t.shape, t.dtype.numpy), name="sink")
    ops.var_updates.copy_var_update_(o, t)


def _clash(x, w, s):
    """x (6, 7) <- tanh(x * s) @ w': the epilogue writes x, which the prologue reads."""
    w2 = popxl.variable(np.linspace(-1, 1, 49).reshape(7, 7).astype(np.float32), name="w2")
    y = _mm(ops.tanh(x * s), w2)
    ops.var_updates.copy_var_update_(x, y)
    return y * 2.0


REFUSALS = {
    "read-twice": (_read_twice, {}, "is also read by ReduceSum"),
    "not-elementwise": (lambda x, w, s: _mm(ops.reshape(ops.transpose(x), (6, 5)) , w), {}, "which is not elementwise"),
    "b-too-costly": (lambda x, w, s: _mm(x, ops.tanh(w * s)), {}, "would be recomputed by each of up to 16 threads"),
    "epilogue-writes-its-input": (_clash, {"k": 7}, "which the matmul's epilogue writes in place"),
    "broadcast-loop": (lambda x, w, s: _mm(x + popxl.variable(np.ones((6, 1), np.float32), name="c") * s, w), {},
                       None),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusals_name_the_reason(name):
    body, shape, why = REFUSALS[name]
    work = check_passes(_program(body, **shape), PASSES)
    text = format_refusals(work)
    if why is None:  # a producer broadcasting its inputs over the operand's shape is fine
        assert text == "" and any(prologues(op) for op in work.main.ops if op.kind == "MatMulEpilogue")
    else:
        assert why in text, text


def _shaped(sx: tuple[int, ...], sw: tuple[int, ...], body):
    """As _program with x of shape sx and w of shape sw: out takes the matmul's result shape."""
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, int(np.prod(sx))).reshape(sx).astype(np.float32), name="x")
            w = popxl.variable(np.linspace(-2, 1, int(np.prod(sw))).reshape(sw).astype(np.float32), name="w")
            s = popxl.variable(np.asarray(0.5, np.float32), name="s")
            y = body(x, w, s)
            res = popxl.variable(np.zeros(y.shape, np.float32), name="out")
            ops.var_updates.copy_var_update_(res, y)
        return ir
    return build


BATCHED_GOLDEN = """\
Graph : 
  () -> () {
    MatMulEpilogue.105 (%1 [(2, 64, 4) float32], %2 [() float32], %3 [(4, 5) float32], %4 [() float32], \
%5 [(2, 64, 5) float32]) -> (%6 [(2, 64, 5) float32])
      prologue a: v0 = input 0() : float32
      prologue a: v1 = input 1() : float32
      prologue a: v2 = mul(v0, v1) : float32
      prologue a: return v2
      prologue b: v0 = input 0() : float32
      prologue b: v1 = input 1() : float32
      prologue b: v2 = mul(v0, v1) : float32
      prologue b: return v2
      epilogue: v0 = input 0() : float32
      epilogue: v1 = input 1() : float32
      epilogue: return v0
  }"""


def _the_matmul(work) -> Op:
    (op,) = [op for op in work.main.ops if op.kind == "MatMulEpilogue"]
    return op


def test_a_batched_matmul_takes_its_producers():
    """a (2, 3, 4) per tile of each batch matrix; b (4, 5), one matrix for the whole batch, once per
    thread: 16 threads x 1 multiply is more than a quarter of the 2 x 3 rows it feeds (refused), not of
    2 x 300 (fused)."""
    work = check_passes(_shaped((2, 3, 4), (4, 5), lambda x, w, s: _mm(x * 2.0, w * s)), PASSES)
    assert sorted(prologues(_the_matmul(work))) == [0]
    assert "would be recomputed by each of up to 16 threads, more than 25% of the 6 multiply-adds" in \
        format_refusals(work)
    work = check_passes(_shaped((2, 300, 4), (4, 5), lambda x, w, s: _mm(x * 2.0, w * s)), PASSES)
    (op,) = work.main.ops
    assert sorted(prologues(op)) == [0, 1] and format_refusals(work) == ""


def test_a_batched_prologue_prints_and_draws():
    work = check_passes(_shaped((2, 64, 4), (4, 5), lambda x, w, s: _mm(x * 2.0, w * s)), PASSES)
    (op,) = work.main.ops
    assert print_schedule(work.main) == BATCHED_GOLDEN
    src = to_dot(work).source
    assert f"cluster_op{op.id}" in src
    assert f"op{op.id}_p0_n2 -> op{op.id}_mm" in src and f"op{op.id}_p1_n2 -> op{op.id}_mm" in src


@pytest.mark.parametrize("sx,sw,slots", [
    ((5,), (5, 7), [0]),  # a 1-d a: one row
    ((300, 5), (5,), [0, 1]),  # a 1-d b: one column, 300 rows pay for its recomputation per thread
    ((5,), (3, 5, 8), [0]),  # a 1-d a broadcast over 3 matrices: 1 multiply <= 25% of 8
    ((2, 1, 70, 5), (1, 3, 5, 7), [0, 1]),  # both broadcast along one batch dim
])
def test_batched_and_1d_shapes_that_fuse(sx, sw, slots):
    work = check_passes(_shaped(sx, sw, lambda x, w, s: _mm(x * 2.0, w * s if 1 in slots else w)), PASSES)
    assert sorted(prologues(_the_matmul(work))) == slots and format_refusals(work) == ""


SHAPED_REFUSALS = {
    # a (6, 5) broadcast over the 3 matrices of w: tanh(x * s) costs 2 > 25% of n = 7 per recomputation
    "a-broadcast-too-costly": ((6, 5), (3, 5, 7), lambda x, w, s: _mm(ops.tanh(x * s), w),
                               "'tanh_out' is broadcast over 3 batch matrices: FusedKernel.104 (2 operations per element) would "
                               "be recomputed 3 times, more than 25% of the 21 multiply-adds"),
    # b varies along the batch: 3 changes + 15 threads' starts, 2 operations each, against 3 x 6 rows
    "b-batched-too-costly": ((3, 6, 5), (3, 5, 7), lambda x, w, s: _mm(x, ops.tanh(w * s)),
                             "would compute up to 18 matrices of b (3 changes of matrix along the batch"),
    "b-matrix-too-large": ((2, 300, 200), (2, 200, 100), lambda x, w, s: _mm(x, w * s),
                           "a matrix of 'mul_out' (80000 bytes) is larger than the 65536-byte"),
    # a 1-d a makes one row: b's prologue would be recomputed by each thread for 1 multiply-add each
    "b-after-a-vector": ((5,), (5, 7), lambda x, w, s: _mm(x, w * s),
                         "would be recomputed by each of up to 16 threads, more than 25% of the 1 multiply-adds"),
}


@pytest.mark.parametrize("name", sorted(SHAPED_REFUSALS))
def test_batched_and_1d_refusals_name_the_reason(name):
    sx, sw, body, why = SHAPED_REFUSALS[name]
    work = check_passes(_shaped(sx, sw, body), PASSES)
    text = format_refusals(work)
    assert why in text, text
    assert not any(prologues(op) for op in work.main.ops if op.kind == "MatMulEpilogue")


def test_the_mnist_step_has_no_elementwise_operand_producer_left():
    """Every matmul operand of the tutorial's step comes from another matmul's epilogue (gelu, the GeluGrad
    product), the softmax cross-entropy gradient, a reshape or the forward call: nothing to fuse, each said."""
    np.random.seed(0)
    work = at_level(mnist_adam.train_ir(4)[0], 2)
    assert not any(prologues(op) for g in work.graphs.values() for op in g.ops if op.kind == "MatMulEpilogue")
    text = format_refusals(work)
    assert "computed once per element by the epilogue of MatMulEpilogue" in text
    assert "NlllWithSoftmaxGradDirect" in text and "Reshape" in text


def test_prologues_are_clusters_in_the_drawing():
    work = check_passes(_program(lambda x, w, s: _mm(ops.tanh(x * s), w)), PASSES)
    (op,) = work.main.ops
    src = to_dot(work).source
    assert f"cluster_op{op.id}" in src
    assert f"op{op.id}_p0_n3 -> op{op.id}_mm" in src  # the prologue result (node 3: tanh) feeds the matmul
    assert f"op{op.id}_mm -> op{op.id}_n0" in src


def test_print_schedule_lists_the_prologue_refusals():
    from tools.print_schedule import refusals

    work = check_passes(_program(_read_twice), PASSES)
    assert [r for r in refusals(work) if "fuse_matmul_prologue" in r] == [
        "main: fuse_matmul_prologue: MatMulEpilogue.105 operand a keeps its producer apart: 'mul_out' is also "
        "read by ReduceSum.101"]


@pytest.mark.parametrize("edit", ["shape", "batched", "slot"])
def test_a_saved_ir_with_inconsistent_prologues_is_refused_at_load(tmp_path, edit):
    """The type rule checks prologues against the op's inputs and c_spec, so a tampered file never reaches
    native code with shapes its buffers do not have."""
    import json

    from compiler.ir import Ir
    from compiler.ir.serialize import IRFormatError

    work = check_passes(_program(lambda x, w, s: _mm(ops.tanh(x * s), w)), PASSES)
    path = tmp_path / "ir.json"
    work.save(path)
    Ir.load(path)  # as saved: loads
    doc = json.loads(path.read_text())

    def pro(node):  # the one prologue entry of the MatMulEpilogue's attrs
        if isinstance(node, dict):
            if "prologues" in node:
                return node["prologues"][0]
            for v in node.values():
                found = pro(v)
                if found is not None:
                    return found
        elif isinstance(node, list):
            for v in node:
                found = pro(v)
                if found is not None:
                    return found
        return None
    entry = pro(doc)
    if edit == "shape":
        entry[3][0] = [60, 5]
    elif edit == "batched":
        entry[3][0] = [1, 6, 5]
    else:
        entry[0] = 7
    path.write_text(json.dumps(doc))
    why = {"shape": "does not broadcast|not the matmul's result", "batched": "not the matmul's result",
           "slot": "slot 0"}[edit]
    with pytest.raises(IRFormatError, match=why):
        Ir.load(path)
