"""The torch.optim drop-ins against torch's own optimizers, number for number.

Torch's CPU Adam takes sqrt from MKL (within 1 ulp, not correctly rounded), so the fused Adam agrees to
the last bit in its state and to ~1 ulp in each update; with exact_sqrt=True (torch.sqrt between two
compiled kernels) everything agrees bit for bit, also training freely. Each of 200 steps, started from torch's
parameters and state, agrees to 1e-6 relative; run freely, those 1-ulp differences accumulate (and
the MLPs amplify them through their gradients), so the free-running test allows 1e-5 in norm and
checks that ours drifts from torch's default Adam no more than torch's own fused Adam does. SGD
has no such op and must agree bit for bit while each network trains on its own gradients.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from compiler.optim.torch import SGD, Adam, AdamW  # noqa: E402

ADAM_CASES = [
    (Adam, torch.optim.Adam, dict(lr=1e-2)),
    (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True, betas=(0.8, 0.99))),
    (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.0, amsgrad=True)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.05, amsgrad=True, betas=(0.3, 0.9))),  # lerp weight >= .5
]
SGD_CASES = [
    dict(lr=1e-2),
    dict(lr=1e-2, weight_decay=1e-2, maximize=True),
    dict(lr=1e-2, momentum=0.9),
    dict(lr=1e-2, momentum=0.9, dampening=0.1, weight_decay=1e-2),
    dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=1e-2),
]


def _ids(x):
    return getattr(x, "__name__", None) or ",".join(f"{k}={v}" for k, v in x.items())


def _mlp(dtype=None):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 16), torch.nn.Tanh(),
                              torch.nn.Linear(16, 3))
    return net if dtype is None else net.to(dtype)


def _groups(net, kw):
    """Three param groups with different hyper-parameters."""
    ps = list(net.parameters())
    return [{"params": ps[:2]}, {"params": ps[2:4], "lr": kw["lr"] * 0.5, "weight_decay": 0.0},
            {"params": ps[4:], "lr": kw["lr"] * 2}]


def _train(pairs, steps, check, shared_grads=False):
    """Step (net, optimizer) pairs on the same batches; check(step) after every step. shared_grads: every
    network gets the gradients of the last one (so the optimizers see the same gradient stream)."""
    gen = torch.Generator().manual_seed(1)
    for step in range(steps):
        x = torch.randn(16, 10, generator=gen)
        y = torch.randn(16, 3, generator=gen)
        for net, opt in pairs[::-1]:
            opt.zero_grad()
            if shared_grads and net is not pairs[-1][0]:
                for p, q in zip(net.parameters(), pairs[-1][0].parameters()):
                    p.grad = q.grad.clone()
            else:
                torch.nn.functional.mse_loss(net(x), y).backward()
        for _, opt in pairs:
            opt.step()
        check(step)


def _close_in_norm(a, b, tol, step):
    for pa, pb in zip(a.parameters(), b.parameters()):
        rel = float((pa - pb).detach().norm() / pb.detach().norm())
        assert rel <= tol, f"step {step}: {tuple(pa.shape)} differs by {rel:.2e} (relative, 2-norm)"


def _resync(a, oa, b, ob):
    """Copy torch's parameters and state into ours (in place: the tensors ours holds stay the same)."""
    with torch.no_grad():
        for pa, pb in zip(a.parameters(), b.parameters()):
            pa.copy_(pb)
            for k, v in ob.state[pb].items():
                oa.state[pa][k].copy_(v)


@pytest.mark.parametrize("ours,ref,kw", ADAM_CASES, ids=_ids)
def test_adam_parity_over_200_steps(ours, ref, kw):
    a = _mlp()
    b = copy.deepcopy(a)
    oa, ob = ours(_groups(a, kw), **kw), ref(_groups(b, kw), **kw)

    def check(step):
        for pa, pb in zip(a.parameters(), b.parameters()):
            np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=1e-6, atol=1e-8,
                                       err_msg=f"step {step}")
            for k, v in ob.state[pb].items():  # the state agrees to the last bit
                np.testing.assert_array_equal(oa.state[pa][k].numpy(), v.numpy(), err_msg=f"step {step}: {k}")
        _resync(a, oa, b, ob)
    _train([(a, oa), (b, ob)], 200, check, shared_grads=True)
    assert oa.compiles == 1  # one kernel for all three groups, never one per step


@pytest.mark.parametrize("ours,ref,kw", ADAM_CASES[:2] + ADAM_CASES[4:5], ids=_ids)
def test_adam_training_follows_torch(ours, ref, kw):
    a = _mlp()
    b = copy.deepcopy(a)
    oa, ob = ours(_groups(a, kw), **kw), ref(_groups(b, kw), **kw)
    _train([(a, oa), (b, ob)], 200, lambda step: _close_in_norm(a, b, 1e-5, step))


@pytest.mark.parametrize("ours,ref,kw", ADAM_CASES, ids=_ids)
def test_adam_exact_sqrt_is_bit_exact_training_freely(ours, ref, kw):
    """exact_sqrt=True takes the square root with torch.sqrt: then every parameter and state tensor is
    torch's own, bit for bit, for 200 steps of each network training on its own gradients."""
    a = _mlp()
    b = copy.deepcopy(a)
    oa, ob = ours(_groups(a, kw), exact_sqrt=True, **kw), ref(_groups(b, kw), **kw)

    def check(step):
        for pa, pb in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy(), err_msg=f"step {step}")
            for k, v in ob.state[pb].items():
                np.testing.assert_array_equal(oa.state[pa][k].numpy(), v.numpy(), err_msg=f"step {step}: {k}")
    _train([(a, oa), (b, ob)], 200, check)
    assert oa.compiles == 2  # the moments kernel and the update kernel, once


def _norm_deviation(a, b) -> float:
    return max(float((pa - pb).detach().norm() / pb.detach().norm()) for pa, pb in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("ours,ref,kw", ADAM_CASES[:3] + ADAM_CASES[4:5], ids=_ids)
def test_adam_deviates_from_torch_no_more_than_torch_fused_does(ours, ref, kw):
    """Free-running training (each network on its own gradients): torch's own fused Adam (correctly
    rounded sqrt) also drifts from torch's default Adam (MKL sqrt). Ours must stay as close as that."""
    nets = [_mlp() for _ in range(3)]
    opts = [ours(_groups(nets[0], kw), **kw), ref(_groups(nets[1], kw), **kw),
            ref(_groups(nets[2], kw), fused=True, **kw)]
    worst = [0.0, 0.0]

    def check(step):
        worst[0] = max(worst[0], _norm_deviation(nets[0], nets[1]))
        worst[1] = max(worst[1], _norm_deviation(nets[2], nets[1]))
        assert worst[0] <= 3e-5, f"step {step}: {worst[0]:.2e} from torch"  # a formula error is ~1e-2
    _train(list(zip(nets, opts)), 200, check)
    assert worst[0] <= 2 * worst[1] + 1e-7, f"ours {worst[0]:.2e} vs torch fused {worst[1]:.2e} from torch"


@pytest.mark.parametrize("kw", SGD_CASES, ids=_ids)
def test_sgd_is_bit_exact_over_200_steps(kw):
    a = _mlp()
    b = copy.deepcopy(a)
    oa, ob = SGD(_groups(a, kw), **kw), torch.optim.SGD(_groups(b, kw), **kw)

    def check(step):
        for pa, pb in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy(), err_msg=f"step {step}")
        for pa, pb in zip(a.parameters(), b.parameters()):
            if "momentum_buffer" in ob.state[pb]:
                np.testing.assert_array_equal(oa.state[pa]["momentum_buffer"], ob.state[pb]["momentum_buffer"])
    _train([(a, oa), (b, ob)], 200, check)
    dampened = kw.get("dampening", 0) != 0
    assert oa.compiles == (2 if dampened else 1)  # a dampened buffer's first step copies the gradient


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
@pytest.mark.parametrize("ours,ref,kw,exact_sqrt", [
    (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, eps=1e-3), False),
    (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, eps=1e-3), True),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, amsgrad=True, eps=1e-3), False),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, amsgrad=True, eps=1e-3), True),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1), False)],
    ids=lambda x: "exact_sqrt" if x is True else "fused" if x is False else _ids(x))
def test_other_dtypes_compute_like_torch(dtype, ours, ref, kw, exact_sqrt):
    """float16/bfloat16 parameters and state: each op in float32, rounded to the dtype, as ATen does.
    Sizes are multiples of 64, so ATen's vectorised loop handles every element (its scalar tail rounds
    differently for these dtypes)."""
    dt = getattr(torch, dtype)
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(s).to(dt)) for s in [(64, 32), (128,)]]
    b = copy.deepcopy(a)
    oa, ob = ours(a, exact_sqrt=True, **kw) if exact_sqrt else ours(a, **kw), ref(b, **kw)
    for step in range(10):
        for pa, pb in zip(a, b):
            g = torch.randn(pa.shape).to(dt)
            pa.grad, pb.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
        for pa, pb in zip(a, b):
            x, y = pa.detach().float().numpy(), pb.detach().float().numpy()
            if dt == torch.float64 and ours is not SGD and not exact_sqrt:  # MKL sqrt again
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-13, err_msg=f"step {step}")
            else:
                np.testing.assert_array_equal(x, y, err_msg=f"step {step}")


@pytest.mark.parametrize("exact_sqrt", [False, True], ids=["fused", "exact_sqrt"])
@pytest.mark.parametrize("layout", ["channels_last", "transposed"])
def test_dense_non_contiguous_parameters(layout, exact_sqrt):
    """Any dense layout works in place: the update runs over the tensors' memory order."""
    torch.manual_seed(0)
    if layout == "channels_last":
        p0 = torch.randn(4, 3, 5, 5).to(memory_format=torch.channels_last)
    else:
        p0 = torch.randn(6, 7).t()
    a, b = torch.nn.Parameter(p0.clone(memory_format=torch.preserve_format)), torch.nn.Parameter(p0.clone())
    ptr = a.data_ptr()
    oa, ob = Adam([a], lr=0.1, exact_sqrt=exact_sqrt), torch.optim.Adam([b], lr=0.1)
    for _ in range(5):
        g = torch.randn(p0.shape)  # contiguous: laid out unlike the parameter, read through a copy
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    assert a.data_ptr() == ptr and a.stride() == p0.stride()
    if exact_sqrt:  # the square root taken over the same memory order as the compiled kernels
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_pytorch_quick_example_same_trajectory():
    """The classic 'learning PyTorch with examples' Adam demo: 64x1000 -> 100 -> 10, MSE sum, lr 1e-4, 500 steps."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 1000), torch.randn(64, 10)
    model = torch.nn.Sequential(torch.nn.Linear(1000, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    twin, triplet = copy.deepcopy(model), copy.deepcopy(model)
    losses = {}
    for name, net, opt in (("ours", model, Adam(model.parameters(), lr=1e-4)),
                           ("exact", triplet, Adam(triplet.parameters(), lr=1e-4, exact_sqrt=True)),
                           ("torch", twin, torch.optim.Adam(twin.parameters(), lr=1e-4))):
        traj = []
        for _ in range(500):
            loss = torch.nn.functional.mse_loss(net(x), y, reduction="sum")
            traj.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[name] = np.array(traj)
    ours, ref = losses["ours"], losses["torch"]
    assert ours[0] > 100 and 20 < ours[99] < 100 and ours[-1] < 1e-4  # the demo's printed trajectory
    np.testing.assert_allclose(ours[:300], ref[:300], rtol=1e-5)  # then the residual is ~1e-2 ...
    np.testing.assert_allclose(ours, ref, rtol=2e-3)  # ... and 1-ulp differences grow relative to it
    np.testing.assert_array_equal(losses["exact"], ref)  # exact_sqrt: torch's trajectory to the last bit


def test_adam_exact_sqrt_steps_a_scalar_parameter():
    """A 0-d parameter (its flat view is 0-d, torch.sqrt's scratch buffer 1-d) with exact_sqrt=True:
    bit for bit torch's Adam."""
    ps = [torch.nn.Parameter(torch.tensor(0.5)), torch.nn.Parameter(torch.linspace(-1, 1, 7))]
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    oa, ob = Adam(ps, lr=1e-2, exact_sqrt=True), torch.optim.Adam(qs, lr=1e-2)
    for step in range(5):
        for p, q in zip(ps, qs):
            p.grad = torch.full_like(p, 0.1 * (step + 1)) - p.detach()
            q.grad = p.grad.clone()
        oa.step()
        ob.step()
        for p, q in zip(ps, qs):
            np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=f"step {step}")
