"""The autodiff transform's PopXL conventions: input/output order, activations, refusals, called graphs,
GradGraphInfo, addons.autodiff and autodiff_with_accumulation."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from compiler import addons, popxl
from compiler.autodiff import AutodiffError
from compiler.ir import verify
from compiler.popxl import ops
from compiler.popxl.transforms import ExpectedConnectionType


def test_inplace_graph_is_refused():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3))

        def f(a: popxl.Tensor):
            ops.var_updates.accumulate_(a, a)
            return a * 2.0

        g = ir.create_graph(f, x.spec)
        with pytest.raises(AutodiffError, match="inplace modifying ops.*Accumulate"):
            popxl.transforms.autodiff(g)


def test_activations_become_forward_outputs_and_inputs_come_grads_first():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones((2, 3)))
        g = ir.create_graph(lambda a: ops.tanh(ops.exp(a)), x.spec)
        assert len(g.outputs) == 1
        info = popxl.transforms.autodiff(g)
    kinds = [c.connection_type for c in info.expected_inputs]
    assert kinds == [ExpectedConnectionType.FwdGrad, ExpectedConnectionType.Fwd, ExpectedConnectionType.Fwd]
    assert kinds[0] == "FwdGrad" and kinds[1] == "Fwd"  # strings compare equal too
    # TanhGrad reads tanh's output (already an output); Exp's rule reads exp(a), which becomes one
    fwd_outs = {t._value.id for t in g.outputs}
    assert len(g.outputs) == 2 and all(c.fwd_tensor._value.id in fwd_outs for c in info.expected_inputs[1:])
    assert [c.fwd_tensor for c in info.expected_outputs] == list(g.inputs)


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_grads_provided_and_required_pick_and_order(device):
    """f(x0, x1, x2) = (x0 * x1, x1 + x2): given d(out1) only, ask for (x2, x0) in that order."""
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(4).astype(np.float32) for _ in range(3)]
    dout = rng.standard_normal(4).astype(np.float32)
    ir = popxl.Ir()
    with ir.main_graph:
        xs = [popxl.variable(d, name=f"x{i}") for i, d in enumerate(data)]
        g = ir.create_graph(lambda a, b, c: (a * b, b + c), *[x.spec for x in xs])
        info = popxl.transforms.autodiff(g, grads_provided=[g.outputs[1]], grads_required=[g.inputs[2], g.inputs[0]])
        assert [c.fwd_tensor for c in info.expected_outputs] == [g.inputs[2], g.inputs[0]]
        assert info.expected_inputs[0].fwd_tensor == g.outputs[1]
        fwd = ops.call_with_info(g, *xs)
        d = popxl.variable(dout, name="dout")
        bwd = ops.call_with_info(info.graph, d, inputs_dict=info.inputs_dict(fwd))
        by_parent = info.fwd_parent_ins_to_grad_parent_outs(fwd, bwd)
        by_graph = info.fwd_graph_ins_to_grad_parent_outs(bwd)
        outs = [popxl.variable(np.zeros(4, np.float32), name=n) for n in ("g2", "g0")]
        ops.var_updates.copy_var_update_(outs[0], by_parent[xs[2]])
        ops.var_updates.copy_var_update_(outs[1], by_graph[g.inputs[0]])
    sess = popxl.Session(ir, device)
    with sess:
        sess.run()
    np.testing.assert_allclose(sess.get_tensor_data(outs[0]), dout, rtol=1e-6)  # d(x1 + x2)/dx2
    np.testing.assert_array_equal(sess.get_tensor_data(outs[1]), np.zeros(4, np.float32))  # out0 got no gradient


def test_bad_arguments_say_what_to_pass():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32))
        g = ir.create_graph(lambda a: a * 2.0, x.spec)
        with pytest.raises(AutodiffError, match="grads_provided: .* is not an output"):
            popxl.transforms.autodiff(g, grads_provided=[g.inputs[0]])
        with pytest.raises(AutodiffError, match="grads_required: .* is not an input"):
            popxl.transforms.autodiff(g, grads_required=[g.outputs[0]])


def test_op_without_rule_is_named():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones((2, 3), np.float32))
        lab = popxl.variable(np.zeros(2, np.int32))

        def f(a, labels):
            return ops.nll_loss_with_softmax_grad(ops.softmax(a), labels)[0]

        g = ir.create_graph(f, x.spec, lab.spec)
        with pytest.raises(AutodiffError, match="no gradient rule for NlllWithSoftmaxGradDirect"):
            popxl.transforms.autodiff(g)


def _two_level(ir):
    x = popxl.variable(np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32), name="x")
    sub = ir.create_graph(lambda a: ops.gelu(a) * a, x.spec)
    top = ir.create_graph(lambda a: ops.tanh(ops.call(sub, a)[0]), x.spec)
    return x, sub, top


def test_return_all_grad_graphs_and_called_graphs_grad_info_reuse():
    ir = popxl.Ir()
    with ir.main_graph:
        x, sub, top = _two_level(ir)
        pre = ops.call(sub, x)  # a call site made before autodiff
        infos = popxl.transforms.autodiff(top, return_all_grad_graphs=True)
        assert set(infos) == {top, sub}
        assert infos[sub].forward_graph is sub and infos[top].graph is not infos[sub].graph
        n_graphs = len(ir.core.graphs)
        top2 = ir.create_graph(lambda a: ops.exp(ops.call(sub, a)[0]), x.spec)
        info2 = popxl.transforms.autodiff(top2, called_graphs_grad_info={sub: infos[sub]})
        assert len(ir.core.graphs) == n_graphs + 2  # top2 and its gradient graph; sub's is reused
        called = {op.called.id for op in info2.graph._g.ops if op.kind == "Call"}
        assert called == {infos[sub].graph.name}
        assert len(pre) == 1
    assert not verify(ir.core), "call sites made before autodiff must gain the activation outputs"


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_addons_autodiff_of_a_linear_module(device):
    class Linear(addons.Module):
        def build(self, x: popxl.Tensor) -> popxl.Tensor:
            w = self.add_variable_input("weight", partial(np.random.normal, 0, 0.5, (3, 2)), x.dtype)
            b = self.add_variable_input("bias", partial(np.zeros, 2), x.dtype)
            return ops.gelu(x @ w + b)

    np.random.seed(1)
    xd = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(xd, name="x")
        facts, fwd = Linear().create_graph(x)
        bwd = addons.autodiff(fwd)
        variables = facts.init()
        info = fwd.bind(variables).call_with_info(x)
        dy = popxl.constant(np.ones((4, 2), np.float32))
        binfo = bwd.call_with_info(dy, args=bwd.grad_graph_info.inputs_dict(info))
        grads = bwd.grad_graph_info.fwd_parent_ins_to_grad_parent_outs(info, binfo)
        gw = popxl.variable(np.zeros((3, 2), np.float32), name="gw")
        ops.var_updates.copy_var_update_(gw, grads[variables.weight])
    sess = popxl.Session(ir, device)
    w = sess.get_tensor_data(variables.weight).astype(np.float64)
    with sess:
        sess.run()
    z = xd.astype(np.float64) @ w
    t = np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))
    dgelu = 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * z * z)
    np.testing.assert_allclose(sess.get_tensor_data(gw), xd.T @ dgelu, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_autodiff_with_accumulation_keeps_a_running_mean(device):
    class Scale(addons.Module):
        def build(self, x: popxl.Tensor) -> popxl.Tensor:
            w = self.add_variable_input("w", partial(np.full, (3,), 2.0), x.dtype)
            return x * w

    xs = np.arange(9, dtype=np.float32).reshape(3, 3)
    ir = popxl.Ir()
    with ir.main_graph:
        s = popxl.h2d_stream((3,), popxl.float32, "x")
        x = ops.host_load(s)
        facts, fwd = Scale().create_graph(x)
        acc_facts, bwd = addons.autodiff_with_accumulation(fwd, [fwd.args.w])
        assert sorted(bwd.args.named_tensors) == ["accum.w", "mean_accum_counter"]
        assert bwd.graph.outputs == ()  # grads_required defaults to the accumulated ones, which go to accum.w
        variables = facts.init()
        accum = acc_facts.init()
        info = fwd.bind(variables).call_with_info(x)
        bwd.bind(accum).call(popxl.constant(np.ones(3, np.float32)), args=bwd.grad_graph_info.inputs_dict(info))
    ir.num_host_transfers = 3
    sess = popxl.Session(ir, device)
    with sess:
        sess.run({s: xs})
    np.testing.assert_allclose(sess.get_tensor_data(accum.accum.w), xs.mean(axis=0), rtol=1e-6)
    assert float(sess.get_tensor_data(accum.mean_accum_counter)) == 3.0
