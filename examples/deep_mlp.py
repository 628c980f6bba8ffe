"""A deep MLP trained with the PopXL tutorial's Adam: the program whose compile time should grow
with its distinct kernels, not with its layer count.

  python examples/deep_mlp.py [--layers 16] [--width 64] [--steps 10] [--device cpu|interpreter]

`layers` Linear+gelu blocks of `width` features, cross entropy, and the tutorial's per-variable
Adam with `cache=True` (same-shaped variables share one Adam graph). Only the imports and the
device string differ from a PopXL program.
"""
from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from custom_optimiser import Adam  # noqa: E402

from compiler import addons, popxl  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402
from compiler.popxl import ops  # noqa: E402


class Linear(addons.Module):
    def __init__(self, out_features: int):
        super().__init__()
        self.out_features = out_features

    def build(self, x: popxl.Tensor) -> popxl.Tensor:
        w = self.add_variable_input(
            "weight", partial(np.random.normal, 0, 0.02, (x.shape[-1], self.out_features)), x.dtype)
        b = self.add_variable_input("bias", partial(np.zeros, self.out_features), x.dtype)
        return x @ w + b


class DeepNet(addons.Module):
    def __init__(self, layers: int, width: int, classes: int):
        super().__init__()
        self.hidden = [Linear(width) for _ in range(layers)]
        for i, layer in enumerate(self.hidden):
            setattr(self, f"fc{i}", layer)
        self.head = Linear(classes)

    def build(self, x: popxl.Tensor) -> popxl.Tensor:
        for layer in self.hidden:
            x = ops.gelu(layer(x))
        return self.head(x)


def train_ir(layers: int = 16, width: int = 64, batch_size: int = 8, classes: int = 10,
             learning_rate: float = 1e-3, seed: int = 0):
    """(ir, [input stream, label stream], variables, loss stream) for one training step."""
    np.random.seed(seed)
    ir = popxl.Ir(replication=1)
    with ir.main_graph:
        x_stream = popxl.h2d_stream((batch_size, width), popxl.float32, "x")
        x = ops.host_load(x_stream)
        label_stream = popxl.h2d_stream((batch_size,), popxl.int32, "labels")
        labels = ops.host_load(label_stream, "labels")
        facts, fwd_graph = DeepNet(layers, width, classes).create_graph(x)
        bwd_graph = addons.autodiff(fwd_graph)
        variables = facts.init()
        fwd_info = fwd_graph.bind(variables).call_with_info(x)
        loss, dx = addons.ops.cross_entropy_with_grad(fwd_info.outputs[0], labels)
        loss_stream = popxl.d2h_stream(loss.shape, loss.dtype, "loss")
        ops.host_store(loss_stream, loss)
        activations = bwd_graph.grad_graph_info.inputs_dict(fwd_info)
        bwd_info = bwd_graph.call_with_info(dx, args=activations)
        grads = bwd_graph.grad_graph_info.fwd_parent_ins_to_grad_parent_outs(fwd_info, bwd_info)
        optimiser = Adam(cache=True)
        for _name, var in variables.named_tensors.items():
            opt_facts, opt_graph = optimiser.create_graph(
                var, var.spec, lr=learning_rate, weight_decay=0.0, bias_correction=False)
            opt_graph.bind(opt_facts.init()).call(var, grads[var])
    ir.num_host_transfers = 1
    return ir, [x_stream, label_stream], variables, loss_stream


def build_ir():
    """A 4-layer step (for the tools: print_schedule, viz, compile)."""
    return train_ir(4)


def batch(width: int, batch_size: int = 8, classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, width)).astype(np.float32)
    return x, rng.integers(0, classes, batch_size).astype(np.int32)


def main(argv: Optional[list] = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu", choices=["cpu", "interpreter"])
    a = ap.parse_args(argv)
    ir, streams, _vars, loss_stream = train_ir(a.layers, a.width)
    t0 = time.perf_counter()
    session = popxl.Session(ir, a.device, options=CompileOptions(device=a.device))
    print(f"{a.layers} layers: compiled in {time.perf_counter() - t0:.2f} s")
    x, y = batch(a.width)
    losses = []
    with session:
        for _ in range(a.steps):
            losses.append(float(session.run(dict(zip(streams, [x, y])))[loss_stream]))
    print("losses:", " ".join(f"{v:.4f}" for v in losses))
    return losses


if __name__ == "__main__":
    main()
