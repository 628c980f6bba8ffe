"""torch.optim.Adam / AdamW's compiled step (the drop-ins are in compiler/optim/torch.py): one subgraph
per distinct (size, dtype, options) following `_single_tensor_adam` op for op (compiler/optim/aten.py),
and the exact_sqrt variant that takes the square root with torch.sqrt between two kernels."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from compiler.ir import DType
from compiler.ops import builder as ops
from compiler.ops.builder import Handle

from . import aten
from .kernels import KernelBuilder
from .tensor_views import DTYPES, dense_order
from .torch_step import CompiledStep, Runtime, call_graph, scalar_dtype

F64 = DType.float64


class AdamStep(CompiledStep):
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

    def _fast_path(self, key: tuple) -> bool:
        return not any(flags[4] for flags, _ in key)  # exact_sqrt calls torch.sqrt between two kernels

    def _ensure_state(self, p: torch.Tensor, group: dict) -> tuple[dict, tuple]:
        st = self._state_for(p, group, bool(group["amsgrad"]))
        return st, (DTYPES[st["step"].dtype],)

    def _state_for(self, p: torch.Tensor, group: dict, amsgrad: bool) -> dict:
        """torch's lazy state initialisation (Adam._init_group), plus steps loaded as Python numbers."""
        st = self.state[p]
        if len(st) == 0:
            st["step"] = torch.tensor(0.0, dtype=scalar_dtype(group))
            for k in self._STATE[:2]:
                st[k] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if amsgrad and "max_exp_avg_sq" not in st:
            st["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if not torch.is_tensor(st["step"]) or st["step"].dtype not in (torch.float32, torch.float64):
            st["step"] = torch.tensor(float(st["step"]), dtype=scalar_dtype(group))
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
                call_graph(kb, cache, (flags, shape, dt, sdt), *_adam_graph(*flags), bufs + hyper)

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
                call_graph(kb, cache, (shape, dt, sdt), "adam_update", "p& m root step lr b1 b2 eps wd", _adam_update,
                           bufs + hyper)

    def _run(self, rt: Runtime, key: tuple, arrays: list[np.ndarray]) -> None:
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
                second += [rec.views[0], rec.views[1], view.reshape(rec.views[0].shape), rec.views[3]]  # 0-d: ()
        rt.kernel(("update",) + key, lambda kb: self._build_update(kb, key)).run(second)
        if len(rt.roots) > len(rt.records):  # forget the buffers of parameters no longer stepped
            rt.roots = {k: r for k, r in rt.roots.items() if k in rt.records}


# a subgraph of one parameter's step: (name, its inputs with `&` marking those passed by reference, body)
Subgraph = tuple[str, str, Callable[..., None]]
_ADAM_INPUTS = "p& g m& v& step& {}lr b1 b2 eps wd"


def _adam_graph(amsgrad: bool, maximize: bool, weight_decay: bool, decoupled: bool, exact_sqrt: bool) -> Subgraph:
    opts = dict(maximize=maximize, weight_decay=weight_decay, decoupled=decoupled)
    if exact_sqrt:
        return _adam_moments_graph(amsgrad, opts)
    if amsgrad:
        def adam_amsgrad(p: Handle, g: Handle, m: Handle, v: Handle, step: Handle, vmax: Handle, lr: Handle,
                         b1: Handle, b2: Handle, eps: Handle, wd: Handle) -> None:
            aten.adam_step(p, g, m, v, step, vmax, (lr, b1, b2, eps, wd), **opts)
        return "adam_amsgrad", _ADAM_INPUTS.format("vmax& "), adam_amsgrad

    def adam(p: Handle, g: Handle, m: Handle, v: Handle, step: Handle, lr: Handle, b1: Handle, b2: Handle,
             eps: Handle, wd: Handle) -> None:
        aten.adam_step(p, g, m, v, step, None, (lr, b1, b2, eps, wd), **opts)
    return "adam", _ADAM_INPUTS.format(""), adam


def _adam_moments_graph(amsgrad: bool, opts: dict) -> Subgraph:
    """exact_sqrt, first half: step, exp_avg, exp_avg_sq (max_exp_avg_sq) and AdamW's decay of the parameter."""
    def moments(p, g, m, v, step, vmax, lr, b1, b2, eps, wd):
        param, _, _, _ = aten.adam_moments(p, g, m, v, step, vmax, (lr, b1, b2, eps, wd), **opts)
        if param is not p:
            ops.copy_(p, param)
    if amsgrad:
        return "adam_moments_amsgrad", _ADAM_INPUTS.format("vmax& "), moments

    def adam_moments(p: Handle, g: Handle, m: Handle, v: Handle, step: Handle, lr: Handle, b1: Handle,
                     b2: Handle, eps: Handle, wd: Handle) -> None:
        moments(p, g, m, v, step, None, lr, b1, b2, eps, wd)
    return "adam_moments", _ADAM_INPUTS.format(""), adam_moments


def _adam_update(p: Handle, m: Handle, root: Handle, step: Handle, lr: Handle, b1: Handle, b2: Handle,
                 eps: Handle, wd: Handle) -> None:
    """exact_sqrt, second half: p.addcdiv_(exp_avg, root / bias_correction2_sqrt + eps, value=-step_size)."""
    ops.copy_(p, aten.adam_param(p, m, root, step, (lr, b1, b2, eps, wd)))
