"""The PopXL data-parallelism tutorial's MNIST training (tutorials/popxl/3_data_parallelism), on the CPU.

  python examples/data_parallel.py [--replication 2] [--ga 4] [--batch-size 8] [--device cpu|interpreter]
                                   [--steps N] [--data DIR]
  mpiexec -n 2 python examples/data_parallel.py --replication 2     # one replica per process

Each step: `replication` replicas each run `ga` micro-batches of `batch-size` samples, accumulate the mean
gradient (addons.autodiff_with_accumulation), average it over the replicas (replicated_all_reduce_ with
op="mean") and apply the tutorial's Adam. Only the imports and the device string differ from PopXL.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from custom_optimiser import Adam  # noqa: E402
from mnist_adam import DEFAULT_DATA, Net, load_data  # noqa: E402

from compiler import addons, popxl  # noqa: E402
from compiler.popxl import ops  # noqa: E402


def optimizer_step(variables, grads, optimizer: addons.Module, lr: float = 1e-3):
    for var, grad in zip(variables.tensors, grads):
        opt_facts, opt_graph = optimizer.create_graph(var, var.spec, lr=lr, weight_decay=0.0,
                                                      first_order_dtype=popxl.float16, bias_correction=False)
        state = opt_facts.init()
        opt_graph.bind(state).call(var, grad)


def train_program(replication: int = 2, ga: int = 1, batch_size: int = 8, lr: float = 1e-3):
    """The tutorial's train_program: returns (ir, [image, labels] streams, variables, loss stream)."""
    ir = popxl.Ir(replication=replication)
    with ir.main_graph:
        img_spec = popxl.TensorSpec((batch_size, 28, 28), popxl.float32)
        img_stream = popxl.h2d_stream(img_spec.shape, popxl.float32, "image")
        label_stream = popxl.h2d_stream((batch_size,), popxl.int32, "labels")
        loss_stream = popxl.d2h_stream((), popxl.float32, "loss")

        facts, fwd_graph = Net().create_graph(img_spec)
        variables = facts.init()
        bound_fwd = fwd_graph.bind(variables)
        required_grads = fwd_graph.args.tensors
        if ga > 1:
            bwd_facts, bwd_graph = addons.autodiff_with_accumulation(fwd_graph, required_grads)
            accumulated = bwd_facts.init()
            counter = accumulated.mean_accum_counter
            bound_bwd = bwd_graph.bind(accumulated)
        else:
            bwd_graph = addons.autodiff(fwd_graph, grads_required=required_grads)

        with popxl.in_sequence(True):
            for _ in range(ga):
                img_t = ops.host_load(img_stream)
                labels = ops.host_load(label_stream, "labels")
                fwd_info = bound_fwd.call_with_info(img_t)
                x = fwd_info.outputs[0]
                loss, dx = addons.ops.cross_entropy_with_grad(x, labels)
                ops.host_store(loss_stream, loss)
                if ga > 1:
                    bound_bwd.call(dx, args=bwd_graph.grad_graph_info.inputs_dict(fwd_info))
                    grads = accumulated.tensors[:-1]  # the counter is the last one
                else:
                    grads = bwd_graph.call(dx, args=bwd_graph.grad_graph_info.inputs_dict(fwd_info))
            if replication > 1:
                for g in grads:
                    ops.collectives.replicated_all_reduce_(g, op="mean")
            optimizer_step(variables, grads, Adam(cache=True), lr)
            if ga > 1:
                ops.var_updates.accumulator_scale_(counter, 0.0)
    ir.num_host_transfers = ga
    return ir, [img_stream, label_stream], variables, loss_stream


def global_batch(ir: popxl.Ir, session: popxl.Session, x: np.ndarray, y: np.ndarray, batch_size: int):
    """The tutorial's reshape: micro-batch k of the global batch goes to (transfer k // R, replica k % R);
    the local replicas' share under mpiexec."""
    r, nht = ir.replication_factor, ir.num_host_transfers
    x = x.reshape(nht, r, batch_size, 28, 28)
    y = y.reshape(nht, r, batch_size)
    local = ir.instance_replication_factor
    first = local * _rank(ir)
    x, y = x[:, first:first + local], y[:, first:first + local]
    img_stream, label_stream = session.expected_inputs()[0], session.expected_inputs()[1]
    return {img_stream: x.reshape(session._full_input_shape(img_stream.shape)),
            label_stream: y.reshape(session._full_input_shape(label_stream.shape))}


def _rank(ir: popxl.Ir) -> int:
    from compiler.driver import processes

    return processes()[0] if ir.replication_factor > 1 else 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replication", type=int, default=2)
    p.add_argument("--ga", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--device", default="cpu", choices=["cpu", "interpreter"])
    p.add_argument("--data", default=DEFAULT_DATA)
    a = p.parse_args(argv)
    from compiler.data import batches, stats

    np.random.seed(0)
    train_ds, _ = load_data(a.data)
    mean, std = stats(train_ds)
    ir, _streams, variables, loss_stream = train_program(a.replication, a.ga, a.batch_size, a.lr)
    session = popxl.Session(ir, a.device)
    per_step = a.batch_size * a.ga * a.replication
    with session:
        for step, (x, y) in enumerate(batches(train_ds, per_step, mean, std, seed=0)):
            if step >= a.steps:
                break
            loss = session.run(global_batch(ir, session, x, y.astype(np.int32), a.batch_size))[loss_stream]
            if step % 10 == 0 and _rank(ir) == 0:
                print(f"step {step}: loss {float(np.mean(loss)):.4f}")


if __name__ == "__main__":
    main()
