"""What compile_step (torch_train.py) compiles of a torch model and loss, and their IR: forward, loss and
backward written with the core builder. A Linear layer is y = x W^T + b; its gradients are dW = dy^T x
(a MatMul with transpose_a, left for its caller to hand to the weight's update, so that it is the
matmul's only reader), db = sum(dy) over the batch and dx = dy W. Activations differentiate through
their registered gradient ops (ReluGrad, TanhGrad, GeluGrad, GeluErfGrad: torch's GELU formulas)."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from torch import nn

from compiler.ir import DType
from compiler.ops import builder as ops
from compiler.ops.builder import GraphBuilder, Handle

F32, I64 = DType.float32, DType.int64

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
        # _modules, not named_children(), which lists a module used twice only once (forward calls it twice)
        return [x for name, m in model._modules.items() if m is not None for x in layers_of(m, f"{path}[{name}]")]
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


def forward_backward(gb: GraphBuilder, layers: list[Layer], params: dict[int, Handle], x: Handle, y: Handle,
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
    dy = loss_and_grad(gb, h, y, loss_out, loss)
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


def loss_and_grad(gb: GraphBuilder, z: Handle, y: Handle, loss_out: Handle, loss: str) -> Handle:
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
