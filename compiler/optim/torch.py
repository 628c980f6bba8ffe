"""torch.optim drop-ins whose step() runs one compiled, fused kernel over every parameter, in place.

    from compiler.optim.torch import Adam        # instead of torch.optim.Adam
    opt = Adam(model.parameters(), lr=1e-3)

`Adam`, `AdamW` and `SGD` subclass torch's own classes, so construction, validation, `param_groups`,
`state`, `zero_grad()`, `state_dict()`/`load_state_dict()` (interchangeable with torch's), hooks and
`torch.optim.lr_scheduler` are torch's; only `step(closure=None)` is replaced. It binds zero-copy
numpy views of the parameters, gradients and state to one compiled kernel (one subgraph per
distinct (numel, dtype, options), called per parameter; the backend runs independent calls on two
threads) and runs it. Hyper-parameters are float64 kernel inputs, so lr schedules never recompile;
a kernel is compiled per distinct set of parameter sizes/dtypes/options and cached.
The arithmetic is torch's own, op for op (see compiler/optim/aten.py); the one difference is Adam's
square root, which torch's CPU build takes from MKL (not correctly rounded). `Adam(...,
exact_sqrt=True)` calls torch.sqrt between two compiled kernels instead, and is then bit for bit
torch.optim.Adam, at about twice the fused step's time.

CPU tensors only; sparse gradients, complex parameters and non-dense parameters raise
UnsupportedTensorError (a RuntimeError and ValueError) naming the tensor. Gradients laid out
differently from their parameter are copied to its layout first (the one documented copy).
torch is needed to import this module; importing compiler.optim does not import torch.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops
from compiler.popxl.tensor import Tensor, TensorByRef  # noqa: F401  (annotations of the subgraphs)

from . import aten
from .kernels import Kernel, KernelBuilder
from .tensor_views import DTYPES, ParamViews, UnsupportedTensorError, dense_order, flat_view

__all__ = ["Adam", "AdamW", "SGD", "UnsupportedTensorError"]
F64 = popxl.float64


class _Runtime:
    """What a drop-in keeps between steps (rebuilt lazily after copy/pickle, which keep torch's fields only)."""

    def __init__(self, options: CompileOptions | None) -> None:
        self.options = options or CompileOptions(device="cpu")
        self.kernels: dict[tuple, Kernel] = {}
        self.records: dict[int, ParamViews] = {}  # id(param) -> its views (params of the last step only)
        self.hyper: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}
        self.roots: dict[int, tuple[torch.Tensor, np.ndarray]] = {}  # exact_sqrt: id(param) -> sqrt buffer
        self.compiles = 0

    def kernel(self, key: tuple, build: Callable[[KernelBuilder], None]) -> Kernel:
        """The compiled kernel for `key`, compiled by `build` the first time."""
        k = self.kernels.get(key)
        if k is None:
            k = self.kernels[key] = Kernel(build, self.options)
            self.compiles += 1
        return k

    def root(self, p: torch.Tensor, src: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """A 1-D scratch tensor the size and dtype of `src` (and its numpy view) for torch.sqrt's result."""
        r = self.roots.get(id(p))
        if r is None or r[0].numel() != src.numel() or r[0].dtype != src.dtype:
            t = torch.empty(src.numel(), dtype=src.dtype)
            r = self.roots[id(p)] = (t, flat_view(t, "sqrt buffer", ""))
        return r

    def hyper_views(self, gi: int, values: tuple[float, ...]) -> list[np.ndarray]:
        """0-d float64 views (kernel inputs) holding group gi's current hyper-parameters."""
        h = self.hyper.get(gi)
        if h is None or h[0].size != len(values):
            a = np.zeros(len(values), np.float64)
            h = self.hyper[gi] = (a, [a[i:i + 1].reshape(()) for i in range(len(values))])
        h[0][:] = values
        return h[1]


class _CompiledStep:
    """The replaced step(): collect (kernel key, buffers) over the groups, compile once per key, run."""

    _suggestion = "use torch.optim's own optimizer for such tensors"

    def _init_compiled(self, compile_options: CompileOptions | None, kw: dict) -> None:
        for opt in ("differentiable", "capturable"):
            if kw.get(opt):
                raise ValueError(f"{type(self).__name__}({opt}=True) is not supported by the compiled step; "
                                 f"use torch.optim.{type(self).__name__}")
        self.__dict__["_compiled_rt"] = _Runtime(compile_options)
        self._step_supports_amp_scaling = False  # fused=True is accepted (the step is fused) but not AMP's path

    def _rt(self) -> _Runtime:
        rt = self.__dict__.get("_compiled_rt")
        if rt is None:
            rt = self.__dict__["_compiled_rt"] = _Runtime(None)
        return rt

    @property
    def compiles(self) -> int:
        """How many kernels this optimizer has compiled (lr changes never add one)."""
        return self._rt().compiles

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rt = self._rt()
        key, arrays = self._collect(rt)
        if arrays:
            self._run(rt, key, arrays)
        return loss

    def _run(self, rt: _Runtime, key: tuple, arrays: list[np.ndarray]) -> None:
        rt.kernel(key, lambda kb: self._build(kb, key)).run(arrays)

    def _collect(self, rt: _Runtime) -> tuple[tuple, list[np.ndarray]]:
        """The kernel key (per group: options and per-parameter specs) and the buffers in kernel order:
        per group its hyper-parameters, then per parameter: param, grad, state tensors."""
        key: list = []
        arrays: list[np.ndarray] = []
        records: dict[int, ParamViews] = {}
        for gi, group in enumerate(self.param_groups):
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                continue
            flags, hyper, names = self._group_spec(group)
            arrays += rt.hyper_views(gi, hyper)
            specs = []
            for p in ps:
                st, extra = self._ensure_state(p, group)
                tensors = [st[n] for n in names]
                rec = rt.records.get(id(p))
                if rec is None or not rec.valid(p, tensors):
                    i = next(i for i, q in enumerate(group["params"]) if q is p)
                    where = f"parameter {i} of param_groups[{gi}] ({tuple(p.shape)}, {p.dtype})"
                    rec = ParamViews(p, names, tensors, where, self._suggestion)
                records[id(p)] = rec
                arrays.append(rec.views[0])
                arrays.append(rec.grad(self._suggestion))
                arrays += rec.views[1:]
                specs.append(rec.spec + extra)
            key.append((flags, tuple(specs)))
        rt.records = records
        return tuple(key), arrays

    def _group_spec(self, group: dict) -> tuple[tuple, tuple[float, ...], tuple[str, ...]]:
        """(compile-time options, hyper-parameter values, names of the state tensors in kernel order)."""
        raise NotImplementedError

    def _ensure_state(self, p: torch.Tensor, group: dict) -> tuple[dict, tuple]:
        """torch's lazy state initialisation; returns the state and extra compile-time facts about it."""
        raise NotImplementedError

    def _build(self, kb: KernelBuilder, key: tuple) -> None:
        raise NotImplementedError


def _scalar_dtype(group: dict) -> torch.dtype:
    """The dtype torch gives state['step'] (torch.optim.optimizer._get_scalar_dtype)."""
    if group.get("fused") or torch.get_default_dtype() != torch.float64:
        return torch.float32
    return torch.float64


def _graphs(kb: KernelBuilder, cache: dict, gkey: tuple, make: Callable[..., Callable], options: tuple,
            args: list) -> None:
    """Call the subgraph for gkey (make(*options), traced on first use) with args."""
    g = cache.get(gkey)
    if g is None:
        g = cache[gkey] = kb.ir.create_graph(make(*options), *args)
    ops.call(g, *args)


class _AdamStep(_CompiledStep):
    """exact_sqrt=True (a constructor argument, or a param group's "exact_sqrt" key): take the square root
    with torch.sqrt between two compiled kernels, so the step is bit for bit torch's own; it reads and
    writes the state twice (about 1.6x the memory traffic of the fused step). Off by default."""

    _STATE = ("exp_avg", "exp_avg_sq", "step")

    def _init_exact_sqrt(self, exact_sqrt: bool) -> None:
        if exact_sqrt:  # only then in defaults and groups, so state_dicts stay exactly torch's otherwise
            self.defaults["exact_sqrt"] = True
            for group in self.param_groups:
                group.setdefault("exact_sqrt", True)

    def _group_spec(self, group: dict) -> tuple[tuple, tuple[float, ...], tuple[str, ...]]:
        b1, b2 = group["betas"]
        amsgrad = bool(group["amsgrad"])
        flags = (amsgrad, bool(group["maximize"]), group["weight_decay"] != 0,
                 bool(group.get("decoupled_weight_decay", isinstance(self, torch.optim.AdamW))),
                 bool(group.get("exact_sqrt", False)))
        hyper = tuple(float(x) for x in (group["lr"], b1, b2, group["eps"], group["weight_decay"]))
        return flags, hyper, self._STATE + (("max_exp_avg_sq",) if amsgrad else ())

    def _ensure_state(self, p: torch.Tensor, group: dict) -> tuple[dict, tuple]:
        st = self._state_for(p, group, bool(group["amsgrad"]))
        return st, (DTYPES[st["step"].dtype],)

    def _state_for(self, p: torch.Tensor, group: dict, amsgrad: bool) -> dict:
        """torch's lazy state initialisation (Adam._init_group), plus steps loaded as Python numbers."""
        st = self.state[p]
        if len(st) == 0:
            st["step"] = torch.tensor(0.0, dtype=_scalar_dtype(group))
            for k in self._STATE[:2]:
                st[k] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if amsgrad and "max_exp_avg_sq" not in st:
            st["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if not torch.is_tensor(st["step"]) or st["step"].dtype not in (torch.float32, torch.float64):
            st["step"] = torch.tensor(float(st["step"]), dtype=_scalar_dtype(group))
        return st

    def _build(self, kb: KernelBuilder, key: tuple) -> None:
        """The step for every group; groups with exact_sqrt stop before the square root (see _run)."""
        cache: dict = {}
        for gi, (flags, specs) in enumerate(key):
            hyper = [kb.buffer(f"g{gi}.{n}", (), F64) for n in ("lr", "beta1", "beta2", "eps", "weight_decay")]
            for i, (shape, dt, sdt) in enumerate(specs):
                bufs = [kb.buffer(f"g{gi}.{n}{i}", shape, dt) for n in ("param", "grad", "exp_avg", "exp_avg_sq")]
                bufs.append(kb.buffer(f"g{gi}.step{i}", (), sdt))
                if flags[0]:
                    bufs.append(kb.buffer(f"g{gi}.max_exp_avg_sq{i}", shape, dt))
                _graphs(kb, cache, (flags, shape, dt, sdt), _adam_graph, flags, bufs + hyper)

    def _build_update(self, kb: KernelBuilder, key: tuple) -> None:
        """exact_sqrt groups, second half: the parameter update from exp_avg, step and torch's square root."""
        cache: dict = {}
        for gi, (flags, specs) in enumerate(key):
            if not flags[4]:
                continue
            hyper = [kb.buffer(f"g{gi}.{n}", (), F64) for n in ("lr", "beta1", "beta2", "eps", "weight_decay")]
            for i, (shape, dt, sdt) in enumerate(specs):
                bufs = [kb.buffer(f"g{gi}.{n}{i}", shape, dt) for n in ("param", "exp_avg", "sqrt")]
                bufs.append(kb.buffer(f"g{gi}.step{i}", (), sdt))
                _graphs(kb, cache, (shape, dt, sdt), lambda: _adam_update, (), bufs + hyper)

    def _run(self, rt: _Runtime, key: tuple, arrays: list[np.ndarray]) -> None:
        """exact_sqrt groups run in three parts: the compiled moments, torch.sqrt (MKL's vsSqrt in torch's
        CPU builds, which is not correctly rounded; the compiled sqrt is), the compiled parameter update."""
        rt.kernel(key, lambda kb: self._build(kb, key)).run(arrays)
        if not any(flags[4] for flags, _ in key):
            return
        second: list[np.ndarray] = []
        for gi, group in enumerate(self.param_groups):
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps or not group.get("exact_sqrt", False):
                continue
            second += rt.hyper[gi][1]
            for p in ps:
                rec = rt.records[id(p)]
                st = self.state[p]
                src = st["max_exp_avg_sq"] if group["amsgrad"] else st["exp_avg_sq"]
                root, view = rt.root(p, src)
                torch.sqrt(dense_order(src).reshape(-1), out=root)
                second += [rec.views[0], rec.views[1], view, rec.views[3]]
        rt.kernel(("update",) + key, lambda kb: self._build_update(kb, key)).run(second)
        if len(rt.roots) > len(rt.records):  # forget the buffers of parameters no longer stepped
            rt.roots = {k: r for k, r in rt.roots.items() if k in rt.records}


def _adam_graph(amsgrad: bool, maximize: bool, weight_decay: bool, decoupled: bool, exact_sqrt: bool) -> Callable:
    opts = dict(maximize=maximize, weight_decay=weight_decay, decoupled=decoupled)
    if exact_sqrt:
        return _adam_moments_graph(amsgrad, opts)
    if amsgrad:
        def adam_amsgrad(p: TensorByRef, g: Tensor, m: TensorByRef, v: TensorByRef, step: TensorByRef,
                         vmax: TensorByRef, lr: Tensor, b1: Tensor, b2: Tensor, eps: Tensor, wd: Tensor) -> None:
            aten.adam_step(p, g, m, v, step, vmax, (lr, b1, b2, eps, wd), **opts)
        return adam_amsgrad

    def adam(p: TensorByRef, g: Tensor, m: TensorByRef, v: TensorByRef, step: TensorByRef, lr: Tensor,
             b1: Tensor, b2: Tensor, eps: Tensor, wd: Tensor) -> None:
        aten.adam_step(p, g, m, v, step, None, (lr, b1, b2, eps, wd), **opts)
    return adam


def _adam_moments_graph(amsgrad: bool, opts: dict) -> Callable:
    """exact_sqrt, first half: step, exp_avg, exp_avg_sq (max_exp_avg_sq) and AdamW's decay of the parameter."""
    def moments(p, g, m, v, step, vmax, lr, b1, b2, eps, wd):
        param, _, _, _ = aten.adam_moments(p, g, m, v, step, vmax, (lr, b1, b2, eps, wd), **opts)
        if param is not p:
            ops.var_updates.copy_var_update_(p, param)
    if amsgrad:
        def adam_moments_amsgrad(p: TensorByRef, g: Tensor, m: TensorByRef, v: TensorByRef, step: TensorByRef,
                                 vmax: TensorByRef, lr: Tensor, b1: Tensor, b2: Tensor, eps: Tensor, wd: Tensor) -> None:
            moments(p, g, m, v, step, vmax, lr, b1, b2, eps, wd)
        return adam_moments_amsgrad

    def adam_moments(p: TensorByRef, g: Tensor, m: TensorByRef, v: TensorByRef, step: TensorByRef, lr: Tensor,
                     b1: Tensor, b2: Tensor, eps: Tensor, wd: Tensor) -> None:
        moments(p, g, m, v, step, None, lr, b1, b2, eps, wd)
    return adam_moments


def _adam_update(p: TensorByRef, m: Tensor, root: Tensor, step: Tensor, lr: Tensor, b1: Tensor, b2: Tensor,
                 eps: Tensor, wd: Tensor) -> None:
    """exact_sqrt, second half: p.addcdiv_(exp_avg, root / bias_correction2_sqrt + eps, value=-step_size)."""
    ops.var_updates.copy_var_update_(p, aten.adam_param(p, m, root, step, (lr, b1, b2, eps, wd)))


class Adam(_AdamStep, torch.optim.Adam):
    """torch.optim.Adam with a compiled step (same arguments; `compile_options` picks passes/backend)."""

    _suggestion = "use torch.optim.Adam for such tensors"

    def __init__(self, params: Any, *args: Any, compile_options: CompileOptions | None = None,
                 exact_sqrt: bool = False, **kw: Any) -> None:
        torch.optim.Adam.__init__(self, params, *args, **kw)
        self._init_compiled(compile_options, kw)
        self._init_exact_sqrt(exact_sqrt)


class AdamW(_AdamStep, torch.optim.AdamW):
    """torch.optim.AdamW (decoupled weight decay, amsgrad) with a compiled step."""

    _suggestion = "use torch.optim.AdamW for such tensors"

    def __init__(self, params: Any, *args: Any, compile_options: CompileOptions | None = None,
                 exact_sqrt: bool = False, **kw: Any) -> None:
        torch.optim.AdamW.__init__(self, params, *args, **kw)
        self._init_compiled(compile_options, kw)
        self._init_exact_sqrt(exact_sqrt)


class SGD(_CompiledStep, torch.optim.SGD):
    """torch.optim.SGD (momentum, dampening, nesterov, weight decay, maximize) with a compiled step."""

    _suggestion = "use torch.optim.SGD for such tensors"

    def __init__(self, params: Any, *args: Any, compile_options: CompileOptions | None = None, **kw: Any) -> None:
        torch.optim.SGD.__init__(self, params, *args, **kw)
        self._init_compiled(compile_options, kw)

    def _group_spec(self, group: dict) -> tuple[tuple, tuple[float, ...], tuple[str, ...]]:
        momentum = group["momentum"] != 0
        flags = (momentum, bool(group["nesterov"]), bool(group["maximize"]), group["weight_decay"] != 0)
        hyper = tuple(float(group[k]) for k in ("lr", "momentum", "dampening", "weight_decay"))
        return flags, hyper, ("momentum_buffer",) if momentum else ()

    def _ensure_state(self, p: torch.Tensor, group: dict) -> tuple[dict, tuple]:
        """A new momentum buffer is a copy of the gradient; zeros then the usual update give exactly that
        when dampening is 0, so only a dampened group needs a first-step kernel."""
        st = self.state[p]
        first = False
        if group["momentum"] != 0 and st.get("momentum_buffer") is None:
            st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            first = group["dampening"] != 0
        return st, (first,)

    def _build(self, kb: KernelBuilder, key: tuple) -> None:
        cache: dict = {}
        for gi, (flags, specs) in enumerate(key):
            hyper = [kb.buffer(f"g{gi}.{n}", (), F64) for n in ("lr", "momentum", "dampening", "weight_decay")]
            for i, (shape, dt, first) in enumerate(specs):
                bufs = [kb.buffer(f"g{gi}.{n}{i}", shape, dt) for n in ("param", "grad")]
                if flags[0]:
                    bufs.append(kb.buffer(f"g{gi}.momentum_buffer{i}", shape, dt))
                _graphs(kb, cache, (flags, shape, dt, first), _sgd_graph, (*flags, first), bufs + hyper)


def _sgd_graph(momentum: bool, nesterov: bool, maximize: bool, weight_decay: bool, first: bool) -> Callable:
    opts = dict(maximize=maximize, weight_decay=weight_decay, nesterov=nesterov, first=first)
    if momentum:
        def sgd_momentum(p: TensorByRef, g: Tensor, buf: TensorByRef, lr: Tensor, mom: Tensor, damp: Tensor,
                         wd: Tensor) -> None:
            aten.sgd_step(p, g, buf, (lr, mom, damp, wd), **opts)
        return sgd_momentum

    def sgd(p: TensorByRef, g: Tensor, lr: Tensor, mom: Tensor, damp: Tensor, wd: Tensor) -> None:
        aten.sgd_step(p, g, None, (lr, mom, damp, wd), **opts)
    return sgd
