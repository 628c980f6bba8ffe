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
optimizer are not updated, as with loss.backward(); opt.step().
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
from compiler.ops import builder as ops
from compiler.ops.builder import GraphBuilder, Handle

from .kernels import Kernel, KernelBuilder
from .tensor_views import flat_view
from .torch_adam import AdamStep, _adam_graph
from .torch_step import CompiledStep, call_graph

F32, F64, I64 = DType.float32, DType.float64, DType.int64
SUPPORTED = "nn.Sequential (nested), nn.Flatten, nn.Linear, nn.ReLU, nn.Tanh, nn.GELU"
_ACTIVATIONS = {nn.ReLU: ("Relu", "ReluGrad", "x"), nn.Tanh: ("Tanh", "TanhGrad", "y")}
_GELU = {"none": ("GeluErf", "GeluErfGrad", "x"), "tanh": ("Gelu", "GeluGrad", "x")}


@dataclass(frozen=True)
class Layer:
    """One leaf module of the model: `kind` is "flatten", "linear" or an activation's op kinds."""

    path: str
    module: nn.Module
    kind: str
    grad_kind: str = ""
    grad_reads: str = ""  # the activation's gradient reads its input "x" or its output "y"


def layers_of(model: nn.Module, path: str = "model") -> list[Layer]:
    """The model's leaf modules in call order; TypeError naming the first unsupported one."""
    if isinstance(model, nn.Sequential):
        return [x for name, m in model.named_children() for x in layers_of(m, f"{path}[{name}]")]
    if isinstance(model, nn.Flatten):
        if (model.start_dim, model.end_dim) != (1, -1):
            raise TypeError(f"{path} is nn.Flatten(start_dim={model.start_dim}, end_dim={model.end_dim}): "
                            "compile_step supports the default nn.Flatten() (start_dim=1, end_dim=-1) only")
        return [Layer(path, model, "flatten")]
    if isinstance(model, nn.Linear) and type(model) is nn.Linear:
        return [Layer(path, model, "linear")]
    kinds = _GELU.get(getattr(model, "approximate", "")) if type(model) is nn.GELU else _ACTIVATIONS.get(type(model))
    if kinds is None:
        raise TypeError(f"{path} is {type(model).__module__}.{type(model).__qualname__}, which compile_step "
                        f"cannot compile; supported: {SUPPORTED}. Train such a model with loss.backward() and "
                        "opt.step()")
    return [Layer(path, model, *kinds)]


def check_loss(loss_fn: nn.Module) -> str:
    """"ce" or "mse"; ValueError/TypeError for a loss or an option compile_step does not support."""
    if type(loss_fn) is nn.CrossEntropyLoss:
        bad = [f"{k}={v!r}" for k, v, ok in (
            ("reduction", loss_fn.reduction, "mean"), ("weight", loss_fn.weight, None),
            ("label_smoothing", loss_fn.label_smoothing, 0.0), ("ignore_index", loss_fn.ignore_index, -100))
            if v is not ok and v != ok]
        if bad:
            raise ValueError(f"nn.CrossEntropyLoss({', '.join(bad)}) is not supported by compile_step: use "
                             "nn.CrossEntropyLoss() (mean over the batch, integer class targets)")
        return "ce"
    if type(loss_fn) is nn.MSELoss:
        if loss_fn.reduction != "mean":
            raise ValueError(f"nn.MSELoss(reduction={loss_fn.reduction!r}) is not supported by compile_step: "
                             "use nn.MSELoss() (mean)")
        return "mse"
    raise TypeError(f"compile_step cannot compile the loss {type(loss_fn).__name__}; supported: "
                    "nn.CrossEntropyLoss() and nn.MSELoss()")


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
        for layer in self.layers:
            for name, p in layer.module.named_parameters(recurse=False):
                where = f"{layer.path}.{name}"
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
        trained = self._trained()
        # what the kernel binds, in declaration order: (name, array); the kernel key is what it compiles
        bound: list[tuple[str, np.ndarray]] = [("x", xa), ("y", ya), ("loss", self._loss)]
        groups = sorted({t.group for t in trained.values()})
        flags_of: dict[int, tuple] = {}
        for gi in groups:
            flags, hyper, _ = opt._group_spec(opt.param_groups[gi])
            flags_of[gi] = flags
            bound += [(f"param_groups[{gi}].h{j}", np.asarray(h, np.float64)) for j, h in enumerate(hyper)]
        specs: list[tuple] = []  # per model parameter: None (not stepped) or (group, state names, extras)
        for layer in self.layers:
            for name, p in layer.module.named_parameters(recurse=False):
                where = f"{layer.path}.{name}"
                bound.append((where, _view(p, where)))
                t = trained.get(id(p))
                if t is None:
                    specs.append(None)
                    continue
                st, extra = opt._ensure_state(p, opt.param_groups[t.group])
                bound += [(f"{where}.{n}", _view(st[n], f"optimizer.state[{where}][{n!r}]")) for n in t.names]
                specs.append((t.group, t.names, extra))
        key = (tuple((a.shape, a.dtype.str) for _, a in bound), tuple(flags_of.items()), tuple(specs))
        k = self.kernels.get(key)
        if k is None:
            k = self.kernels[key] = Kernel(lambda kb: self._build(kb, bound, flags_of, specs), self.options)
        self.kernel = k
        k.run([a for _, a in bound])
        # what torch's lr schedulers look for to know the optimizer stepped (else they warn that
        # scheduler.step() came before optimizer.step())
        opt._opt_called = True
        return float(self._loss)

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
        grads = _backward(kb.main, self.layers, params, x, y, loss, self.loss, {pid for pid, *_ in stepped})
        cache: dict = {}
        for pid, p, state, (gi, _, extra) in stepped:
            gkey, sub = _update_graph(self.optimizer, flags_of[gi], p.shape, F32, extra)
            call_graph(kb, cache, gkey, *sub, [p, grads[pid], *state, *hyper[gi]])


def _backward(gb: GraphBuilder, layers: list[Layer], params: dict[int, Handle], x: Handle, y: Handle,
              loss_out: Handle, loss: str, wanted: set[int]) -> dict[int, Handle]:
    """Forward, loss (written to loss_out) and backward; returns the gradient of each wanted parameter."""
    saved: list[Handle] = []  # each layer's input (an activation's output for Tanh's gradient)
    h = x
    for layer in layers:
        saved.append(h)
        if layer.kind == "flatten":
            h = ops.reshape(h, (h.shape[0], prod(h.shape[1:])))
        elif layer.kind == "linear":
            m = layer.module
            h = gb.emit_out("MatMul", f"{layer.path}.matmul", {"a": h, "b": params[id(m.weight)]},
                            {"transpose_b": True})  # x W^T
            if m.bias is not None:
                h = h + params[id(m.bias)]
        else:
            h = gb.emit_out(layer.kind, layer.path, {"x": h})
    dy = _loss_and_grad(gb, h, y, loss_out, loss)
    grads: dict[int, Handle] = {}
    for i in reversed(range(len(layers))):
        layer, inp = layers[i], saved[i]
        if layer.kind == "flatten":
            dy = ops.reshape(dy, inp.shape)
        elif layer.kind == "linear":
            m = layer.module
            if id(m.weight) in wanted:  # dW = dy^T x: its only reader will be the weight's update
                grads[id(m.weight)] = gb.emit_out("MatMul", f"{layer.path}.weight_grad", {"a": dy, "b": inp},
                                                  {"transpose_a": True})
            if m.bias is not None and id(m.bias) in wanted:
                grads[id(m.bias)] = ops.reduce("sum", dy, 0)
            if i > 0:
                dy = ops.matmul(dy, params[id(m.weight)])  # dx = dy W
        else:
            out = saved[i + 1] if i + 1 < len(saved) else None
            other = inp if layer.grad_reads == "x" else out
            assert other is not None  # an activation's output is the next layer's input or the loss's
            dy = gb.emit_out(layer.grad_kind, f"{layer.path}.grad", {"dy": dy, layer.grad_reads: other})
    return grads


def _loss_and_grad(gb: GraphBuilder, z: Handle, y: Handle, loss_out: Handle, loss: str) -> Handle:
    """loss (copied into loss_out) and dloss/dz. CrossEntropy: mean(logsumexp(z) - z[y]), dz = (softmax(z)
    - onehot(y)) / batch; MSE: mean((z - y)^2), dz = 2 (z - y) / numel."""
    if loss == "mse":
        d = z - y
        ops.copy_(loss_out, ops.reduce("mean", d * d))
        return d * (2.0 / prod(z.shape))
    batch, classes = z.shape
    shifted = z - ops.reduce("max", z, 1, keepdims=True)
    e = ops.exp(shifted)
    total = ops.reduce("sum", e, 1, keepdims=True)
    hit = ops.equal(ops.reshape(y, (batch, 1)), gb.constant(np.arange(classes)[None, :], I64, "classes"))
    onehot = ops.cast(hit, F32)
    picked = ops.reduce("sum", shifted * onehot, 1, keepdims=True)
    ops.copy_(loss_out, ops.reduce("mean", ops.log(total) - picked))
    return (e / total - onehot) * (1.0 / batch)


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
