"""fuse_elementwise: the tutorial Adam as one loop per graph; chains and DAGs; refusals with reasons."""
from __future__ import annotations

import numpy as np

import custom_optimiser
from compiler import popxl
from compiler.ir import print_schedule
from compiler.popxl import ops
from pass_helpers import after, check_level, check_passes, kinds
from passes.alias_analysis import AliasInfo
from passes.fuse_elementwise import format_refusals


def test_tutorial_adam_is_one_kernel_per_graph_reading_and_writing_each_tensor_once():
    work = check_level(lambda: custom_optimiser.build_ir()[0], 2)
    for gid in ("Adam_subgraph(0)", "Adam_subgraph(1)"):
        g = work.graphs[gid]
        assert kinds(g) == ["FusedKernel"]
        k = g.ops[0]
        by_ref = {g.inputs[i].storage for i in g.by_ref}  # w, m, v, step
        w, grad = g.inputs[0], g.inputs[1]
        read = [v.storage for v in k.inputs]
        assert len(read) == len(set(read)) and {w.storage, grad.storage} | by_ref <= set(read)
        written = [v.storage for v in k.outputs]
        assert len(written) == len(set(written)) and set(written) == by_ref
        assert sorted(k.aliases.values()) == sorted(k.modifies) and len(k.modifies) == 4
        listing = k.attrs["kernel_listing"]
        assert listing == k.attrs["expr"].listing() and not any("neg" in line for line in listing)
        printed = [line.strip() for line in print_schedule(g).splitlines()]
        assert printed[3:3 + len(listing)] == listing  # print_schedule lists the inner primitive ops
    assert work.graphs["Adam_subgraph(1)"].ops[0].attrs["members"] == (
        "Accumulate.104", "Accumulate.105", "AdamUpdater.106", "ScaledAddLhsInplace.108")
    assert not any(op.kind == "Neg" for g in work.graphs.values() for op in g.ops)


CHAIN = """\
Graph : 
  () -> () {
    FusedKernel.103 (%1 [(4,) float32], %2 [() float32]) -> (%3 [(4,) float32])
      v0 = input 0() : float32
      v1 = tanh(v0) : float32
      v2 = input 1() : float32
      v3 = mul(v1, v2) : float32
      v4 = add(v0, v3) : float32
      return v4
  }"""


def _chain():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.linspace(-1, 1, 4).astype(np.float32), name="x")
        s = popxl.variable(np.asarray(0.5, np.float32), name="s")
        ops.var_updates.accumulate_(x, ops.tanh(x) * s)
    return ir


def test_golden_chain_with_a_scalar_operand():
    work = check_passes(_chain, ["fuse_elementwise"])
    assert print_schedule(work.main) == CHAIN
    k = work.main.ops[0]
    assert k.modifies == (0,) and k.aliases == {0: 0} and k.attrs["shape"] == (4,)


def test_a_diamond_is_one_kernel_and_intermediates_get_no_buffer():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-2, 2, 6).reshape(2, 3).astype(np.float32), name="x")
            out = popxl.variable(np.zeros((2, 3), np.float32), name="out")
            a = ops.exp(x)
            ops.var_updates.copy_var_update_(out, a * ops.tanh(a) + ops.sigmoid(a))
        return ir

    work = check_passes(build, ["fuse_elementwise"])
    assert kinds(work.main) == ["FusedKernel"]
    k = work.main.ops[0]
    assert [v.storage for v in k.outputs] == [k.inputs[k.aliases[0]].storage]  # only `out`, in place
    assert k.inputs[k.aliases[0]].name == "out"


def test_a_non_elementwise_op_between_two_members_is_named_in_the_refusal():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, 4).astype(np.float32), name="x")
            y = ops.exp(x)
            ops.var_updates.copy_var_update_(x, y * ops.sum(y))
        return ir

    work = check_passes(build, ["fuse_elementwise"])
    assert kinds(work.main) == ["Exp", "ReduceSum", "FusedKernel"]
    assert format_refusals(work) == \
        "main: Mul.102 not fused with [Exp.100]: ReduceSum.101 depends on one of them and feeds the other"


def test_a_broadcast_read_of_a_tensor_written_in_the_loop_is_refused():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            b = popxl.variable(np.linspace(0, 1, 4).astype(np.float32), name="b")
            x = popxl.variable(np.ones((3, 4), np.float32), name="x")
            ops.var_updates.accumulate_(b, ops.exp(b))  # writes b, a (4,) loop
            ops.var_updates.accumulate_(x, x + b)  # reads b broadcast over a (3, 4) loop
        return ir

    work = check_passes(build, ["fuse_elementwise"])
    assert kinds(work.main) == ["FusedKernel", "FusedKernel"]
    refusals = work.main.info["fusion_refusals"]
    assert len(refusals) == 1 and "iteration shape (3, 4) differs from the kernel's (4,)" in refusals[0]


def test_two_writes_of_one_storage_in_a_kernel_keep_versions_contiguous():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, 4).astype(np.float32), name="x")
            t = ops.exp(x)
            ops.var_updates.accumulate_(t, x)  # t v1
            ops.var_updates.accumulate_(t, x)  # t v2, both inside the kernel
            s = ops.sum(t)  # outside: reads the newest version
            ops.var_updates.accumulate_(t, x * s)  # t v3, after the reduction
            ops.var_updates.copy_var_update_(x, t)
        return ir

    work = check_passes(build, ["fuse_elementwise"])
    assert kinds(work.main) == ["FusedKernel", "ReduceSum", "FusedKernel"]
    info = AliasInfo(work.main)
    t_out = work.main.ops[0].outputs[0]
    assert [v.version for v in info.values_of(t_out.storage)] == [0, 1]


def test_an_intermediate_read_outside_becomes_a_kernel_output():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32), name="x")
            o = popxl.variable(np.zeros((3, 3), np.float32), name="o")
            a = ops.tanh(x)
            ops.var_updates.accumulate_(x, a * a)
            ops.var_updates.copy_var_update_(o, ops.matmul(ops.transpose(a), a))
        return ir

    work = check_passes(build, ["fuse_elementwise"])
    k = work.main.ops[0]
    assert k.kind == "FusedKernel" and len(k.outputs) == 2 and len(k.modifies) == 1
    assert after(work, ["fuse_elementwise"]).main.info["fusion_refusals"] == work.main.info["fusion_refusals"]


def _two_updates(shared_full: bool):
    """Two parameters' updates that read one step count t (single element) and its new value; with
    shared_full, both also read one full-size tensor g."""
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            t = popxl.variable(np.asarray(3.0, np.float32), name="t")
            g = popxl.variable(np.linspace(0, 1, 6).reshape(2, 3).astype(np.float32), name="g")
            ws = [popxl.variable(np.full((2, 3), k + 1.0, np.float32), name=f"w{k}") for k in range(2)]
            gs = [g, g] if shared_full else [popxl.variable(np.full((2, 3), 0.1 * k, np.float32), name=f"g{k}")
                                             for k in range(2)]
            t1 = t + 1.0
            for w, gk in zip(ws, gs):
                ops.var_updates.accumulate_(w, ops.tanh(gk) / t1)
            ops.var_updates.copy_var_update_(t, t1)
        return ir
    return build


def test_loops_linked_only_by_a_single_element_stay_apart():
    """Joining them saves no traffic, and for an optimizer it made one kernel per shape that grew with the
    model (tests/optim/test_functional_compile_cost.py); the step count's ops join the first loop."""
    work = check_passes(_two_updates(shared_full=False), ["fuse_elementwise"])
    fused = [op for op in work.main.ops if op.kind == "FusedKernel"]
    assert len(fused) == 2 and all(op.attrs["shape"] == (2, 3) for op in fused), print_schedule(work.main)
    assert all(op.kind == "FusedKernel" for op in work.main.ops), "the step's update joined a loop"


def test_loops_reading_a_common_full_tensor_still_fuse():
    work = check_passes(_two_updates(shared_full=True), ["fuse_elementwise"])
    assert kinds(work.main) == ["FusedKernel"], print_schedule(work.main)
