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
After two steps with the same kernel, a step is one native call over a pointer table bound once
(step_plan.py): it re-checks only what could invalidate the binding (groups, parameter pointers and
versions, state tensors, gradients' layout; gradients may move) and falls back to the full path, which
rebinds or raises, when something changed. Inside a training loop the fixed cost per step is a fraction
of torch's fused Adam's (GradScaler, clip_grad_norm_, zero_grad either way, torch.compile'd models and
channels_last weights are covered by tests/optim/test_torch_loop.py). torch's profiling/hook wrapper
around step() runs only when it has something to do (a step hook, torch's profiler): torch_step.py.
The arithmetic is torch's own, op for op (see compiler/optim/aten.py); the one difference is Adam's
square root, which torch's CPU build takes from MKL (not correctly rounded). `Adam(...,
exact_sqrt=True)` calls torch.sqrt between two compiled kernels instead, and is then bit for bit
torch.optim.Adam, at about twice the fused step's time.

CPU tensors only; sparse gradients, complex parameters and non-dense parameters raise
UnsupportedTensorError (a RuntimeError and ValueError) naming the tensor. Gradients laid out
differently from their parameter are copied to its layout first (the one documented copy).
torch is needed to import this module; importing compiler.optim does not import torch.
The machinery: torch_step.py (the compiled step shared by all three), step_plan.py (its steady state),
torch_adam.py (Adam/AdamW's kernels). `compile_step(model, loss_fn, opt)` (torch_train.py) compiles a
whole training step (forward, loss, backward and this update, fused into the weight-gradient matmuls).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from compiler.driver import CompileOptions
from compiler.ir import DType
from compiler.ops.builder import Handle

from . import aten
from .kernels import KernelBuilder
from .tensor_views import UnsupportedTensorError
from .torch_adam import AdamStep
from .torch_step import CompiledStep, call_graph

__all__ = ["Adam", "AdamW", "SGD", "TrainStep", "UnsupportedTensorError", "compile_step"]
F64 = DType.float64


class Adam(AdamStep, torch.optim.Adam):
    """torch.optim.Adam with a compiled step (same arguments; `compile_options` picks passes/backend)."""

    _suggestion = "use torch.optim.Adam for such tensors"

    def __init__(self, params: Any, *args: Any, compile_options: CompileOptions | None = None,
                 exact_sqrt: bool = False, **kw: Any) -> None:
        torch.optim.Adam.__init__(self, params, *args, **kw)
        self._init_compiled(compile_options, kw)
        self._init_exact_sqrt(exact_sqrt)


class AdamW(AdamStep, torch.optim.AdamW):
    """torch.optim.AdamW (decoupled weight decay, amsgrad) with a compiled step."""

    _suggestion = "use torch.optim.AdamW for such tensors"

    def __init__(self, params: Any, *args: Any, compile_options: CompileOptions | None = None,
                 exact_sqrt: bool = False, **kw: Any) -> None:
        torch.optim.AdamW.__init__(self, params, *args, **kw)
        self._init_compiled(compile_options, kw)
        self._init_exact_sqrt(exact_sqrt)


class SGD(CompiledStep, torch.optim.SGD):
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
                call_graph(kb, cache, (flags, shape, dt, first), *_sgd_graph(*flags, first), bufs + hyper)


def _sgd_graph(momentum: bool, nesterov: bool, maximize: bool, weight_decay: bool, first: bool
               ) -> tuple[str, str, Callable[..., None]]:
    """The subgraph of one parameter's step: (name, its inputs, `&` by reference; the body)."""
    opts = dict(maximize=maximize, weight_decay=weight_decay, nesterov=nesterov, first=first)
    if momentum:
        def sgd_momentum(p: Handle, g: Handle, buf: Handle, lr: Handle, mom: Handle, damp: Handle,
                         wd: Handle) -> None:
            aten.sgd_step(p, g, buf, (lr, mom, damp, wd), **opts)
        return "sgd_momentum", "p& g buf& lr mom damp wd", sgd_momentum

    def sgd(p: Handle, g: Handle, lr: Handle, mom: Handle, damp: Handle, wd: Handle) -> None:
        aten.sgd_step(p, g, None, (lr, mom, damp, wd), **opts)
    return "sgd", "p& g lr mom damp wd", sgd


# at the end: torch_train reads _sgd_graph from this module when it builds a step
from .torch_train import TrainStep, compile_step  # noqa: E402
