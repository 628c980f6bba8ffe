"""fuse_horizontal (level 3): calls of same-bodied optimizer graphs become one MultiKernel over several buffers."""
from __future__ import annotations

import numpy as np

import custom_optimiser
from compiler import popxl
from compiler.ir import print_schedule
from compiler.ops import run_reference
from compiler.ops.multi_kernel import group_kernels
from compiler.popxl import ops
from pass_helpers import assert_same, at_level, check_level, kinds, run
from tutorial_programs import MNIST_SHAPES, adam_per_variable

GOLDEN = """\
Graph : 
  () -> () {
    MultiKernel.106 (%1 [(3,) float32], %2 [(3,) float32], %3 [() float32], %4 [(2, 2) float32], \
%5 [(2, 2) float32], %3 [() float32]) -> (%6 [(3,) float32], %7 [(2, 2) float32])
      v0 = input 0() : float32
      v1 = input 1() : float32
      v2 = input 2() : float32
      v3 = mul(v2, v1) : float32
      v4 = sub(v0, v3) : float32
      return v4
  }"""


def _sgd(shapes, same_weight: bool = False, chained: bool = False):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            lr = popxl.variable(np.asarray(0.1, np.float32), name="lr")
            w0 = None
            for i, shape in enumerate(shapes):
                w = w0 if same_weight and w0 is not None else \
                    popxl.variable(np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(np.float32), name=f"w{i}")
                g = ops.tanh(w0) if chained and w0 is not None else \
                    popxl.variable(np.full(shape, 0.5, np.float32), name=f"g{i}")
                w0 = w

                def sgd(t: popxl.TensorByRef, d: popxl.Tensor, lr: popxl.Tensor):
                    ops.scaled_add_(t, d, b=-lr)

                ops.call(ir.create_graph(sgd, w, g, lr), w, g, lr)
        return ir
    return build


def test_golden_two_sizes_one_launch_sharing_the_learning_rate():
    work = check_level(_sgd([(3,), (2, 2)]), 3)
    assert print_schedule(work.main) == GOLDEN
    k = work.main.ops[0]
    assert k.attrs["shapes"] == ((3,), (2, 2)) and k.attrs["arity"] == 3
    assert k.aliases == {0: 0, 1: 3} and k.modifies == (0, 3)
    assert list(work.graphs) == [""]


def test_mnist_tutorial_adam_steps_become_one_launch_over_eight_parameters():
    work = check_level(adam_per_variable, 3, runs=1)
    assert kinds(work.main) == ["MultiKernel"]
    k = work.main.ops[0]
    assert [tuple(s) for s in k.attrs["shapes"]] == MNIST_SHAPES and len(k.attrs["members"]) == 8
    written = [v.storage for v in k.outputs]
    assert len(written) == len(set(written)) == 3 * 8  # w, m, v of every parameter, once each
    assert_same(run(at_level(adam_per_variable(), 2), runs=1), run(work, runs=1))


def test_the_reference_is_one_fused_kernel_per_group():
    work = at_level(_sgd([(3,), (2, 2)])(), 3)
    k = work.main.ops[0]
    xs = [np.full(v.shape, 0.25 * (i + 1), v.dtype.numpy) for i, v in enumerate(k.inputs)]
    subs = group_kernels(k)
    assert [s.kind for s in subs] == ["FusedKernel"] * 2 and subs[1].aliases == {0: 0}
    want = [r for s, n in zip(subs, (0, 3)) for r in run_reference(s, xs[n:n + 3])]
    for a, b in zip(run_reference(k, xs), want):
        np.testing.assert_array_equal(a, b)


def test_calls_that_share_a_written_tensor_or_feed_each_other_stay_apart():
    same = check_level(_sgd([(3,), (3,)], same_weight=True), 3)
    assert kinds(same.main) == ["Call", "Call"]
    chained = check_level(_sgd([(3,), (3,)], chained=True), 3, skip=("inline",))
    assert kinds(chained.main) == ["Call", "Tanh", "Call"]  # the second call's gradient reads the first's result


def test_different_optimizers_do_not_group():
    work = check_level(lambda: custom_optimiser.build_ir()[0], 3)
    assert kinds(work.main) == ["Call", "Call"]


def _ew_graph(w: popxl.TensorByRef, g: popxl.Tensor):
    ops.var_updates.accumulate_moving_average_(w, ops.tanh(g), f=0.8)
    return ops.tanh(w * g)


def test_a_call_that_reads_another_calls_result_is_not_grouped_with_it():
    """Found by the random tests: the second call reads the first call's plain (non-aliased) result."""
    def build():
        ir = popxl.Ir()
        rng = np.random.default_rng(0)
        with ir.main_graph:
            w0, w1 = (popxl.variable(rng.uniform(-1, 1, 5).astype(np.float32), name=f"v{i}") for i in range(2))
            graph = ir.create_graph(_ew_graph, w1, w1.spec)
            (r,) = ops.call(graph, w1, ops.tanh(w1))
            (r2,) = ops.call(graph, w0, r)
            for k, t in enumerate((r, r2)):
                ops.var_updates.copy_var_update_(popxl.variable(np.zeros(5, np.float32), name=f"out{k}"), t)
        return ir
    work = at_level(build(), 3, ("inline",))
    assert "MultiKernel" not in kinds(work.main)
    assert_same(run(build()), run(work))
