"""The torch.optim drop-ins against torch's own optimizers: parity over 200 steps, state_dict both ways,
lr schedulers without recompiles, the PyTorch quick example, and clear errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from compiler.optim.torch import SGD, Adam, AdamW  # noqa: E402

CASES = [
    (Adam, torch.optim.Adam, dict(lr=1e-2)),
    (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True, betas=(0.8, 0.99))),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.0, amsgrad=True)),
    (SGD, torch.optim.SGD, dict(lr=1e-2)),
    (SGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    (SGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.9, nesterov=True, maximize=False)),
]


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 3))


def _groups(net, kw):
    """Several param groups with different hyper-parameters."""
    ps = list(net.parameters())
    return [{"params": ps[:2]}, {"params": ps[2:4], "lr": kw["lr"] * 0.5}, {"params": ps[4:]}]


@pytest.mark.parametrize("ours,ref,kw", CASES, ids=lambda x: getattr(x, "__name__", str(x)))
def test_parity_over_200_steps(ours, ref, kw):
    a = _mlp()
    b = copy.deepcopy(a)
    oa, ob = ours(_groups(a, kw), **kw), ref(_groups(b, kw), **kw)
    gen = torch.Generator().manual_seed(1)
    for step in range(200):
        x = torch.randn(16, 10, generator=gen)
        y = torch.randn(16, 3, generator=gen)
        for net, opt in ((a, oa), (b, ob)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"step {step}")
    assert oa.compiles <= 6  # one kernel per group (SGD: a first-step variant too), never per step


@pytest.mark.parametrize("ours,ref,kw", CASES[:5], ids=lambda x: getattr(x, "__name__", str(x)))
def test_state_dict_round_trips(ours, ref, kw):
    a = _mlp()
    b = copy.deepcopy(a)
    oa, ob = ours(a.parameters(), **kw), ref(b.parameters(), **kw)
    x, y = torch.randn(8, 10), torch.randn(8, 3)
    for net, opt in ((a, oa), (b, ob)):
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    # ours -> torch's, and torch's -> ours, then both continue identically
    c, d = copy.deepcopy(a), copy.deepcopy(a)
    oc = ref(c.parameters(), **kw)
    oc.load_state_dict(copy.deepcopy(oa.state_dict()))  # ours -> torch's
    od = ours(d.parameters(), **kw)
    od.load_state_dict(copy.deepcopy(ob.state_dict()))  # torch's -> ours
    for net, opt in ((c, oc), (d, od)):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    for pc, pd in zip(c.parameters(), d.parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pd.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert float(od.state_dict()["state"][0]["step"]) == 4.0
    assert set(oa.state_dict()["state"][0]) == set(ob.state_dict()["state"][0])


def test_lr_scheduler_never_recompiles():
    net = _mlp()
    opt = Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ref_net = copy.deepcopy(net)
    ref = torch.optim.Adam(ref_net.parameters(), lr=1e-2)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref, step_size=2, gamma=0.5)
    x, y = torch.randn(8, 10), torch.randn(8, 3)
    for _ in range(10):
        for n, o, s in ((net, opt, sched), (ref_net, ref, ref_sched)):
            o.zero_grad()
            torch.nn.functional.mse_loss(n(x), y).backward()
            o.step()
            s.step()
    assert opt.compiles == 1
    for p, q in zip(net.parameters(), ref_net.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_pytorch_quick_example_same_trajectory():
    """The classic 'learning PyTorch with examples' Adam demo: 64x1000 -> 100 -> 10, MSE sum, lr 1e-4, 500 steps."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 1000), torch.randn(64, 10)
    model = torch.nn.Sequential(torch.nn.Linear(1000, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    twin = copy.deepcopy(model)
    losses = {}
    for name, net, opt in (("ours", model, Adam(model.parameters(), lr=1e-4)),
                           ("torch", twin, torch.optim.Adam(twin.parameters(), lr=1e-4))):
        traj = []
        for _ in range(500):
            loss = torch.nn.functional.mse_loss(net(x), y, reduction="sum")
            traj.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[name] = np.array(traj)
    assert losses["ours"][0] > 40 and losses["ours"][-1] < 1e-2
    np.testing.assert_allclose(losses["ours"], losses["torch"], rtol=1e-3, atol=1e-5)


def test_errors():
    p = torch.nn.Parameter(torch.randn(4, 4).t())  # not contiguous
    p.grad = torch.zeros(4, 4).t()
    with pytest.raises(ValueError, match="not contiguous"):
        Adam([p]).step()
    with pytest.raises(ValueError, match="Invalid learning rate"):
        Adam([torch.nn.Parameter(torch.zeros(2))], lr=-1)
    q = torch.nn.Parameter(torch.zeros(3))
    q.grad = torch.zeros(3).to_sparse()
    with pytest.raises(ValueError, match="sparse"):
        SGD([q], lr=0.1).step()
