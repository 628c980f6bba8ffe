"""Drop-in torch.optim optimizers whose step() runs one compiled, fused kernel per parameter shape.

`Adam`, `AdamW` and `SGD` subclass torch.optim.Optimizer and keep its contract (param_groups, state,
step(closure), zero_grad(), state_dict()/load_state_dict() in torch's own layout, lr schedulers).
Hyper-parameters are kernel inputs, so schedules never recompile; kernels are cached by (shapes,
dtypes, options). The update runs directly on the tensors' memory through zero-copy numpy views.
torch is optional: importing this module needs it, importing compiler.optim does not.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from compiler import popxl
from compiler.popxl import ops

from .kernels import Kernel, KernelBuilder


def _view(t: torch.Tensor, what: str) -> np.ndarray:
    if t.device.type != "cpu":
        raise ValueError(f"{what} is on {t.device}; the compiled optimizers run on CPU tensors only")
    if t.is_sparse:
        raise ValueError(f"{what} is sparse; sparse gradients are not supported (use torch.optim's own optimizers)")
    if not t.is_contiguous():
        raise ValueError(f"{what} is not contiguous; call .contiguous() on the parameter before building the optimizer")
    return t.detach().numpy()


def _scalar(v: float) -> np.ndarray:
    return np.asarray(v, np.float64)


class _Compiled(torch.optim.Optimizer):
    """Shared machinery: per-group kernels over the group's parameters, bound to their memory each step."""

    _kernels: dict[Any, Kernel]

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)
        self._kernels = {}
        self.compiles = 0

    def _kernel(self, key: Any, build: Callable[[KernelBuilder], None]) -> Kernel:
        k = self._kernels.get(key)
        if k is None:
            k = self._kernels[key] = Kernel(build)
            self.compiles += 1
        return k

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(gi, group, params)
        return loss

    def _step_group(self, gi: int, group: dict, params: list) -> None:
        raise NotImplementedError


class Adam(_Compiled):
    """torch.optim.Adam with a compiled step (same formulas, in the same order, as torch's CPU path)."""

    decoupled = False

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False, foreach: Any = None,
                 capturable: bool = False, differentiable: bool = False, fused: Any = None) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _init_state(self, p: torch.Tensor, amsgrad: bool) -> dict:
        st = self.state[p]
        if len(st) == 0:
            st["step"] = torch.tensor(0.0, dtype=torch.float32)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if amsgrad and "max_exp_avg_sq" not in st:
            st["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return st

    def _step_group(self, gi: int, group: dict, params: list) -> None:
        amsgrad, maximize = bool(group["amsgrad"]), bool(group["maximize"])
        has_wd = group["weight_decay"] != 0
        sigs = tuple((tuple(p.shape), str(p.dtype)) for p in params)
        key = (gi, sigs, amsgrad, maximize, has_wd, self.decoupled)
        kernel = self._kernel(key, lambda kb: self._build(kb, sigs, amsgrad, maximize, has_wd))
        b1, b2 = group["betas"]
        arrays = {"lr": _scalar(float(group["lr"])), "b1": _scalar(b1), "b2": _scalar(b2),
                  "eps": _scalar(group["eps"]), "wd": _scalar(group["weight_decay"])}
        for i, p in enumerate(params):
            st = self._init_state(p, amsgrad)
            if st["step"].dtype != torch.float32 or st["step"].dim() != 0:
                st["step"] = torch.tensor(float(st["step"]), dtype=torch.float32)
            arrays[f"p{i}"] = _view(p, "parameter")
            arrays[f"g{i}"] = _view(p.grad, "gradient")
            arrays[f"m{i}"] = _view(st["exp_avg"], "exp_avg")
            arrays[f"v{i}"] = _view(st["exp_avg_sq"], "exp_avg_sq")
            arrays[f"t{i}"] = _view(st["step"], "step")
            if amsgrad:
                arrays[f"vmax{i}"] = _view(st["max_exp_avg_sq"], "max_exp_avg_sq")
        kernel.run(arrays)

    def _build(self, kb: KernelBuilder, sigs: tuple, amsgrad: bool, maximize: bool, has_wd: bool) -> None:
        """One subgraph per distinct (shape, dtype), called per parameter: the passes fuse each into one loop and
        the backend runs independent calls on two threads."""
        f64 = popxl.float64
        hyper = [kb.buffer(n, (), f64) for n in ("lr", "b1", "b2", "eps", "wd")]
        decoupled = self.decoupled

        def step(p: popxl.TensorByRef, g: popxl.Tensor, m: popxl.TensorByRef, v: popxl.TensorByRef,
                 t: popxl.TensorByRef, lr: popxl.Tensor, b1: popxl.Tensor, b2: popxl.Tensor, eps: popxl.Tensor,
                 wd: popxl.Tensor, *vmax: popxl.TensorByRef) -> None:
            _adam_update(p, g, m, v, t, vmax[0] if vmax else None, lr, b1, b2, eps, wd, maximize, has_wd, decoupled)

        graphs: dict = {}
        for i, (shape, dt) in enumerate(sigs):
            dtype = {"torch.float32": popxl.float32, "torch.float64": popxl.float64}.get(dt)
            if dtype is None:
                raise ValueError(f"parameter dtype {dt} is not supported (float32 or float64)")
            p, g = kb.buffer(f"p{i}", shape, dtype), kb.buffer(f"g{i}", shape, dtype)
            m, v = kb.buffer(f"m{i}", shape, dtype), kb.buffer(f"v{i}", shape, dtype)
            t = kb.buffer(f"t{i}", (), popxl.float32)
            extra = [kb.buffer(f"vmax{i}", shape, dtype)] if amsgrad else []
            key = (shape, dtype)
            if key not in graphs:
                graphs[key] = kb.ir.create_graph(step, p, g, m, v, t, *hyper, *extra)
            ops.call(graphs[key], p, g, m, v, t, *hyper, *extra)


def _fma(a, b, c):
    from compiler.popxl.ops._emit import emit_op, out

    return out(emit_op("Fma", {"a": a, "b": b, "c": c}, name="fma", out_names=["fma_out"]))


def _adam_update(p, g, m, v, t, vmax, lr, b1, b2, eps, wd, maximize: bool, has_wd: bool, decoupled: bool) -> None:
    """torch's single-tensor Adam/AdamW, op for op: scalars in float64 (as Python floats), tensors in p's dtype."""
    dt = p.dtype
    one = popxl.constant(1.0, popxl.float64)
    ops.var_updates.accumulate_(t, popxl.constant(1.0, popxl.float32))  # state["step"] += 1
    step = ops.cast(t, popxl.float64)
    if maximize:
        g = -g
    if has_wd:
        if decoupled:  # AdamW: p *= 1 - lr*wd
            ops.var_updates.accumulator_scale_(p, ops.cast(one - lr * wd, dt))
        else:  # Adam: grad = grad + wd * p
            g = g + p * ops.cast(wd, dt)
    w1 = ops.cast(one - b1, dt)  # exp_avg.lerp_(grad, 1 - beta1): ATen's vectorised lerp is fma(w, g - m, m)
    ops.var_updates.copy_var_update_(m, _fma(w1, g - m, m))
    ops.var_updates.copy_var_update_(v, v * ops.cast(b2, dt) + ops.cast(one - b2, dt) * g * g)  # mul_, addcmul_
    bc1 = one - b1 ** step
    bc2_sqrt = ops.sqrt(one - b2 ** step)
    step_size = lr / bc1
    if vmax is not None:
        ops.var_updates.copy_var_update_(vmax, ops.maximum(vmax, v))
        v = vmax
    denom = ops.sqrt(v) / ops.cast(bc2_sqrt, dt) + ops.cast(eps, dt)
    ops.var_updates.copy_var_update_(p, p + ops.cast(-step_size, dt) * (m / denom))  # addcdiv_


class AdamW(Adam):
    """torch.optim.AdamW (decoupled weight decay) with a compiled step."""

    decoupled = True

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, **kw: Any) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kw)


class SGD(_Compiled):
    """torch.optim.SGD (momentum, dampening, nesterov, weight decay, maximize) with a compiled step."""

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False, foreach: Any = None,
                 differentiable: bool = False, fused: Any = None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _step_group(self, gi: int, group: dict, params: list) -> None:
        momentum = group["momentum"] != 0
        first = tuple(momentum and self.state[p].get("momentum_buffer") is None for p in params)
        sigs = tuple((tuple(p.shape), str(p.dtype)) for p in params)
        opts = (bool(group["nesterov"]), bool(group["maximize"]), group["weight_decay"] != 0, momentum)
        kernel = self._kernel((gi, sigs, first, opts), lambda kb: self._build(kb, sigs, first, *opts))
        arrays = {"lr": _scalar(group["lr"]), "mom": _scalar(group["momentum"]),
                  "damp": _scalar(group["dampening"]), "wd": _scalar(group["weight_decay"])}
        for i, p in enumerate(params):
            arrays[f"p{i}"] = _view(p, "parameter")
            arrays[f"g{i}"] = _view(p.grad, "gradient")
            if momentum:
                if first[i]:
                    self.state[p]["momentum_buffer"] = torch.zeros_like(p)
                arrays[f"b{i}"] = _view(self.state[p]["momentum_buffer"], "momentum_buffer")
        kernel.run(arrays)

    @staticmethod
    def _build(kb: KernelBuilder, sigs: tuple, first: tuple, nesterov: bool, maximize: bool, has_wd: bool,
               momentum: bool) -> None:
        f64 = popxl.float64
        lr, mom, damp, wd = (kb.buffer(n, (), f64) for n in ("lr", "mom", "damp", "wd"))
        one = popxl.constant(1.0, f64)
        for i, (shape, dt) in enumerate(sigs):
            dtype = popxl.float32 if dt == "torch.float32" else popxl.float64
            p, g = kb.buffer(f"p{i}", shape, dtype), kb.buffer(f"g{i}", shape, dtype)
            d = -g if maximize else g
            if has_wd:
                d = d + p * ops.cast(wd, dtype)  # d_p.add(param, alpha=weight_decay)
            if momentum:
                buf = kb.buffer(f"b{i}", shape, dtype)
                if first[i]:
                    ops.var_updates.copy_var_update_(buf, d)  # buf = clone(d_p)
                else:
                    ops.var_updates.copy_var_update_(buf, buf * ops.cast(mom, dtype) + d * ops.cast(one - damp, dtype))
                d = d + buf * ops.cast(mom, dtype) if nesterov else buf
            ops.var_updates.copy_var_update_(p, p + d * ops.cast(-lr, dtype))  # param.add_(d_p, alpha=-lr)
