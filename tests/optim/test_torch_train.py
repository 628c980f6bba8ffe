"""compile_step: a torch training step (forward, loss, backward, the drop-in's update) as one program.

Against torch eager with the same drop-in optimizer (its step() after loss.backward()): the update
arithmetic is the same subgraph, so every difference comes from the gradients, whose float32 sums run
in another order than torch's (~1e-7 relative). SGD passes that on linearly: parameters agree to 1e-6.
Adam divides by sqrt(v) + eps, so where a gradient element is itself ~1e-7 (a near-cancelling sum)
the tiny difference changes that element's update by up to ~lr; those are few, so Adam's parameters
are compared in norm (the difference under 1e-3 of the total change of the 5 steps) and element-wise
bounded by the largest step Adam can take (lr per step, 5 steps). Losses agree to 1e-5.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from compiler.driver import CompileOptions, optimise  # noqa: E402
from compiler.optim.torch import SGD, Adam, AdamW, compile_step  # noqa: E402
from tools.report import EPILOGUE_PASSES, peak_bytes  # noqa: E402

ACTS = {"relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU("tanh"), "tanh": nn.Tanh}
OPTS = {"adam": (Adam, dict(lr=1e-3)), "adamw": (AdamW, dict(lr=1e-3, weight_decay=0.1)),
        "sgd": (SGD, dict(lr=1e-2, momentum=0.9))}


def mlp(act: str = "relu", sizes: tuple[int, ...] = (784, 512, 512, 10), seed: int = 0) -> nn.Module:
    """The tutorial's MLP (Flatten, then Linear + activation, a Linear at the end)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTS[act]())
    return nn.Sequential(*layers)


def batches(n: int, batch: int, shape: tuple[int, ...] = (1, 28, 28), classes: int = 10, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, *shape, generator=g), torch.randint(0, classes, (batch,), generator=g))
            for _ in range(n)]


def eager_step(model, loss_fn, opt, x, y) -> float:
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.parametrize("opt,act,batch", [("adam", "relu", 8), ("adam", "relu", 32), ("adamw", "gelu", 8),
                                           ("sgd", "relu", 32), ("adam", "gelu_tanh", 32), ("sgd", "tanh", 8),
                                           ("sgd", "gelu", 8)])
def test_matches_torch_eager_with_the_same_drop_in(opt, act, batch):
    cls, kw = OPTS[opt]
    model = mlp(act)
    ref = copy.deepcopy(model)
    start = [p.detach().clone() for p in model.parameters()]
    ours, theirs = cls(model.parameters(), **kw), cls(ref.parameters(), **kw)
    step = compile_step(model, nn.CrossEntropyLoss(), ours)
    for x, y in batches(5, batch):
        got = step(x, y)
        assert isinstance(got, float)
        want = eager_step(ref, nn.CrossEntropyLoss(), theirs, x, y)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert step.compiles == 1
    assert step.slow_steps == 2, "steps 3-5 are one bound native call each (torch_train_plan.py)"
    for (name, p), q, p0 in zip(model.named_parameters(), ref.parameters(), start):
        if cls is SGD:
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6, msg=name)
            continue
        moved = (q - p0).norm()
        assert (p - q).norm() <= 1e-3 * moved, (name, float((p - q).norm()), float(moved))
        assert float((p - q).detach().abs().max()) <= 5 * kw["lr"], name
        for k in ("exp_avg", "exp_avg_sq"):
            a, b = ours.state[p][k], theirs.state[q][k]
            assert (a - b).norm() <= 1e-3 * b.norm(), (name, k)
        assert float(ours.state[p]["step"]) == 5.0


def test_mse_loss_and_a_nested_sequential_without_bias():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Sequential(nn.Linear(12, 16, bias=False), nn.Tanh()), nn.Linear(16, 4))
    ref = copy.deepcopy(model)
    ours, theirs = SGD(model.parameters(), lr=0.1), SGD(ref.parameters(), lr=0.1)
    step = compile_step(model, nn.MSELoss(), ours)
    g = torch.Generator().manual_seed(4)
    for _ in range(4):
        x, y = torch.randn(6, 12, generator=g), torch.randn(6, 4, generator=g)
        assert step(x, y) == pytest.approx(eager_step(ref, nn.MSELoss(), theirs, x, y), rel=1e-6)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
    assert all(p.grad is None for p in model.parameters()), "the gradient is never written (documented)"


def _epilogues(step, options: CompileOptions):
    ir = optimise(step.kernel.ir, options)
    ops = [op for g in ir.graphs.values() for op in g.ops]
    return ir, ops


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_every_weight_update_runs_in_its_gradient_matmuls_epilogue(opt):
    cls, kw = OPTS[opt]
    model = mlp("relu", (64, 48, 32, 10))
    step = compile_step(model, nn.CrossEntropyLoss(), cls(model.parameters(), **kw))
    x, y = batches(1, 8, (8, 8))[0]
    step(x, y)
    ir, ops = _epilogues(step, step.options)
    weights = {f"model[{i}].weight" for i in (1, 3, 5)}
    written: set[str] = set()
    for op in ops:
        if op.kind == "MatMulEpilogue":
            written |= {op.inputs[i].name for i in op.modifies}
    assert weights <= written, written
    # no matmul of ours writes a weight-shaped result: dW exists in no buffer
    shapes = {tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")}
    assert not [op for op in ops if op.kind == "MatMul" and op.outputs[0].shape in shapes]
    off, off_ops = _epilogues(step, CompileOptions(skip=EPILOGUE_PASSES))
    assert len([op for op in off_ops if op.kind == "MatMul" and op.outputs[0].shape in shapes]) == 3
    # the memory plan's peak drops by at least the largest weight gradient (the target)
    assert peak_bytes(off) - peak_bytes(ir) >= 64 * 48 * 4, (peak_bytes(off), peak_bytes(ir))


def _train(opt: str, options: CompileOptions, steps: int = 3):
    cls, kw = OPTS[opt]
    model = mlp("gelu", (64, 96, 40, 10))
    o = cls(model.parameters(), **kw)
    step = compile_step(model, nn.CrossEntropyLoss(), o, options)
    losses = [step(x, y) for x, y in batches(steps, 16, (8, 8))]
    return model, o, losses


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_bit_identical_to_the_epilogue_passes_off(opt, threads):
    want, wopt, wl = _train(opt, CompileOptions(threads=threads, skip=EPILOGUE_PASSES))
    got, gopt, gl = _train(opt, CompileOptions(threads=threads))
    assert gl == wl
    for (name, p), q in zip(got.named_parameters(), want.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)
        for k, v in gopt.state[p].items():
            np.testing.assert_array_equal(v.numpy(), wopt.state[q][k].numpy(), err_msg=f"{name} {k}")


@pytest.mark.parametrize("opt", ["adamw", "sgd"])
def test_native_code_matches_the_reference_interpreter(opt):
    """The same program run by runtime/interpreter.py (numpy, op by op, no passes' fusion)."""
    got, gopt, gl = _train(opt, CompileOptions())
    want, wopt, wl = _train(opt, CompileOptions(device="interpreter"))
    np.testing.assert_allclose(gl, wl, rtol=1e-5)
    for (name, p), q in zip(got.named_parameters(), want.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-5, msg=name)
        torch.testing.assert_close(gopt.state[p], wopt.state[q], rtol=1e-4, atol=1e-6, msg=name)


def _random_case(seed: int):
    """A random Sequential (depth, widths, activations, biases, an optional Flatten), loss and batches."""
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(1, 40, size=int(rng.integers(2, 5)))]
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()] if rng.random() < 0.5 else []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b, bias=bool(rng.random() < 0.7)))
        if i < len(widths) - 2 or rng.random() < 0.3:
            layers.append(ACTS[str(rng.choice(list(ACTS)))]())
    model = nn.Sequential(*layers)
    batch, ce = int(rng.integers(1, 10)), bool(rng.random() < 0.6)
    shape = (batch, widths[0]) if not layers or not isinstance(layers[0], nn.Flatten) else (batch, 1, widths[0])
    g = torch.Generator().manual_seed(seed)
    data = [(torch.randn(*shape, generator=g), torch.randint(0, widths[-1], (batch,), generator=g) if ce
             else torch.randn(batch, widths[-1], generator=g)) for _ in range(3)]
    return model, nn.CrossEntropyLoss() if ce else nn.MSELoss(), data


@pytest.mark.parametrize("seed", range(8))
def test_random_models_match_torch_eager_and_the_unfused_step(seed):
    """SGD (agrees to rounding) against torch eager; Adam bit for bit against the epilogue passes off."""
    model, loss_fn, data = _random_case(seed)
    ref = copy.deepcopy(model)
    ours, theirs = SGD(model.parameters(), lr=0.1, momentum=0.5), SGD(ref.parameters(), lr=0.1, momentum=0.5)
    step = compile_step(model, loss_fn, ours)
    for x, y in data:
        assert step(x, y) == pytest.approx(eager_step(ref, loss_fn, theirs, x, y), rel=1e-5, abs=1e-6)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=f"{model}: {name}")
    runs = []
    for options in (CompileOptions(threads=2), CompileOptions(threads=2, skip=EPILOGUE_PASSES)):
        m = copy.deepcopy(model)
        s = compile_step(m, loss_fn, Adam(m.parameters(), lr=1e-2), options)
        runs.append(([s(x, y) for x, y in data], [p.detach().numpy().copy() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_lr_changes_take_effect_without_recompiling_and_state_is_torchs():
    model = mlp("relu", (20, 16, 5))
    ref = copy.deepcopy(model)
    ours, theirs = Adam(model.parameters(), lr=1e-2), Adam(ref.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(ours, step_size=1, gamma=0.1)
    rsched = torch.optim.lr_scheduler.StepLR(theirs, step_size=1, gamma=0.1)
    step = compile_step(model, nn.CrossEntropyLoss(), ours)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for x, y in batches(4, 8, (20,), classes=5):
            step(x, y)
            eager_step(ref, nn.CrossEntropyLoss(), theirs, x, y)
            sched.step()
            rsched.step()
    assert step.compiles == 1
    assert not [w for w in caught if "lr_scheduler.step()` before" in str(w.message)]
    assert ours.param_groups[0]["lr"] == pytest.approx(1e-6)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-4)  # lr 1e-2 falling tenfold per step
        torch.testing.assert_close(ours.state[p]["exp_avg"], theirs.state[q]["exp_avg"], rtol=1e-4, atol=1e-7)
        assert float(ours.state[p]["step"]) == 4.0
    # the state is torch's: it loads into torch.optim.Adam, and back into a compiled step
    plain = torch.optim.Adam(copy.deepcopy(model).parameters(), lr=1e-2)
    plain.load_state_dict(ours.state_dict())
    again = Adam(model.parameters(), lr=1e-2)
    again.load_state_dict(plain.state_dict())
    x, y = batches(1, 8, (20,), classes=5, seed=9)[0]
    before = [p.detach().clone() for p in model.parameters()]
    compile_step(model, nn.CrossEntropyLoss(), again)(x, y)
    assert float(again.state[next(model.parameters())]["step"]) == 5.0
    assert all(not torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_frozen_parameters_are_not_updated():
    model = mlp("relu", (20, 16, 5))
    model[1].weight.requires_grad_(False)
    frozen = model[1].weight.detach().clone()
    ref = copy.deepcopy(model)
    ours = SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    theirs = SGD([p for p in ref.parameters() if p.requires_grad], lr=0.1)
    step = compile_step(model, nn.CrossEntropyLoss(), ours)
    for x, y in batches(2, 8, (20,), classes=5):
        step(x, y)
        eager_step(ref, nn.CrossEntropyLoss(), theirs, x, y)
    assert torch.equal(model[1].weight, frozen)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


def test_the_steady_state_rebinds_whatever_moved():
    """Each change below must send the step down the slow path (else the kernel would update memory that is
    no longer the parameter's or the optimizer's), and training must go on exactly as torch eager's."""
    model = mlp("relu", (20, 16, 5))
    ref = copy.deepcopy(model)
    ours, theirs = SGD(model.parameters(), lr=0.1, momentum=0.9), SGD(ref.parameters(), lr=0.1, momentum=0.9)
    step = compile_step(model, nn.CrossEntropyLoss(), ours)
    data = iter(batches(17, 8, (20,), classes=5) + batches(2, 3, (20,), classes=5))

    def both(slow: int) -> None:
        x, y = next(data)
        assert step(x, y) == pytest.approx(eager_step(ref, nn.CrossEntropyLoss(), theirs, x, y), rel=1e-6)
        assert step.slow_steps == slow
        for (name, p), q in zip(model.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6, msg=name)

    for slow in (1, 2, 2, 2):  # the second step with the same kernel binds it for the steps after
        both(slow)
    for m in (model, ref):  # a parameter's memory moves
        m[1].weight.data = m[1].weight.data.clone()
    both(3)
    both(3)
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))  # new state tensors, new param_groups
    both(4)
    ours.state[model[3].weight]["momentum_buffer"] = theirs.state[ref[3].weight]["momentum_buffer"].clone()
    both(5)
    ours.param_groups[0]["momentum"] = theirs.param_groups[0]["momentum"] = 0.5  # a hyper-parameter: no rebind
    both(5)
    ours.param_groups[0]["nesterov"] = theirs.param_groups[0]["nesterov"] = True  # an option: a new kernel
    for slow in (6, 7, 7):
        both(slow)
    assert step.compiles == 2
    for m in (model, ref):
        m[3].bias.requires_grad_(False)
    both(8)
    both(9)
    for m in (model, ref):
        m[3].bias.requires_grad_(True)
    for slow in (10, 11, 11, 12, 13):  # the last two: batches of another size, a new kernel
        both(slow)
    assert step.compiles == 4


# ---------------------------------------------------------------------------------------------- errors
def test_an_unsupported_module_is_named_with_its_path():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Dropout()))
    with pytest.raises(TypeError, match=r"model\[1\]\[1\] is torch.nn.modules.dropout.Dropout.*supported: "):
        compile_step(model, nn.CrossEntropyLoss(), Adam(model.parameters()))


def test_unsupported_losses_are_refused():
    model = nn.Sequential(nn.Linear(4, 3))
    opt = Adam(model.parameters())
    with pytest.raises(ValueError, match="label_smoothing=0.1"):
        compile_step(model, nn.CrossEntropyLoss(label_smoothing=0.1), opt)
    with pytest.raises(ValueError, match="reduction='sum'"):
        compile_step(model, nn.MSELoss(reduction="sum"), opt)
    with pytest.raises(TypeError, match="L1Loss"):
        compile_step(model, nn.L1Loss(), opt)


def test_parameters_must_be_float32_on_the_cpu():
    model = nn.Sequential(nn.Linear(4, 3)).double()
    with pytest.raises(TypeError, match=r"model\[0\].weight is torch.float64 on cpu.*float32 CPU"):
        compile_step(model, nn.CrossEntropyLoss(), Adam(model.parameters()))
    model = nn.Sequential(nn.Linear(4, 3)).to("meta")
    with pytest.raises(TypeError, match=r"model\[0\].weight is torch.float32 on meta"):
        compile_step(model, nn.CrossEntropyLoss(), Adam(model.parameters()))


def test_shared_and_non_contiguous_parameters_are_refused():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    with pytest.raises(ValueError, match=r"model\[2\].weight is the same parameter as model\[0\].weight"):
        compile_step(model, nn.MSELoss(), Adam(model.parameters()))
    model = nn.Sequential(nn.Linear(4, 3))
    model[0].weight.data = model[0].weight.data.t().contiguous().t()
    step = compile_step(model, nn.MSELoss(), Adam(model.parameters()))
    with pytest.raises(ValueError, match=r"model\[0\].weight with shape \(3, 4\) and strides \(1, 3\) is not "
                       "contiguous"):
        step(torch.randn(2, 4), torch.randn(2, 3))


def test_a_torch_optimizer_is_refused_with_the_drop_in_to_use():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(TypeError, match=r"torch.optim.adam.Adam: use compiler.optim.torch.Adam"):
        compile_step(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()))


def test_wrong_inputs_say_what_was_expected():
    model = mlp("relu", (20, 16, 5))
    step = compile_step(model, nn.CrossEntropyLoss(), Adam(model.parameters()))
    y = torch.zeros(8, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"model\[1\] \(Linear.*takes \(batch, 20\), got \(8, 21\)"):
        step(torch.randn(8, 21), y)
    with pytest.raises(TypeError, match="x must be a float32 CPU tensor, got torch.float64"):
        step(torch.randn(8, 20, dtype=torch.float64), y)
    with pytest.raises(ValueError, match="y must be an int64 CPU tensor of class indices of shape"):
        step(torch.randn(8, 20), y.float())
    with pytest.raises(IndexError, match=r"outside \[0, 5\)"):
        step(torch.randn(8, 20), y + 5)
    assert step.compiles == 0
