"""A whole torch training step compiled as one program: forward, loss, backward and the drop-in's update.

    from compiler.optim.torch import Adam, compile_step
    opt = Adam(model.parameters(), lr=1e-3)
    step = compile_step(model, nn.CrossEntropyLoss(), opt)
    loss = step(x, y)          # one native call: what loss.backward(); opt.step() would do, as a float

The drop-in optimizers (compiler/optim/torch.py) only ever see gradients torch's autograd computed, so
their update can never meet a matmul of ours. Here the backward is ours too: a Linear layer's weight
gradient dW = dy^T x is a MatMul whose only reader is the drop-in's own per-parameter update subgraph
(the same `call_graph` key and body as its step(), so the arithmetic is the drop-in's, aten-faithful),
and the pipeline (inline_weight_updates, fuse_elementwise, fuse_matmul_epilogue) runs the update on each
dW tile inside the matmul: the weight gradient is never written.

What it compiles (anything else raises, naming what and where): an nn.Sequential (nested allowed) of
nn.Flatten (default dims), nn.Linear (with or without bias), nn.ReLU, nn.Tanh and nn.GELU ("none" or
"tanh"); float32 contiguous CPU parameters; nn.CrossEntropyLoss (mean, integer class targets, no class
weights, no label smoothing) or nn.MSELoss (mean); the drop-ins Adam, AdamW and SGD (not exact_sqrt).

Buffers are caller-owned (kernels.py): zero-copy numpy views of the parameters, of the optimizer state
(created as the drop-in's step() creates it, so optimizer.state and state_dict() are torch's), of x
and y. Parameters and state are updated in place in torch's memory. `p.grad` is never written: the
gradient never exists in memory. Hyper-parameters are read from param_groups at every call (float64
kernel inputs: an lr scheduler works without recompiling); a kernel is compiled per distinct batch
shape and optimizer options. Parameters that are frozen (requires_grad=False) or not in the
optimizer are not updated, as with loss.backward(); opt.step(). The model's layers are read once, by
compile_step (compile again after changing its structure); the optimizer's step hooks are not run.
The model's side (layers, loss, forward and backward IR) is torch_train_model.py; from the third step
with the same kernel, a step is one native call over a pointer table bound once (torch_train_plan.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np
import torch
from torch import nn

from compiler.driver import CompileOptions
from compiler.ir import DType
from compiler.ops.builder import Handle

from .kernels import Kernel, KernelBuilder
from .tensor_views import flat_view
from .torch_adam import AdamStep, _adam_graph
from .torch_step import CompiledStep, call_graph
from .torch_train_model import check_loss, forward_backward, layers_of
from .torch_train_plan import TrainPlan

F32 = DType.float32


def _update_graph(opt: CompiledStep, flags: tuple, shape: tuple, dt: DType, extra: tuple) -> tuple:
    """(the drop-in's call_graph key, its subgraph (name, inputs, body)) for one parameter."""
    if isinstance(opt, AdamStep):
        return (flags, shape, dt) + extra, _adam_graph(*flags)
    from .torch import _sgd_graph  # here, not at the top: compiler.optim.torch imports this module
    return (flags, shape, dt) + extra, _sgd_graph(*flags, *extra)


@dataclass
class Trained:
    """A model parameter the step updates: where it is in the optimizer and its state tensors' names."""

    param: torch.Tensor
    where: str
    group: int
    names: tuple[str, ...]


class TrainStep:
    """`step(x, y)` runs one compiled training step and returns the loss as a float (see the module doc)."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, optimizer: Any,
                 options: CompileOptions | None = None) -> None:
        self.layers = layers_of(model)
        self.loss = check_loss(loss_fn)
        if not isinstance(optimizer, CompiledStep):
            name = type(optimizer).__name__
            raise TypeError(f"compile_step needs a drop-in optimizer of compiler.optim.torch (Adam, AdamW, SGD), "
                            f"got {type(optimizer).__module__}.{name}: use compiler.optim.torch.{name} with the "
                            "same arguments (its update is what the compiled step calls)")
        self.optimizer = optimizer
        self.options = options or CompileOptions(device="cpu")
        self.kernels: dict[tuple, Kernel] = {}
        self.kernel: Kernel | None = None  # the last one run (tests read its program)
        self._loss = np.zeros((), np.float32)
        self._plan: TrainPlan | None = None  # the steady-state step (torch_train_plan.py), once there is one
        self._last_key: tuple | None = None
        self.slow_steps = 0  # steps that checked and bound everything (tests check the plan is taken)
        seen: dict[int, str] = {}
        for layer in self.layers:
            for name, p in layer.module.named_parameters(recurse=False):
                where = f"{layer.path}.{name}"
                if id(p) in seen:  # its gradient would be a sum of several matmuls, and it bound twice
                    raise ValueError(f"{where} is the same parameter as {seen[id(p)]} (a module used twice or "
                                     "tied weights): compile_step does not support shared parameters; train "
                                     "this model with loss.backward() and opt.step()")
                seen[id(p)] = where
                if p.dtype != torch.float32 or p.device.type != "cpu":
                    raise TypeError(f"{where} is {p.dtype} on {p.device}: compile_step trains float32 CPU "
                                    "parameters only; convert the model with model.float().cpu()")

    @property
    def compiles(self) -> int:
        return len(self.kernels)

    def _trained(self) -> dict[int, Trained]:
        """id(param) -> how it is trained, for the model's parameters that the optimizer steps."""
        place = {id(p): gi for gi, g in enumerate(self.optimizer.param_groups) for p in g["params"]}
        out = {}
        for layer in self.layers:
            for name, p in layer.module.named_parameters(recurse=False):
                gi = place.get(id(p))
                if gi is None or not p.requires_grad:
                    continue
                group = self.optimizer.param_groups[gi]
                if group.get("exact_sqrt"):
                    raise ValueError(f"{layer.path}.{name} is in a param group with exact_sqrt=True, which calls "
                                     "torch.sqrt between two kernels: compile_step fuses the update, so use "
                                     "exact_sqrt=False (the default)")
                out[id(p)] = Trained(p, f"{layer.path}.{name}", gi, self.optimizer._group_spec(group)[2])
        return out

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> float:
        opt = self.optimizer
        xa, ya = self._inputs(x, y)
        if self._plan is None or not self._plan.step(opt, xa, ya):
            self._slow_step(xa, ya)
        # what torch's lr schedulers look for to know the optimizer stepped (else they warn that
        # scheduler.step() came before optimizer.step())
        opt._opt_called = True
        return float(self._loss)

    def _slow_step(self, xa: np.ndarray, ya: np.ndarray) -> None:
        """Check and bind everything, compile the kernel if it is new, run it; plan the steps after it."""
        opt = self.optimizer
        self._plan = None
        self.slow_steps += 1
        trained = self._trained()
        # what the kernel binds, in declaration order: (name, array); the kernel key is what it compiles
        bound: list[tuple[str, np.ndarray]] = [("x", xa), ("y", ya), ("loss", self._loss)]
        groups = sorted({t.group for t in trained.values()})
        flags_of: dict[int, tuple] = {}
        hypers = []
        for gi in groups:
            flags, hyper, _ = opt._group_spec(opt.param_groups[gi])
            flags_of[gi] = flags
            h = np.array(hyper, np.float64)  # the kernel's float64 inputs, one 0-d view each
            hypers.append((gi, flags, h))
            bound += [(f"param_groups[{gi}].h{j}", h[j:j + 1].reshape(())) for j in range(len(hyper))]
        specs: list[tuple] = []  # per model parameter: None (not stepped) or (group, state names, extras)
        params, tensors, state = [], [], []
        for layer in self.layers:
            for name, p in layer.module.named_parameters(recurse=False):
                where = f"{layer.path}.{name}"
                bound.append((where, _view(p, where)))
                params.append(p)
                tensors.append(p)
                t = trained.get(id(p))
                if t is None:
                    specs.append(None)
                    continue
                st, extra = opt._ensure_state(p, opt.param_groups[t.group])
                bound += [(f"{where}.{n}", _view(st[n], f"optimizer.state[{where}][{n!r}]")) for n in t.names]
                tensors += [st[n] for n in t.names]
                state += [(p, n, st[n]) for n in t.names]
                specs.append((t.group, t.names, extra))
        key = (tuple((a.shape, a.dtype.str) for _, a in bound), tuple(flags_of.items()), tuple(specs))
        k = self.kernels.get(key)
        if k is None:
            k = self.kernels[key] = Kernel(lambda kb: self._build(kb, bound, flags_of, specs), self.options)
        self.kernel = k
        arrays = [a for _, a in bound]
        k.run(arrays)
        bind = getattr(k.exe, "bind", None)  # native code has pointer tables; the interpreter has none
        if key == self._last_key and bind is not None:
            run = bind(dict(zip(k.vids, arrays)), k.vids[:2])  # x and y may move from step to step
            self._plan = TrainPlan(run, opt, params, tensors, state, hypers, xa, ya)
        self._last_key = key

    def _inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Views of x and y, checked against the model and the loss (a non-contiguous one is copied)."""
        if not (torch.is_tensor(x) and x.dtype == torch.float32 and x.device.type == "cpu"):
            raise TypeError(f"x must be a float32 CPU tensor, got {_describe(x)}")
        shape = self._output_shape(tuple(x.shape))
        if self.loss == "ce":
            if not (torch.is_tensor(y) and y.dtype == torch.int64 and tuple(y.shape) == shape[:1]):
                raise ValueError(f"y must be an int64 CPU tensor of class indices of shape {shape[:1]} for "
                                 f"nn.CrossEntropyLoss, got {_describe(y)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= shape[1]):
                raise IndexError(f"y holds a class index outside [0, {shape[1]}) (min {int(y.min())}, max "
                                 f"{int(y.max())}): the model has {shape[1]} outputs")
        elif not (torch.is_tensor(y) and y.dtype == torch.float32 and tuple(y.shape) == shape):
            raise ValueError(f"y must be a float32 CPU tensor of the model output's shape {shape} for nn.MSELoss, "
                             f"got {_describe(y)}")
        return (x.detach().contiguous().numpy(), y.detach().contiguous().numpy())

    def _output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The model's output shape for input `shape`; ValueError naming the layer that cannot take it."""
        if len(shape) < 2:
            raise ValueError(f"x has shape {shape}: compile_step needs a batch dimension first, (batch, features)")
        for layer in self.layers:
            if layer.kind == "flatten":
                shape = (shape[0], prod(shape[1:]))
            elif layer.kind == "linear":
                m = layer.module
                if len(shape) != 2 or shape[1] != m.in_features:
                    raise ValueError(f"{layer.path} ({m}) takes (batch, {m.in_features}), got {shape} from x of "
                                     "that shape; pass x of the shape the model expects")
                shape = (shape[0], m.out_features)
        if len(shape) != 2:
            raise ValueError(f"the model's output has shape {shape}; compile_step needs (batch, outputs)")
        return shape

    def _build(self, kb: KernelBuilder, bound: list[tuple[str, np.ndarray]], flags_of: dict[int, tuple],
               specs: list[tuple | None]) -> None:
        """Buffers as __call__ binds them; forward, loss, backward, then one update call per stepped
        parameter (after the whole backward, so that dx = dy W reads the weight before its update)."""
        bufs = iter([kb.buffer(name, a.shape, a.dtype) for name, a in bound])
        x, y, loss = next(bufs), next(bufs), next(bufs)
        hyper = {gi: [next(bufs) for _ in range(len(self.optimizer._group_spec(self.optimizer.param_groups[gi])[1]))]
                 for gi in flags_of}
        params: dict[int, Handle] = {}
        stepped: list[tuple[int, Handle, list[Handle], tuple]] = []
        ps = [p for layer in self.layers for p in layer.module.parameters(recurse=False)]
        for p, spec in zip(ps, specs):
            params[id(p)] = next(bufs)
            if spec is not None:
                stepped.append((id(p), params[id(p)], [next(bufs) for _ in spec[1]], spec))
        grads = forward_backward(kb.main, self.layers, params, x, y, loss, self.loss, {pid for pid, *_ in stepped})
        cache: dict = {}
        for pid, p, state, (gi, _, extra) in stepped:
            gkey, sub = _update_graph(self.optimizer, flags_of[gi], p.shape, F32, extra)
            call_graph(kb, cache, gkey, *sub, [p, grads[pid], *state, *hyper[gi]])


def _view(t: torch.Tensor, what: str) -> np.ndarray:
    """A zero-copy numpy view of t in its own shape (contiguous float CPU tensors only)."""
    if not t.is_contiguous():
        raise ValueError(f"{what} with shape {tuple(t.shape)} and strides {t.stride()} is not contiguous: "
                         "make it contiguous (`p.data = p.data.contiguous()`) before compiling the step")
    return flat_view(t, what, "use loss.backward() and opt.step() for it").reshape(t.shape)


def _describe(t: Any) -> str:
    if torch.is_tensor(t):
        return f"{t.dtype} tensor of shape {tuple(t.shape)} on {t.device}"
    return type(t).__name__


def compile_step(model: nn.Module, loss_fn: nn.Module, optimizer: Any,
                 options: CompileOptions | None = None) -> TrainStep:
    """`model`'s training step with `loss_fn` and the drop-in `optimizer` as one compiled program."""
    return TrainStep(model, loss_fn, optimizer, options)
