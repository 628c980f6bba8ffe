"""Every var-update op and scaled_add variant against a hand-written numpy formula."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from session_helpers import run_session

from compiler import popxl
from compiler.popxl import ops

DEVICES = ["interpreter", "cpu"]
STATE = [np.float32, np.float16]
rng = np.random.default_rng(0)


def _run(build: Callable[[dict], None], data: dict[str, np.ndarray], device: str) -> dict[str, np.ndarray]:
    """Variables named after `data` keys; `build(tensors)` adds ops to the main graph."""
    ir = popxl.Ir()
    with ir.main_graph:
        ts = {k: popxl.variable(v, v.dtype, name=k) for k, v in data.items()}
        build(ts)
    out, _ = run_session(ir, device)
    return out


def _hyper(ts: dict, name: str, value: float, as_tensor: bool) -> Any:
    return popxl.constant(value, popxl.float32, name=name) if as_tensor else value


def _data(dt: Any, shape=(3, 5)) -> dict[str, np.ndarray]:
    return {"t": rng.standard_normal(shape).astype(dt), "X": rng.standard_normal(shape).astype(np.float32)}


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    if want.dtype == np.float16:
        np.testing.assert_array_equal(got, want)  # computed in float16, step by step, as the formula
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dt", STATE)
@pytest.mark.parametrize("tensor_f", [False, True])
@pytest.mark.parametrize("kind", ["accumulate_", "accumulate_square_", "accumulate_moving_average_",
                                  "accumulate_moving_average_square_", "accumulator_scale_"])
def test_accumulate_family(device, dt, tensor_f, kind):
    d = _data(dt)
    f = 0.7
    got = _run(lambda ts: getattr(ops.var_updates, kind)(
        ts["t"], *([] if kind == "accumulator_scale_" else [ts["X"]]), f=_hyper(ts, "f", f, tensor_f)), d, device)["t"]
    t, x = d["t"], d["X"].astype(dt)
    F = np.asarray(f, np.float32).astype(dt)
    one_minus = (np.float32(1) - np.float32(f)).astype(dt) if not tensor_f else (dt(1) - F)
    want = {
        "accumulate_": t + F * x,
        "accumulate_square_": t + (F * x) * x,
        "accumulate_moving_average_": F * t + one_minus * x,
        "accumulate_moving_average_square_": F * t + (one_minus * x) * x,
        "accumulator_scale_": t * F,
    }[kind]
    _close(got, want.astype(dt))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dt", STATE)
def test_accumulate_plain_mean_zero_copy(device, dt):
    d = _data(dt) | {"t2": rng.standard_normal((3, 5)).astype(dt), "t3": rng.standard_normal((3, 5)).astype(dt),
                     "t4": rng.standard_normal((3, 5)).astype(dt)}

    def build(ts):
        ops.var_updates.accumulate_(ts["t"], ts["X"])  # f=None: plain add
        ops.var_updates.accumulate_mean_(ts["t2"], ts["X"], 3.0)
        ops.var_updates.accumulator_zero_(ts["t3"])
        ops.var_updates.copy_var_update_(ts["t4"], ts["t2"])

    got = _run(build, d, device)
    x = d["X"].astype(dt)
    _close(got["t"], (d["t"] + x).astype(dt))
    b = np.float32(1) / np.float32(4)
    mean = (np.float32(1) - b).astype(dt) * d["t2"] + b.astype(dt) * x
    _close(got["t2"], mean.astype(dt))
    np.testing.assert_array_equal(got["t3"], np.zeros((3, 5), dt))
    _close(got["t4"], mean.astype(dt))  # copy reads the updated t2 (program order)


def adam_reference(m, v, w, step, b1, b2, eps, wd, mode, elem):
    """PopART's adam_updater formula, written out with numpy (in-place step increment first)."""
    mdt, vdt = m.dtype, v.dtype
    if mode == "nobias":
        mhat, vhat = m, np.sqrt(v)
    else:
        step = step + np.float32(1)
        t = step.astype(np.float32)
        b1c = (np.float32(1) - np.float32(b1) ** t).astype(mdt)
        mhat = m / b1c
        if mode == "adamax":
            vhat = v
        else:
            b2c = (np.float32(1) - np.float32(b2) ** t).astype(vdt)
            vhat = np.sqrt(v / b2c)
    x = mhat.astype(vdt) / (vhat + np.asarray(eps, np.float32).astype(vdt))
    if wd:
        x = x.astype(elem) + np.asarray(wd, np.float32).astype(elem) * w.astype(elem)
    return x.astype(elem), step


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mdt", STATE)
@pytest.mark.parametrize("mode", ["adam", "nobias", "adamax", "lamb"])
@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("tensor_hp", [False, True])
def test_adam_updater_family(device, mdt, mode, wd, tensor_hp):
    shape = (4, 6)
    d = {"m": np.abs(rng.standard_normal(shape)).astype(mdt), "v": np.abs(rng.standard_normal(shape)).astype(np.float32),
         "w": rng.standard_normal(shape).astype(np.float32), "step": np.asarray(2.0, np.float32),
         "out": np.zeros(shape, np.float32 if wd else mdt)}
    b1, b2, eps = 0.9, 0.999, 1e-5

    def build(ts):
        hp = {k: _hyper(ts, k, val, tensor_hp) for k, val in (("b1", b1), ("b2", b2), ("eps", eps), ("wd", wd))}
        step = None if mode == "nobias" else ts["step"]
        if mode == "adamax":
            x = ops.var_updates.adamax_updater(ts["m"], ts["v"], weight=ts["w"], time_step=step,
                                               weight_decay=hp["wd"], beta1=hp["b1"], epsilon=hp["eps"])
        else:
            fn = ops.var_updates.lamb_updater if mode == "lamb" else ops.var_updates.adam_updater
            x = fn(ts["m"], ts["v"], weight=ts["w"], time_step=step, weight_decay=hp["wd"], beta1=hp["b1"],
                   beta2=hp["b2"], epsilon=hp["eps"])
        assert x.dtype == (popxl.float32 if (wd or tensor_hp) else popxl.dtypes.DType.from_numpy(mdt))
        ops.var_updates.copy_var_update_(ts["out"], x) if x.dtype == ts["out"].dtype else None

    if tensor_hp and not wd:
        d["out"] = np.zeros(shape, np.float32)  # a Tensor weight decay connects the weight: fp32 updater
    got = _run(build, d, device)
    elem = np.float32 if (wd or tensor_hp) else mdt
    want, step = adam_reference(d["m"], d["v"], d["w"], d["step"], b1, b2, eps, wd if (wd or tensor_hp) else 0.0,
                                "adamax" if mode == "adamax" else "nobias" if mode == "nobias" else "adam", elem)
    if got["out"].dtype == want.dtype:
        if want.dtype == np.float16:
            np.testing.assert_allclose(got["out"].astype(np.float32), want.astype(np.float32), rtol=1e-3, atol=1e-4)
        else:
            np.testing.assert_allclose(got["out"], want, rtol=2e-6, atol=1e-7)
    assert got["step"] == (d["step"] if mode == "nobias" else step)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ydt", STATE)
@pytest.mark.parametrize("scales", ["const", "b_tensor", "both_tensor"])
@pytest.mark.parametrize("inplace", [False, True])
def test_scaled_add(device, ydt, scales, inplace):
    d = {"X": rng.standard_normal((5,)).astype(np.float32), "Y": rng.standard_normal((5,)).astype(ydt),
         "out": np.zeros((5,), np.float32)}
    a, b = (0.5 if scales == "const" else 1.0), -0.25 if scales != "both_tensor" else 3.0
    if scales == "both_tensor":
        a = 2.0

    def build(ts):
        ka = popxl.constant(a, popxl.float32) if scales == "both_tensor" else a
        kb = popxl.constant(b, popxl.float32) if scales != "const" else b
        if inplace:
            ops.scaled_add_(ts["X"], ts["Y"], a=ka, b=kb)
        else:
            ops.var_updates.copy_var_update_(ts["out"], ops.scaled_add(ts["X"], ts["Y"], a=ka, b=kb))

    got = _run(build, d, device)
    want = np.float32(a) * d["X"] + np.float32(b) * d["Y"].astype(np.float32)
    np.testing.assert_allclose(got["X"] if inplace else got["out"], want, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("tensor_hp", [False, True])
@pytest.mark.parametrize("zero_r1", [False, True])
def test_lamb_pieces(device, tensor_hp, zero_r1):
    shape = (6, 3)
    d = {"w": rng.standard_normal(shape).astype(np.float32), "x": rng.standard_normal(shape).astype(np.float32),
         "r1v": np.zeros((), np.float32), "r2v": np.zeros((), np.float32)}
    if zero_r1:
        d["w"][:] = 0
    lr, mwn = 0.01, 0.5

    def build(ts):
        r1 = ops.lamb_square(ts["w"])
        r2 = ops.lamb_square(ts["x"])
        ops.var_updates.copy_var_update_(ts["r1v"], r1)
        ops.var_updates.copy_var_update_(ts["r2v"], r2)
        ops.var_updates.adam_var_update(ts["w"], ts["x"], r1, r2, learning_rate=_hyper(ts, "lr", lr, tensor_hp),
                                        max_weight_norm=_hyper(ts, "mwn", mwn, tensor_hp))

    got = _run(build, d, device)
    r1 = np.sum(d["w"].astype(np.float32) ** 2)
    r2 = np.sum(d["x"] ** 2)
    np.testing.assert_allclose(got["r1v"], r1, rtol=1e-5)
    np.testing.assert_allclose(got["r2v"], r2, rtol=1e-5)
    ratio = 1.0 if r1 == 0 else min(np.sqrt(r1), mwn) / np.sqrt(r2)
    np.testing.assert_allclose(got["w"], d["w"] - np.float32(lr * ratio) * d["x"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("axis", [0, 1])
def test_sparse_accumulate(device, axis):
    t = rng.standard_normal((5, 4)).astype(np.float32)
    idx = np.array([1, 3, 1], np.int32)
    x_shape = (3, 4) if axis == 0 else (5, 3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    idx_t = idx if axis == 0 else np.array([0, 2, 0], np.int32)
    got = _run(lambda ts: ops.var_updates.sparse_accumulate_(ts["t"], ts["X"], ts["i"], axis=axis, f=0.5),
               {"t": t, "X": x, "i": idx_t}, device)["t"]
    want = t.copy()
    for k, j in enumerate(idx_t):
        if axis == 0:
            want[j] += np.float32(0.5) * x[k]
        else:
            want[:, j] += np.float32(0.5) * x[:, k]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # f=None is a plain scatter-add (f = 1), as accumulate_(f=None)
    got = _run(lambda ts: ops.var_updates.sparse_accumulate_(ts["t"], ts["X"], ts["i"], axis=axis),
               {"t": t, "X": x, "i": idx_t}, device)["t"]
    want = t.copy()
    for k, j in enumerate(idx_t):
        if axis == 0:
            want[j] += x[k]
        else:
            want[:, j] += x[:, k]
    np.testing.assert_allclose(got, want, rtol=1e-6)
