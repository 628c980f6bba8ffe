"""inplace: temporaries nobody reads later are overwritten by the op that consumes them; protected tensors never."""
from __future__ import annotations

import numpy as np

from compiler import popxl
from compiler.popxl import ops
from pass_helpers import after, check_level, check_passes, kinds
from passes.alias_analysis import AliasInfo


def _chain():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.linspace(-1, 1, 8).astype(np.float32), name="x")
        o = popxl.variable(np.zeros(8, np.float32), name="o")
        a = ops.exp(x)  # x: a variable, never overwritten
        b = ops.tanh(a)  # a: last read here -> b in a's buffer
        c = b * x  # b: last read here -> c in b's (= a's) buffer
        ops.var_updates.copy_var_update_(o, c + 1.0)
    return ir


def test_a_chain_of_temporaries_runs_in_one_buffer():
    work = check_passes(_chain, ["inplace"])
    exp_, tanh_, mul_, add_, copy_ = work.main.ops
    assert exp_.modifies == () and tanh_.modifies == (0,) and mul_.modifies == (0,) and add_.modifies == (0,)
    info = AliasInfo(work.main)
    assert [v.version for v in info.values_of(exp_.outputs[0].storage)] == [0, 1, 2, 3]
    before = after(_chain(), ["memory_plan"]).main.memory_plan
    plan = after(_chain(), ["inplace", "memory_plan"]).main.memory_plan
    assert len(before.offsets) == 4 and len(plan.offsets) == 1
    assert plan.peak_bytes == 64 < before.peak_bytes


def test_protected_and_still_read_tensors_are_not_overwritten():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, 8).astype(np.float32), name="x")
            c = popxl.constant(np.full(8, 0.5, np.float32))
            o = popxl.variable(np.zeros(8, np.float32), name="o")
            a = ops.exp(x)  # variable operand
            b = ops.tanh(c)  # constant operand
            e = ops.sigmoid(a)  # a is read again by Mul
            ops.var_updates.copy_var_update_(o, e * a + b)

            def sub(t: popxl.Tensor):
                return ops.exp(t)  # a graph input: the caller's tensor

            ops.var_updates.accumulate_(o, ops.call(ir.create_graph(sub, x), x)[0])
        return ir

    work = check_passes(build, ["inplace"])
    by_kind = {op.kind: op for op in work.main.ops}
    # Exp reads a variable, Tanh a constant, Sigmoid a tensor Mul reads later; Mul and Add reuse e's buffer
    assert by_kind["Exp"].modifies == by_kind["Tanh"].modifies == by_kind["Sigmoid"].modifies == ()
    assert by_kind["Mul"].modifies == (0,) and by_kind["Add"].modifies == (0,)
    sub = work.graphs[by_kind["Call"].called.id]
    assert sub.ops[0].modifies == ()


def test_in_placed_fused_kernels_keep_the_tutorial_exact():
    import custom_optimiser

    work = check_level(lambda: custom_optimiser.build_ir()[0], 2)
    assert kinds(work.graphs["Adam_subgraph(0)"]) == ["FusedKernel"]
