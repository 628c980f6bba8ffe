"""The PopXL custom-optimiser tutorial's Adam, run on the CPU.

Only the imports and the device string differ from a PopXL program.
Run: python examples/custom_optimiser.py [--device cpu|interpreter]
"""
from __future__ import annotations

import argparse
from functools import partial
from typing import Union

import numpy as np

from compiler import addons, popxl
from compiler.popxl import ops


class Adam(addons.Module):
    """Adam for one variable; every update is in place, so the build runs in sequence."""

    @popxl.in_sequence()
    def build(
        self,
        weight: popxl.TensorByRef,
        grad: popxl.Tensor,
        *,
        lr: Union[float, popxl.Tensor],
        beta1: Union[float, popxl.Tensor] = 0.9,
        beta2: Union[float, popxl.Tensor] = 0.999,
        eps: Union[float, popxl.Tensor] = 1e-5,
        weight_decay: Union[float, popxl.Tensor] = 0.0,
        first_order_dtype: popxl.dtype = popxl.float16,
        bias_correction: bool = True,
    ):
        m = self.add_variable_input("first_order", partial(np.zeros, weight.shape), first_order_dtype, by_ref=True)
        ops.var_updates.accumulate_moving_average_(m, grad, f=beta1)
        v = self.add_variable_input("second_order", partial(np.zeros, weight.shape), popxl.float32, by_ref=True)
        ops.var_updates.accumulate_moving_average_square_(v, grad, f=beta2)
        step = None
        if bias_correction:
            step = self.add_variable_input("step", partial(np.zeros, ()), popxl.float32, by_ref=True)
        dw = ops.var_updates.adam_updater(
            m, v, weight=weight, weight_decay=weight_decay, time_step=step, beta1=beta1, beta2=beta2, epsilon=eps)
        ops.scaled_add_(weight, dw, b=-lr)


def build_ir():
    """Build the tutorial's program: two Adam graphs (float lr, Tensor lr) updating one variable."""
    ir = popxl.Ir(replication=1)
    with ir.main_graph:
        var = popxl.variable(np.ones((2, 2)), popxl.float32)
        grad = popxl.variable(np.full((2, 2), 0.1), popxl.float32)
        adam_facts, adam = Adam(cache=True).create_graph(var, var.spec, lr=1e-3)
        adam_facts_lr, adam_lr = Adam().create_graph(var, var.spec, lr=popxl.TensorSpec((), popxl.float32))
        adam_state = adam_facts.init()
        adam_state_lr = adam_facts_lr.init()
        adam.bind(adam_state).call(var, grad)
        adam_lr.bind(adam_state_lr).call(var, grad, popxl.constant(1e-3))
    ir.num_host_transfers = 1
    return ir, dict(var=var, adam=adam, adam_lr=adam_lr, adam_state=adam_state)


def main(device: str = "cpu") -> dict:
    ir, h = build_ir()
    print("Adam with float learning rate\n")
    print(h["adam"].print_schedule())
    print("\n Adam with tensor learning rate\n")
    print(h["adam_lr"].print_schedule())
    session = popxl.Session(ir, device)
    for when in ("Before", "After"):
        if when == "After":
            with session:
                session.run()
        print(f"\n {when} Adam update")
        var_data = session.get_tensor_data(h["var"])
        state = session.get_tensors_data(h["adam_state"].tensors)
        print("Variable:\n", h["var"], "\n", var_data)
        print("Adam state:")
        for t, data in state.items():
            print(t, "\n", data)
    return {t.name: d for t, d in state.items()} | {"var": var_data}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "interpreter"])
    main(p.parse_args().device)
