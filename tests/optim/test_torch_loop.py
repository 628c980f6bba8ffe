"""The drop-ins inside real torch training loops, where after two steps every step is one bound kernel
call (compiler/optim/step_plan.py): GradScaler, clip_grad_norm_, zero_grad both ways, a
torch.compile'd model, channels_last convolutions and schedulers agree with torch's optimizers; and
whatever changes between steps (parameters, gradients, state, groups, options) is noticed.

SGD has no square root and must agree bit for bit; Adam agrees to ~1 ulp per step (torch takes its
square root from MKL), so it is compared at 1e-5 over a few steps.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from compiler.optim.torch import SGD, Adam, AdamW  # noqa: E402
from compiler.options import CompileOptions  # noqa: E402

PAIRS = [
    (SGD, torch.optim.SGD, dict(lr=1e-2, momentum=0.9), 0.0),
    (Adam, torch.optim.Adam, dict(lr=1e-2), 1e-5),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True), 1e-5),
]
IDS = ["SGD", "Adam", "AdamW-amsgrad"]


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def _convnet():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 2))
    return net.to(memory_format=torch.channels_last)


def _same(a, b, tol):
    for pa, pb in zip(a.parameters(), b.parameters()):
        if tol == 0:
            np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())
        else:
            np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=tol, atol=tol * 1e-2)


def _slow_steps(opt) -> int:
    return opt._rt().slow_steps


def _loop(net, opt, steps, *, forward=None, set_to_none=True, clip=None, scaler=None, sched=None, seed=0,
          shape=(8, 6), poison=()):
    """A training loop as users write it; `poison`: steps whose first gradient gets an inf."""
    gen = torch.Generator().manual_seed(seed)
    fwd = forward or net
    for step in range(steps):
        x = torch.randn(*shape, generator=gen).contiguous(memory_format=torch.channels_last) if len(shape) == 4 \
            else torch.randn(*shape, generator=gen)
        opt.zero_grad(set_to_none=set_to_none)
        loss = fwd(x).square().mean()
        (scaler.scale(loss) if scaler else loss).backward()
        if step in poison:
            next(net.parameters()).grad.view(-1)[0] = float("inf")
        if scaler:
            scaler.unscale_(opt)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        if sched:
            sched.step()


def _twins(make, ours, ref, kw):
    a = make()
    b = copy.deepcopy(a)
    return a, ours(a.parameters(), **kw), b, ref(b.parameters(), **kw)


@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS, ids=IDS)
@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_both_ways_and_the_fast_path_is_taken(ours, ref, kw, tol, set_to_none):
    a, oa, b, ob = _twins(_mlp, ours, ref, kw)
    for net, opt in ((a, oa), (b, ob)):
        _loop(net, opt, 8, set_to_none=set_to_none)
    _same(a, b, tol)
    assert _slow_steps(oa) == 2 and oa._rt().plan is not None  # six of eight steps were one bound call


@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS, ids=IDS)
def test_clip_grad_norm_before_the_step(ours, ref, kw, tol):
    a, oa, b, ob = _twins(_mlp, ours, ref, kw)
    for net, opt in ((a, oa), (b, ob)):
        _loop(net, opt, 8, clip=0.05)
    _same(a, b, tol)
    assert _slow_steps(oa) == 2


@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS, ids=IDS)
def test_grad_scaler_unscales_and_skips_steps_with_infs(ours, ref, kw, tol):
    a, oa, b, ob = _twins(_mlp, ours, ref, kw)
    for net, opt in ((a, oa), (b, ob)):
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1000)
        for chunk in range(3):  # the inf on the 2nd chunk's last step: that step is skipped, scale halves
            _loop(net, opt, 4, scaler=scaler, seed=chunk, poison=(3,) if chunk == 1 else ())
            if chunk == 1:
                assert scaler.get_scale() == 512.0
    _same(a, b, tol)
    steps = [int(oa.state[p]["step"]) for p in a.parameters()] if ours is not SGD else [11]
    assert steps == [11] * len(steps)  # 12 steps, one skipped


@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS, ids=IDS)
def test_torch_compiled_model_feeds_it(ours, ref, kw, tol):
    """Dynamo + AOTAutograd allocate the gradients (aot_eager: inductor's C++ build takes minutes on a
    loaded CI machine and does not change how gradients reach the optimizer)."""
    torch._dynamo.reset()
    a, oa, b, ob = _twins(_mlp, ours, ref, kw)
    for net, opt in ((a, oa), (b, ob)):
        _loop(net, opt, 6, forward=torch.compile(net, backend="aot_eager"))
    _same(a, b, tol)
    assert _slow_steps(oa) == 2


@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS, ids=IDS)
def test_channels_last_convolution_weights(ours, ref, kw, tol):
    a, oa, b, ob = _twins(_convnet, ours, ref, kw)
    assert a[0].weight.is_contiguous(memory_format=torch.channels_last) and not a[0].weight.is_contiguous()
    for net, opt in ((a, oa), (b, ob)):
        _loop(net, opt, 6, shape=(2, 3, 6, 6))
    _same(a, b, tol)
    assert _slow_steps(oa) == 2


@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS, ids=IDS)
def test_a_scheduler_changing_lr_and_betas_every_step_never_rebuilds(ours, ref, kw, tol):
    a, oa, b, ob = _twins(_mlp, ours, ref, kw)
    for net, opt in ((a, oa), (b, ob)):
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=10)  # cycles momentum/beta1
        _loop(net, opt, 10, sched=sched)
    _same(a, b, tol)
    assert oa.param_groups[0]["lr"] == ob.param_groups[0]["lr"]
    assert _slow_steps(oa) == 2 and oa.compiles == 1


# changes between steps, after the plan exists: (change, whether the next step must raise)
CHANGES = {
    "parameter replaced by the same shape": ("p.data = torch.zeros_like(p)", False),
    "parameter replaced by another shape": ("p.data = torch.zeros(3); p.grad = torch.ones(3)", True),
    "parameter set_ to a smaller view of its storage": ("with torch.no_grad():\n"
                                                        "    p.set_(p.untyped_storage(), 0, (2, 3))", True),
    "state tensor replaced by a wrong shape": ("o.state[p]['exp_avg' if 'exp_avg' in o.state[p] else "
                                               "'momentum_buffer'] = torch.zeros(5)", True),
    "state dict of a parameter reset": ("o.state[p] = {}", False),
    "gradient of another dtype": ("p.grad.data = p.grad.data.double()", True),
    "gradient shrunk in place": ("q.grad.data = q.grad.data[:5]", True),
    "gradient dropped": ("p.grad = None", False),
    "negated gradient view": ("q.grad = torch._neg_view(torch.full((16,), 0.5))", False),
    "strided gradient": ("p.grad = torch.ones(p.shape[1], p.shape[0]).t()", False),
    "gradient aliasing another parameter": ("q.grad = net[2].weight.detach().reshape(-1)[:16]", True),
    "weight decay switched on": ("o.param_groups[0]['weight_decay'] = 0.01", False),
    "a parameter added to a group": ("o.param_groups[0]['params'].append(extra)", False),
    "a param group added": ("o.add_param_group({'params': [extra]})", False),
    "state_dict loaded": ("o.load_state_dict(copy.deepcopy(o.state_dict()))", False),
}


@pytest.mark.parametrize("case", list(CHANGES))
@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS[:2], ids=IDS[:2])
def test_changes_between_fast_steps_are_noticed(case, ours, ref, kw, tol):
    """The same change on both sides; ours must then raise, or step exactly as torch does."""
    change, raises = CHANGES[case]
    a, oa, b, ob = _twins(_mlp, ours, ref, kw)
    extras = []
    for net, opt in ((a, oa), (b, ob)):
        _loop(net, opt, 3)
        extras.append(torch.nn.Parameter(torch.ones(4)))
    assert oa._rt().plan is not None
    ns = dict(torch=torch, copy=copy)
    for net, o, extra in ((a, oa, extras[0]), (b, ob, extras[1])):
        gen = torch.Generator().manual_seed(9)
        o.zero_grad()
        net(torch.randn(8, 6, generator=gen)).square().mean().backward()
        extra.grad = torch.full((4,), 0.5)
        exec(change, {**ns, "p": net[0].weight, "q": net[0].bias, "o": o, "net": net, "extra": extra})
    if raises:
        with pytest.raises((ValueError, RuntimeError)):
            oa.step()
        return
    oa.step()
    ob.step()
    _same(a, b, tol)
    np.testing.assert_allclose(extras[0].detach().numpy(), extras[1].detach().numpy(), rtol=max(tol, 1e-7))
    for net, opt in ((a, oa), (b, ob)):  # and the steps after it
        _loop(net, opt, 3, seed=5)
    _same(a, b, tol)


@pytest.mark.parametrize("ours,ref,kw,tol", PAIRS[1:2], ids=IDS[1:2])
def test_hyper_parameters_reach_the_fast_step_however_they_change(ours, ref, kw, tol):
    """A plain float replaced, a betas tuple replaced, a key added, and an lr tensor changed in place (a
    group holding a tensor is read every step, since its value can change without the dict changing)."""
    kw = dict(kw, foreach=False)
    a, oa, b, ob = _twins(_mlp, ours, ref, kw)
    changes = [lambda g: g.update(lr=0.03), lambda g: g.update(betas=(0.8, 0.99)), lambda g: g.update(note="x"),
               lambda g: g.update(lr=torch.tensor(0.02)), lambda g: g["lr"].fill_(0.005), lambda g: None,
               lambda g: g["lr"].fill_(0.04), lambda g: g.update(lr=0.01)]
    for net, opt in ((a, oa), (b, ob)):
        _loop(net, opt, 3)
        for i, change in enumerate(changes):
            change(opt.param_groups[0])
            _loop(net, opt, 1, seed=10 + i)
    _same(a, b, tol)
    assert _slow_steps(oa) == 2 and oa.compiles == 1


def test_a_forked_child_steps_through_the_bound_plan_on_one_thread():
    """libgomp's workers do not survive fork: the steady-state step in a child of a process whose step ran
    parallel regions must stay out of the runtime (it hung there), and still update like the parent."""
    import os
    import signal

    p = torch.nn.Parameter(torch.randn(1 << 18, generator=torch.Generator().manual_seed(0)))
    opt = Adam([p], lr=1e-2, compile_options=CompileOptions(device="cpu", level=3, threads=2))
    for _ in range(3):
        p.grad = torch.ones_like(p)
        opt.step()
    assert opt._rt().plan is not None
    p.grad = torch.full_like(p, 0.5)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one step through the plan, its result to the parent
        try:
            signal.alarm(60)
            opt.step()
            os.write(w, b"ok" if _slow_steps(opt) == 2 else b"slow")
            os.write(w, p.detach().numpy().tobytes())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        got = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and got[:2] == b"ok", (status, got[:4])
    opt.step()  # the parent does the same step
    assert got[2:] == p.detach().numpy().tobytes()


def test_repoint_refuses_exactly_the_spans_that_overlap_a_written_buffer():
    """Gradient addresses around every buffer the kernel writes (touching either end, one byte into it,
    inside, covering it): repoint raises iff the new span overlaps one (brute force decides), and a
    refused repoint leaves the table as it was."""
    net = _mlp()
    opt = Adam(net.parameters(), lr=1e-2)
    _loop(net, opt, 3)
    bound = opt._rt().plan.bound
    ex = bound._ex
    written = [(a, a + ex._checks[k][4]) for k, a in enumerate(bound._table) if k in ex._written]
    sizes = bound._nbytes
    before = list(bound._table)
    good = list(bound._moved)
    tried = refused = 0
    for lo, hi in written:
        for j, nb in enumerate(sizes):
            for a in (lo - nb, lo - nb + 1, lo, hi - 1, hi, lo + (hi - lo) // 2, lo - nb - 8, hi + 8):
                addresses = list(good)
                addresses[j] = a
                want = any(x < whi and x + n > wlo for x, n in zip(addresses, sizes) for wlo, whi in written)
                tried += 1
                try:
                    bound.repoint(addresses)
                except ValueError as e:
                    assert want and "shares memory" in str(e), (addresses, e)
                    assert list(bound._table) == before
                    refused += 1
                else:
                    assert not want, addresses
                    bound.repoint(good)
    assert 0 < refused < tried
    with pytest.raises(ValueError, match="NULL"):
        bound.repoint([0] * len(sizes))
    with pytest.raises(ValueError, match="expected"):
        bound.repoint(good[:-1])
