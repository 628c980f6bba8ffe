"""popxl.ops.var_updates: in-place optimizer updates with PopART's semantics.

A float hyper-parameter is baked into the op; a Tensor one becomes an input.
"""
from __future__ import annotations

from typing import Any


from ..tensor import Tensor
from ._emit import emit_op, out


def _hyper(name: str, value: Any, ins: dict[str, Tensor | None], attrs: dict[str, Any]) -> None:
    if isinstance(value, Tensor):
        ins[name] = value
    elif value is not None:
        attrs[name] = float(value)


def _accumulate(typ: str, t: Tensor, X: Tensor, f: Any, out_prefix: str, step: Tensor | None = None) -> Tensor:
    ins: dict[str, Tensor | None] = {"t": t, "X": X}
    attrs: dict[str, Any] = {"type": typ}
    _hyper("f", f, ins, attrs)
    if step is not None:
        ins["step"] = step
    return out(emit_op("Accumulate", ins, attrs, name="accumulate", out_names=[f"{out_prefix}{t.name}"]))


def accumulate_(t: Tensor, X: Tensor, f: float | Tensor | None = None) -> Tensor:
    """t <- t + X (f None) or t <- t + f*X, in place on t."""
    if f is None or (not isinstance(f, Tensor) and float(f) == 1.0):
        return _accumulate("Add", t, X, None, "accumulate__")
    return _accumulate("DampenedAdd", t, X, f, "accumulate__")


def accumulate_square_(t: Tensor, X: Tensor, f: float | Tensor = 1.0) -> Tensor:
    """t <- t + f*X*X, in place on t."""
    return _accumulate("DampenedAddSquare", t, X, f, "accumulate_square__")


def accumulate_mean_(t: Tensor, X: Tensor, step: float | Tensor) -> Tensor:
    """t <- (1 - 1/(step+1))*t + X/(step+1), in place on t (step is not incremented)."""
    if not isinstance(step, Tensor):
        from ..creation import constant

        step = constant(float(step), "float32", name="step")
    return _accumulate("Mean", t, X, None, "accumulate_mean__", step=step)


def accumulate_moving_average_(t: Tensor, X: Tensor, f: float | Tensor) -> Tensor:
    """t <- f*t + (1-f)*X, in place on t."""
    return _accumulate("MovingAverage", t, X, f, "accumulate_moving_avg__")


def accumulate_moving_average_square_(t: Tensor, X: Tensor, f: float | Tensor) -> Tensor:
    """t <- f*t + (1-f)*X*X, in place on t."""
    return _accumulate("MovingAverageSquare", t, X, f, "accumulate_moving_avg_square__")


def accumulator_scale_(t: Tensor, f: float | Tensor) -> Tensor:
    """t <- f*t, in place on t (f == 0 zeroes it)."""
    ins: dict[str, Tensor | None] = {"t": t}
    attrs: dict[str, Any] = {}
    _hyper("f", f, ins, attrs)
    return out(emit_op("AccumulatorScale", ins, attrs, name="accumulator_scale",
                       out_names=[f"accumulator_scale__{t.name}"]))


def accumulator_zero_(t: Tensor) -> Tensor:
    """t <- 0, in place on t."""
    return accumulator_scale_(t, 0.0)


def copy_var_update_(t: Tensor, X: Tensor) -> Tensor:
    """t <- X, in place on t."""
    return out(emit_op("CopyVarUpdate", {"t": t, "X": X}, name="copy_var_update", out_names=[f"updated__{t.name}"]))


def _updater(mode: str, m: Tensor, v: Tensor, weight: Tensor | None, time_step: Tensor | None,
             weight_decay: Any, beta1: Any, beta2: Any, epsilon: Any) -> Tensor:
    # PopXL: decay is "required" for a Tensor or a float != 0; None means no decay (PopART then fails
    # at lowering; here it is simply no decay)
    wd_required = isinstance(weight_decay, Tensor) or (weight_decay is not None and float(weight_decay) != 0.0)
    if wd_required and weight is None:
        raise ValueError("Weight decay requires weight to not be None.")
    ins: dict[str, Tensor | None] = {"weight": weight if wd_required else None, "m": m, "v": v, "step": time_step}
    attrs: dict[str, Any] = {"mode": mode}
    if wd_required:
        _hyper("wd", weight_decay, ins, attrs)
    _hyper("b1", beta1, ins, attrs)
    _hyper("b2", beta2, ins, attrs)
    _hyper("eps", epsilon, ins, attrs)
    return out(emit_op("AdamUpdater", ins, attrs, name="adamupdater", out_names=["Updater"]))


def _check_weight(weight: Tensor | None, weight_decay: Any) -> None:
    """PopXL checks the weight before the betas (so this error wins when both are wrong)."""
    required = isinstance(weight_decay, Tensor) or (weight_decay is not None and float(weight_decay) != 0.0)
    if required and weight is None:
        raise ValueError("Weight decay requires weight to not be None.")


def adam_updater(acc_first_order: Tensor, acc_second_order: Tensor, weight: Tensor | None = None,
                 time_step: Tensor | None = None, weight_decay: float | Tensor | None = None,
                 beta1: float | Tensor | None = None, beta2: float | Tensor | None = None,
                 epsilon: float | Tensor = 1e-07) -> Tensor:
    """Adam increment: mc/(sqrt(vc)+eps) + wd*w; time_step is incremented in place before use."""
    _check_weight(weight, weight_decay)
    if time_step is not None:
        if beta1 is None or beta2 is None:
            raise ValueError("Bias correction requires both beta1 and beta2 to not be None.")
        mode = "Adam"
    else:
        mode = "AdamNoBias"
    return _updater(mode, acc_first_order, acc_second_order, weight, time_step, weight_decay, beta1, beta2, epsilon)


def lamb_updater(acc_first_order: Tensor, acc_second_order: Tensor, weight: Tensor | None = None,
                 time_step: Tensor | None = None, weight_decay: float | Tensor | None = None,
                 beta1: float | Tensor | None = None, beta2: float | Tensor | None = None,
                 epsilon: float | Tensor = 1e-07) -> Tensor:
    """LAMB's updater: numerically identical to adam_updater."""
    _check_weight(weight, weight_decay)
    if time_step is not None:
        if beta1 is None or beta2 is None:
            raise ValueError("Bias correction requires both beta1 and beta2 to not be None.")
        mode = "Lamb"
    else:
        mode = "LambNoBias"
    return _updater(mode, acc_first_order, acc_second_order, weight, time_step, weight_decay, beta1, beta2, epsilon)


def adamax_updater(acc_first_order: Tensor, acc_second_order: Tensor, weight: Tensor | None = None,
                   time_step: Tensor | None = None, weight_decay: float | Tensor | None = None,
                   beta1: float | Tensor = 0.9, epsilon: float | Tensor = 1e-07) -> Tensor:
    """AdaMax increment: (m/(1-b1^t)) / (v + eps) + wd*w; time_step incremented in place."""
    _check_weight(weight, weight_decay)
    if time_step is None:
        raise ValueError("AdaMax requires time_step to not be None.")
    return _updater("AdaMax", acc_first_order, acc_second_order, weight, time_step, weight_decay, beta1, None,
                    epsilon)


__all__ = [
    "accumulate_", "accumulate_square_", "accumulate_mean_", "accumulate_moving_average_",
    "accumulate_moving_average_square_", "accumulator_scale_", "accumulator_zero_", "copy_var_update_",
    "adam_updater", "lamb_updater", "adamax_updater",
]


def adam_var_update(t: Tensor, x: Tensor, r1: Tensor, r2: Tensor, learning_rate: float | Tensor | None = None,
                    max_weight_norm: float | Tensor | None = None) -> Tensor:
    """LAMB weight update: t <- t - lr * min(sqrt(r1), mwn)/sqrt(r2) * x, in place on t (r1, r2 squared norms)."""
    # None: PopART's value-initialised OptimizerValue for lr (0: no step), and no max-weight-norm clip
    ins: dict[str, Tensor | None] = {"t": t, "x": x, "r1": r1, "r2": r2}
    attrs: dict[str, Any] = {}
    _hyper("lr", 0.0 if learning_rate is None else learning_rate, ins, attrs)
    _hyper("mwn", float("inf") if max_weight_norm is None else max_weight_norm, ins, attrs)
    return out(emit_op("AdamVarUpdate", ins, attrs, name="adam_var_update", out_names=[f"adam_var_update__{t.name}"]))


def sparse_accumulate_(t: Tensor, X: Tensor, indices: Tensor, axis: int = 0, f: float | Tensor | None = None,
                       W: Tensor | None = None) -> Tensor:
    """t[.., indices[i], ..] += f * X[.., i, ..] along `axis`, in place on t (duplicate indices accumulate)."""
    if f is None:  # as accumulate_: no factor is a plain add
        f = 1.0
    ins: dict[str, Tensor | None] = {"t": t, "X": X, "indices": indices}
    attrs: dict[str, Any] = {"axis": int(axis)}
    _hyper("f", f, ins, attrs)
    return out(emit_op("PopartSparseAccumulate", ins, attrs, name="sparse_accumulate",
                       out_names=[f"sparse_accumulate__{t.name}"]))


__all__ += ["adam_var_update", "sparse_accumulate_"]
