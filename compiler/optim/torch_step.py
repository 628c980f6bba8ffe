"""The compiled step() shared by the torch.optim drop-ins (compiler/optim/torch.py).

`CompiledStep.step` collects, over the param groups, a kernel key (per group: compile-time options
and per-parameter specs) and the buffers in kernel order (zero-copy numpy views of the parameters,
gradients and state), compiles one kernel per distinct key, and runs it. Subclasses say what a group
needs (`_group_spec`, `_ensure_state`) and build the kernel (`_build`); `Runtime` keeps what lives
between steps. torch is needed to import this module.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch.autograd import _profiler_enabled

from compiler.driver import CompileOptions
from compiler.ops.builder import Handle

from .kernels import Kernel, KernelBuilder
from .step_plan import StepPlan
from .tensor_views import ParamViews, flat_view

# what a slow step bound, for a StepPlan: per stepped group (group, options, hyper array), the
# parameters with a gradient, their state names, and where each one's gradient is in the buffers
Layout = tuple[list[tuple[dict, tuple, np.ndarray]], list[torch.Tensor], list[tuple[str, ...]], list[int]]


class Runtime:
    """What a drop-in keeps between steps (rebuilt lazily after copy/pickle, which keep torch's fields only)."""

    def __init__(self, options: CompileOptions | None) -> None:
        # level 3: the per-parameter updates become one MultiKernel launch whose groups spread over all
        # threads; right after a torch backward it took 10-20% less time than level 2's split of the
        # calls in every interleaved run we made (the MLP and conv net of benchmarks/torch_loop.py)
        self.options = options or CompileOptions(device="cpu", level=3)
        self.kernels: dict[tuple, Kernel] = {}
        self.records: dict[int, ParamViews] = {}  # id(param) -> its views (params of the last step only)
        self.hyper: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}
        self.roots: dict[int, tuple[torch.Tensor, np.ndarray]] = {}  # exact_sqrt: id(param) -> sqrt buffer
        self.compiles = 0
        self.plan: StepPlan | None = None  # the steady-state step (step_plan.py), once there is one
        self.last_key: tuple | None = None
        self.slow_steps = 0  # steps that went through _collect (tests check the fast path is taken)

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


class CompiledStep:
    """The replaced step(): collect (kernel key, buffers) over the groups, compile once per key, run."""

    _suggestion = "use torch.optim's own optimizer for such tensors"

    def _init_compiled(self, compile_options: CompileOptions | None, kw: dict) -> None:
        for opt in ("differentiable", "capturable"):
            if kw.get(opt):
                raise ValueError(f"{type(self).__name__}({opt}=True) is not supported by the compiled step; "
                                 f"use torch.optim.{type(self).__name__}")
        self.__dict__["_compiled_rt"] = Runtime(compile_options)
        self._step_supports_amp_scaling = False  # fused=True is accepted (the step is fused) but not AMP's path

    def _rt(self) -> Runtime:
        rt = self.__dict__.get("_compiled_rt")
        if rt is None:
            rt = self.__dict__["_compiled_rt"] = Runtime(None)
        return rt

    @property
    def compiles(self) -> int:
        """How many kernels this optimizer has compiled (lr changes never add one)."""
        return self._rt().compiles

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """torch.optim's step(): hooks and profiler range as torch's own wrapper gives them (see _hooked)."""
        if (_profiler_enabled() or self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or _GLOBAL_HOOKS is None or any(_GLOBAL_HOOKS)):
            return _hooked(self, closure)
        return self._plain_step(closure)

    step.hooked = True  # type: ignore[attr-defined]  # torch's Optimizer.__init__ must not wrap it again

    @torch._disable_dynamo
    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch's zero_grad; set_to_none=True with torch's profiler off skips its profiler range. Right after
        our step (which skips torch's wrapper, see _hooked) that range's code is cold, and torch's zero_grad
        then took ~35 us more than after torch's own step (the MLP of benchmarks/torch_loop.py)."""
        if not set_to_none or _profiler_enabled():
            return super().zero_grad(set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None

    def _plain_step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is None:  # the steady state: no torch op runs, so no grad-mode switch either
            plan = self._rt().plan
            if plan is not None and plan.step(self, self._group_spec):
                return None
        return self._step(closure)

    @torch.no_grad()
    def _step(self, closure: Callable[[], Any] | None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rt = self._rt()
        if closure is not None and rt.plan is not None and rt.plan.step(self, self._group_spec):
            return loss
        rt.plan = None
        rt.slow_steps += 1
        key, arrays, layout = self._collect(rt)
        if arrays:
            self._run(rt, key, arrays)
            if key == rt.last_key and self._fast_path(key):
                rt.plan = self._plan(rt, key, arrays, layout)
        rt.last_key = key
        return loss

    def _fast_path(self, key: tuple) -> bool:
        """May steps with this key run through a StepPlan (one kernel call, no work in Python between)?"""
        return True

    def _plan(self, rt: Runtime, key: tuple, arrays: list[np.ndarray], layout: Layout) -> StepPlan | None:
        """The plan for the steps after this one, or None when the step cannot be one bound call: a
        backend without pointer tables, a gradient read through a copy, an empty gradient."""
        kernel = rt.kernels[key]
        bind = getattr(kernel.exe, "bind", None)
        groups, params, names, grad_at = layout
        if bind is None or any(arrays[i].size == 0 or arrays[i].ctypes.data != p.grad.data_ptr()
                               for i, p in zip(grad_at, params)):
            return None
        vids = kernel.vids
        bound = bind(dict(zip(vids, arrays)), [vids[i] for i in grad_at])
        return StepPlan(self, bound, groups, params, names)

    def _run(self, rt: Runtime, key: tuple, arrays: list[np.ndarray]) -> None:
        rt.kernel(key, lambda kb: self._build(kb, key)).run(arrays)

    def _collect(self, rt: Runtime) -> tuple[tuple, list[np.ndarray], Layout]:
        """The kernel key (per group: options and per-parameter specs), the buffers in kernel order
        (per group its hyper-parameters, then per parameter: param, grad, state tensors) and where
        things are in them (for a StepPlan)."""
        key: list = []
        arrays: list[np.ndarray] = []
        records: dict[int, ParamViews] = {}
        layout: Layout = ([], [], [], [])
        for gi, group in enumerate(self.param_groups):
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                continue
            flags, hyper, names = self._group_spec(group)
            arrays += rt.hyper_views(gi, hyper)
            layout[0].append((group, flags, rt.hyper[gi][0]))
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
                layout[1].append(p)
                layout[2].append(names)
                layout[3].append(len(arrays))
                arrays.append(rec.grad(self._suggestion))
                arrays += rec.views[1:]
                specs.append(rec.spec + extra)
            key.append((flags, tuple(specs)))
        rt.records = records
        return tuple(key), arrays, layout

    def _group_spec(self, group: dict) -> tuple[tuple, tuple[float, ...], tuple[str, ...]]:
        """(compile-time options, hyper-parameter values, names of the state tensors in kernel order)."""
        raise NotImplementedError

    def _ensure_state(self, p: torch.Tensor, group: dict) -> tuple[dict, tuple]:
        """torch's lazy state initialisation; returns the state and extra compile-time facts about it."""
        raise NotImplementedError

    def _build(self, kb: KernelBuilder, key: tuple) -> None:
        raise NotImplementedError


# torch installs Optimizer.profile_hook_step around every optimizer's step(): a profiler range
# (record_function) and the step pre/post hooks. Right after a backward its record_function alone
# cost about as much as our whole steady-state step (benchmarks/torch_step_profile.py: ~75-95 us of
# a ~220 us step on the conv net, torch fused's and ours alike). So CompiledStep.step goes through
# torch's own wrapper only when it has something to do: a hook is registered (on this optimizer or
# globally) or torch's profiler is on (torch.profiler.profile / torch.autograd.profiler.profile),
# and the profile then shows "Optimizer.step#AdamW.step" as for torch's optimizers. What does not see
# that range: RecordFunction observers registered from C++ only (at::addGlobalCallback) while no
# profiler runs. If torch moves its global hook dicts, every step takes the wrapper.
_hooked = torch.optim.Optimizer.profile_hook_step(CompiledStep._plain_step)
_GLOBAL_HOOKS: tuple[dict, dict] | None = None
try:
    from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

    _GLOBAL_HOOKS = (_global_optimizer_pre_hooks, _global_optimizer_post_hooks)
except ImportError:  # another torch layout: correct, only slower
    pass


def scalar_dtype(group: dict) -> torch.dtype:
    """The dtype torch gives state['step'] (torch.optim.optimizer._get_scalar_dtype)."""
    if group.get("fused") or torch.get_default_dtype() != torch.float64:
        return torch.float32
    return torch.float64


def call_graph(kb: KernelBuilder, cache: dict, gkey: tuple, name: str, inputs: str, body: Callable[..., None],
               args: list[Handle]) -> None:
    """Call the subgraph for gkey with args. The first call builds it: graph `name` with one input per
    word of `inputs` ("p& g lr": `&` marks an input passed by reference, which the graph updates in
    the caller's buffer), of its argument's spec, and `body(*inputs)` emits its ops."""
    sub = cache.get(gkey)
    if sub is None:
        sub = cache[gkey] = kb.builder.subgraph(name)
        words = inputs.split()
        if len(words) != len(args):
            raise ValueError(f"call_graph({name!r}): {len(words)} inputs named for {len(args)} arguments")
        body(*[sub.input(w.rstrip("&"), a.spec, by_ref=w.endswith("&")) for w, a in zip(words, args)])
    kb.main.call(sub, args)
