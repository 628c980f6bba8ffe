"""The torch.optim contract of the drop-ins: state_dict both ways, schedulers without recompiles,
closures, skipped and added parameters, copies, in-place updates, and clear errors."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from compiler.optim.torch import SGD, Adam, AdamW, UnsupportedTensorError  # noqa: E402

PAIRS = [
    (Adam, torch.optim.Adam, dict(lr=1e-2)),
    (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (SGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.9, dampening=0.1)),
]


def _ids(x):
    return getattr(x, "__name__", None) or ",".join(f"{k}={v}" for k, v in x.items())


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _steps(net, opt, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(8, 6, generator=gen), torch.randn(8, 2, generator=gen)
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()


def _same_params(a, b, rtol=1e-6):
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("ours,ref,kw", PAIRS, ids=_ids)
def test_state_dict_round_trips_both_ways(ours, ref, kw):
    a = _net()
    b = copy.deepcopy(a)
    oa, ob = ours(a.parameters(), **kw), ref(b.parameters(), **kw)
    _steps(a, oa, 3)
    _steps(b, ob, 3)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"] == sb["param_groups"]  # the same keys and values, torch's layout
    for k in sb["state"]:
        assert set(sa["state"][k]) == set(sb["state"][k])
        for name, v in sb["state"][k].items():
            assert sa["state"][k][name].dtype == v.dtype and sa["state"][k][name].shape == v.shape, name
    # ours -> torch's and torch's -> ours; both continue exactly as the originals
    c, d = copy.deepcopy(a), copy.deepcopy(b)
    oc = ref(c.parameters(), **kw)
    oc.load_state_dict(copy.deepcopy(sa))
    od = ours(d.parameters(), **kw)
    od.load_state_dict(copy.deepcopy(sb))
    for net, opt in ((a, oa), (b, ob), (c, oc), (d, od)):
        _steps(net, opt, 4, seed=1)
    _same_params(c, a)
    _same_params(d, b)
    if "step" in sb["state"][0]:
        assert float(od.state_dict()["state"][0]["step"]) == 7.0


def test_exact_sqrt_state_dict_moves_to_torch_and_back():
    """exact_sqrt is a param-group key (like torch's own `fused`): saved with the groups, ignored by torch's
    Adam, and a group may opt out; the state itself is torch's, so the optimizers continue identically."""
    a = _net()
    b, c = copy.deepcopy(a), copy.deepcopy(a)
    oa = Adam([{"params": list(a.parameters())[:2]}, {"params": list(a.parameters())[2:], "exact_sqrt": False}],
              lr=1e-2, exact_sqrt=True)
    assert [g["exact_sqrt"] for g in oa.param_groups] == [True, False]
    assert "exact_sqrt" not in Adam(b.parameters(), lr=1e-2).param_groups[0]  # off: torch's state_dict exactly
    _steps(a, oa, 3)
    ob = torch.optim.Adam([{"params": list(b.parameters())[:2]}, {"params": list(b.parameters())[2:]}], lr=1e-2)
    with torch.no_grad():
        for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
            pb.copy_(pa)
            pc.copy_(pa)
    ob.load_state_dict(copy.deepcopy(oa.state_dict()))
    oc = Adam([{"params": list(c.parameters())[:2]}, {"params": list(c.parameters())[2:]}], lr=1e-2)
    oc.load_state_dict(copy.deepcopy(oa.state_dict()))
    assert [g["exact_sqrt"] for g in oc.param_groups] == [True, False]
    for net, opt in ((a, oa), (b, ob), (c, oc)):
        _steps(net, opt, 4, seed=1)
    for pa, pb, pc in zip(list(a.parameters())[:2], list(b.parameters())[:2], list(c.parameters())[:2]):
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())  # the exact group: bit for bit
        np.testing.assert_array_equal(pc.detach().numpy(), pa.detach().numpy())
    _same_params(a, b)


def test_load_state_dict_into_a_used_optimizer_rebinds_the_new_tensors():
    """load_state_dict replaces the state tensors: the next step must update the new ones, not the old."""
    a = _net()
    b = copy.deepcopy(a)
    oa, ob = Adam(a.parameters(), lr=1e-2), torch.optim.Adam(b.parameters(), lr=1e-2)
    _steps(a, oa, 2)
    _steps(b, ob, 5)
    with torch.no_grad():
        for pa, pb in zip(a.parameters(), b.parameters()):
            pa.copy_(pb)
    oa.load_state_dict(copy.deepcopy(ob.state_dict()))
    _steps(a, oa, 3, seed=1)
    _steps(b, ob, 3, seed=1)
    _same_params(a, b)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(oa.state[pa]["exp_avg"].numpy(), ob.state[pb]["exp_avg"].numpy())


@pytest.mark.parametrize("make_sched", [
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=12),
    lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 / (1 + s)),
], ids=["StepLR", "OneCycleLR", "LambdaLR"])
def test_lr_schedulers_never_recompile(make_sched):
    a = _net()
    b = copy.deepcopy(a)
    oa, ob = Adam(a.parameters(), lr=1e-2), torch.optim.Adam(b.parameters(), lr=1e-2)
    sa, sb = make_sched(oa), make_sched(ob)
    gen = torch.Generator().manual_seed(0)
    for _ in range(12):
        x, y = torch.randn(8, 6, generator=gen), torch.randn(8, 2, generator=gen)
        for net, opt, sched in ((a, oa, sa), (b, ob, sb)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
            sched.step()
    assert oa.compiles == 1
    assert oa.param_groups[0]["lr"] == ob.param_groups[0]["lr"]
    _same_params(a, b)


def test_step_updates_the_tensors_in_place_and_runs_the_closure():
    net = _net()
    opt = SGD(net.parameters(), lr=0.1, momentum=0.9)
    ptrs = [p.data_ptr() for p in net.parameters()]
    x, y = torch.randn(8, 6), torch.randn(8, 2)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        return loss
    before = [p.detach().clone() for p in net.parameters()]
    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad
    assert [p.data_ptr() for p in net.parameters()] == ptrs
    assert all(not torch.equal(p, q) for p, q in zip(net.parameters(), before))


def test_parameters_without_grad_are_skipped_and_groups_can_be_added():
    a = _net()
    b = copy.deepcopy(a)
    pa, pb = list(a.parameters()), list(b.parameters())
    oa, ob = AdamW(pa[:2], lr=1e-2), torch.optim.AdamW(pb[:2], lr=1e-2)
    pa[1].requires_grad_(False)  # bias of the first layer: no gradient, no state, unchanged
    pb[1].requires_grad_(False)
    _steps(a, oa, 2)
    _steps(b, ob, 2)
    assert len(oa.state) == len(ob.state) == 1
    oa.add_param_group({"params": pa[2:], "lr": 5e-3})
    ob.add_param_group({"params": pb[2:], "lr": 5e-3})
    _steps(a, oa, 3, seed=2)
    _steps(b, ob, 3, seed=2)
    _same_params(a, b)
    assert oa.compiles == 2  # the added group is a new kernel; then it is reused


def test_deepcopy_and_pickle_keep_working():
    net = _net()
    opt = Adam(net.parameters(), lr=1e-2)
    _steps(net, opt, 2)
    clone = pickle.loads(pickle.dumps(opt))  # torch's pickling keeps defaults, state and groups
    assert clone.compiles == 0 and clone.defaults == opt.defaults
    twin = copy.deepcopy(net)
    opt2 = Adam(twin.parameters(), lr=1e-2)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    _steps(net, opt, 2, seed=3)
    _steps(twin, opt2, 2, seed=3)
    _same_params(net, twin)
    assert isinstance(opt, torch.optim.Adam) and isinstance(opt2, torch.optim.Optimizer)


def _param(t, grad=None):
    p = torch.nn.Parameter(t)
    p.grad = torch.zeros_like(t) if grad is None else grad
    return p


@pytest.mark.parametrize("make,match", [
    (lambda: Adam([_param(torch.randn(4, 4)[:, :2])]), "not dense"),
    (lambda: Adam([_param(torch.zeros(3, device="meta"))]), "on meta"),
    (lambda: SGD([_param(torch.zeros(3), torch.zeros(3).to_sparse())], lr=0.1), "sparse"),
    (lambda: Adam([_param(torch.zeros(3, dtype=torch.complex64))]), "complex64"),
], ids=["slice", "meta-device", "sparse-grad", "complex"])
def test_unsupported_tensors_get_clear_errors(make, match):
    opt = make()
    with pytest.raises(UnsupportedTensorError, match=match) as e:
        opt.step()
    assert "param_groups[0]" in str(e.value) or "sparse" in str(e.value)
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, ValueError)


def test_unsupported_options_and_torch_validation():
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="Invalid learning rate"):  # torch's own validation
        Adam(p, lr=-1)
    with pytest.raises(ValueError, match=r"differentiable=True\) is not supported"):
        Adam(p, differentiable=True)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        SGD(p, lr=0.1, nesterov=True)


@pytest.mark.parametrize("ours,_,kw", PAIRS[:1] + PAIRS[3:], ids=["Adam", "SGD"])
def test_every_kernel_buffer_is_the_callers_memory(ours, _, kw):
    """The kernel owns no buffer: every parameter, gradient, state tensor and hyper-parameter is a
    caller-owned value of the IR (no data in it), bound to the torch tensors' memory at each step."""
    from compiler.ir import Ir

    net = _net()
    opt = ours(net.parameters(), **kw)
    net(torch.randn(4, 6)).sum().backward()
    opt.step()
    (kernel,) = opt._rt().kernels.values()
    ir = kernel.ir
    assert type(ir) is Ir and ir.variables == {} and ir.externals == kernel.vids
    assert {ir.main.values[v].kind for v in ir.externals} == {"external"}
    names = [ir.main.values[v].name for v in ir.externals]
    assert "g0.param0" in names and "g0.grad0" in names and "g0.lr" in names
    with pytest.raises(ValueError, match=r"no array bound to caller-owned buffer 'g0.lr'"):
        kernel.exe.run({}, {}, 1)


def test_step_hooks_and_the_profiler_range_are_torchs():
    """Pre/post hooks (per optimizer and global, a pre-hook replacing the arguments) run as around torch's
    own step, and torch's profiler shows the Optimizer.step range, on the steady-state step too (the
    step skips torch's wrapper only while there is nothing for it to do)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    def run(cls, closure_loss):
        torch.manual_seed(0)
        net = _net()
        opt = cls(net.parameters(), lr=0.01)
        calls = []
        _steps(net, opt, 3)  # ours reaches its steady state
        handles = [register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre")),
                   register_optimizer_step_post_hook(lambda o, a, k: calls.append("global post"))]
        _steps(net, opt, 1)  # global hooks only
        handles += [opt.register_step_pre_hook(lambda o, a, k: calls.append("pre")),
                    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))]
        _steps(net, opt, 1)
        # a pre-hook may replace the arguments: here it passes a closure
        handles.append(opt.register_step_pre_hook(lambda o, a, k: ((a[0],), {"closure": lambda: closure_loss})))
        got = opt.step()
        for h in handles:
            h.remove()
        _steps(net, opt, 2)  # no hooks any more
        with torch.profiler.profile() as prof:
            _steps(net, opt, 1)
        names = [e.name for e in prof.events()]
        return calls, got, names, net

    a = run(Adam, 7.0)
    b = run(torch.optim.Adam, 7.0)
    assert a[0] == b[0] == ["global pre", "global post"] + ["global pre", "pre", "post", "global post"] * 2
    assert a[1] == b[1] == 7.0
    assert "Optimizer.step#Adam.step" in a[2] and "Optimizer.step#Adam.step" in b[2]
    _same_params(a[3], b[3], rtol=1e-5)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_is_torchs_with_its_profiler_range(set_to_none):
    """zero_grad either way leaves the gradients as torch's does, and torch's profiler sees its range."""
    def run(cls):
        net = _net()
        opt = cls(net.parameters(), lr=0.01)
        _steps(net, opt, 3)
        net[0].weight.grad = None  # a parameter without a gradient stays without one
        opt.zero_grad(set_to_none=set_to_none)
        grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
        _steps(net, opt, 1)
        with torch.profiler.profile() as prof:
            opt.zero_grad(set_to_none=set_to_none)
        return grads, [e.name for e in prof.events()], net

    (ga, na, a), (gb, nb, b) = run(Adam), run(torch.optim.Adam)
    assert [g is None for g in ga] == [g is None for g in gb] == [True] + [set_to_none] * 3
    assert all(g is None or not g.any() for g in ga)
    assert "Optimizer.zero_grad#Adam.zero_grad" in na and "Optimizer.zero_grad#Adam.zero_grad" in nb
    assert all(p.grad is None for p in a.parameters()) == set_to_none
    _same_params(a, b, rtol=1e-5)
