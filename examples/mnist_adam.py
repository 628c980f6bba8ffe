"""The PopXL custom-optimiser tutorial's MNIST training, on the CPU: an MLP trained with the custom Adam.

  python examples/mnist_adam.py [--data DIR] [--epochs 1] [--batch-size 8] [--lr 1e-3]
                                [--device cpu|interpreter] [--seed 0] [--limit-steps N]

With no --data it reads Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian package
dataset-fashion-mnist). Only the imports and the device string differ from a PopXL program.
"""
from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Dict, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from custom_optimiser import Adam  # noqa: E402

from compiler import addons, popxl  # noqa: E402
from compiler.data import batches, load_mnist, stats  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402
from compiler.popxl import ops  # noqa: E402

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


class Linear(addons.Module):
    def __init__(self, out_features: int, bias: bool = True):
        super().__init__()
        self.out_features = out_features
        self.bias = bias

    def build(self, x: popxl.Tensor) -> popxl.Tensor:
        w = self.add_variable_input(
            "weight", partial(np.random.normal, 0, 0.02, (x.shape[-1], self.out_features)), x.dtype)
        y = x @ w
        if self.bias:
            b = self.add_variable_input("bias", partial(np.zeros, y.shape[-1]), x.dtype)
            y = y + b
        return y


class Net(addons.Module):
    def __init__(self, cache: Optional[addons.GraphCache] = None):
        super().__init__(cache=cache)
        self.fc1 = Linear(512)
        self.fc2 = Linear(512)
        self.fc3 = Linear(512)
        self.fc4 = Linear(10)

    def build(self, x: popxl.Tensor):
        x = x.reshape((-1, 28 * 28))
        x = ops.gelu(self.fc1(x))
        x = ops.gelu(self.fc2(x))
        x = ops.gelu(self.fc3(x))
        return self.fc4(x)


def optimiser_step(variables, grads: Dict[popxl.Tensor, popxl.Tensor], optimiser: addons.Module,
                   learning_rate: float = 1e-3, first_order_dtype: popxl.dtype = popxl.float16):
    """One Adam graph per variable (GraphCache shares the graphs of same-shaped variables)."""
    for _name, var in variables.named_tensors.items():
        opt_facts, opt_graph = optimiser.create_graph(var, var.spec, lr=learning_rate, weight_decay=0.0,
                                                      first_order_dtype=first_order_dtype, bias_correction=False)
        state = opt_facts.init()
        opt_graph.bind(state).call(var, grads[var])


def train_ir(batch_size: int = 8, learning_rate: float = 1e-3, first_order_dtype: popxl.dtype = popxl.float16):
    """The tutorial's training step (float16 Adam first moments, as its Adam's default)."""
    ir = popxl.Ir(replication=1)
    with ir.main_graph:
        img_stream = popxl.h2d_stream((batch_size, 28, 28), popxl.float32, "image")
        img_t = ops.host_load(img_stream)
        label_stream = popxl.h2d_stream((batch_size,), popxl.int32, "labels")
        labels = ops.host_load(label_stream, "labels")
        facts, fwd_graph = Net().create_graph(img_t)
        bwd_graph = addons.autodiff(fwd_graph)
        variables = facts.init()
        fwd_info = fwd_graph.bind(variables).call_with_info(img_t)
        x = fwd_info.outputs[0]
        loss, dx = addons.ops.cross_entropy_with_grad(x, labels)
        loss_stream = popxl.d2h_stream(loss.shape, loss.dtype, "loss")
        ops.host_store(loss_stream, loss)
        activations = bwd_graph.grad_graph_info.inputs_dict(fwd_info)
        bwd_info = bwd_graph.call_with_info(dx, args=activations)
        grads_dict = bwd_graph.grad_graph_info.fwd_parent_ins_to_grad_parent_outs(fwd_info, bwd_info)
        optimiser_step(variables, grads_dict, Adam(cache=True), learning_rate, first_order_dtype)
    ir.num_host_transfers = 1
    return ir, [img_stream, label_stream], variables, loss_stream


def build_ir():
    """The training step at batch 8 (for the tools: print_schedule, viz, compile)."""
    return train_ir(8)


def test_ir(batch_size: int):
    ir = popxl.Ir(replication=1)
    with ir.main_graph:
        in_stream = popxl.h2d_stream((batch_size, 28, 28), popxl.float32, "image")
        in_t = ops.host_load(in_stream)
        facts, graph = Net().create_graph(in_t)
        variables = facts.init()
        (outputs,) = graph.bind(variables).call(in_t)
        out_stream = popxl.d2h_stream(outputs.shape, outputs.dtype, "outputs")
        ops.host_store(out_stream, outputs)
    ir.num_host_transfers = 1
    return ir, [in_stream], variables, out_stream


def load_data(data: str):
    root = Path(data)
    try:
        return load_mnist(root, "train"), load_mnist(root, "test")
    except FileNotFoundError as e:
        sys.exit(f"no MNIST-format data found ({e}).\nInstall Fashion-MNIST with `sudo apt-get install "
                 f"dataset-fashion-mnist` (files go to {DEFAULT_DATA}), or pass --data DIR with "
                 "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
                 "t10k-labels-idx1-ubyte[.gz].")


def train(data: str = DEFAULT_DATA, epochs: int = 1, batch_size: int = 8, lr: float = 1e-3, device: str = "cpu",
          seed: int = 0, limit_steps: int | None = None, test_batch_size: int = 80, quiet: bool = False,
          options: Optional[CompileOptions] = None, first_order_dtype: popxl.dtype = popxl.float16) -> dict:
    """Train for `epochs` (each at most `limit_steps` steps), then measure test accuracy in a second session."""
    from tqdm import tqdm

    np.random.seed(seed)
    train_ds, test_ds = load_data(data)
    mean, std = stats(train_ds)
    ir, streams, variables, loss_stream = train_ir(batch_size, lr, first_order_dtype)
    t0 = time.perf_counter()
    session = popxl.Session(ir, device, options=options)
    compile_s = time.perf_counter() - t0
    steps, losses = 0, []
    t_start = time.perf_counter()
    with session:
        for epoch in range(epochs):
            n = len(train_ds) // batch_size
            total = min(n, limit_steps) if limit_steps else n
            bar = tqdm(batches(train_ds, batch_size, mean, std, seed=seed + epoch), total=total, disable=quiet,
                       desc=f"epoch {epoch + 1}/{epochs}")
            for x, y in bar:
                loss = session.run(dict(zip(streams, [x, y])))[loss_stream]
                losses.append(float(loss))
                steps += 1
                if steps % 50 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}",
                                    steps_s=f"{steps / (time.perf_counter() - t_start):.0f}")
                if limit_steps and steps >= limit_steps * (epoch + 1):
                    break
    train_s = time.perf_counter() - t_start
    trained = session.get_tensors_data(variables.tensors)
    test_session_ir, test_streams, test_vars, out_stream = test_ir(test_batch_size)
    test_session = popxl.Session(test_session_ir, device, options=options)
    mapping = variables.to_mapping(test_vars)
    test_session.write_variables_data({tv: trained[t].copy() for t, tv in mapping.items()})
    correct = total = 0
    with test_session:
        for x, y in batches(test_ds, test_batch_size, mean, std, shuffle=False):
            out = test_session.run({test_streams[0]: x})[out_stream]
            correct += int(np.sum(np.argmax(out, -1) == y))
            total += len(y)
    acc = 100.0 * correct / total
    res = {"steps": steps, "train_s": train_s, "steps_per_s": steps / train_s, "test_accuracy": acc,
           "compile_s": compile_s, "losses": losses, "first_loss": float(np.mean(losses[:50])),
           "last_loss": float(np.mean(losses[-50:]))}
    if not quiet:
        print(f"trained {steps} steps at {res['steps_per_s']:.0f} steps/s (compile {compile_s:.2f} s); loss "
              f"{res['first_loss']:.3f} -> {res['last_loss']:.3f}")
        print(f"Accuracy on test set: {acc:0.2f}%")
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "interpreter"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit-steps", type=int, default=None, help="stop each epoch after N steps")
    a = ap.parse_args(argv)
    return train(a.data, a.epochs, a.batch_size, a.lr, a.device, a.seed, a.limit_steps)


if __name__ == "__main__":
    main()
