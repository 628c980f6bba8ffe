"""A functional optimizer, written as a user would, compiled on first use; its learning rate is an
array, so the cosine schedule below runs on one compiled kernel.

Run: python examples/functional_adam.py
"""
from __future__ import annotations

import math

import numpy as np

import compiler.optim.numpy as jnp
from compiler.optim import Optimizer


class MyAdam(Optimizer):
    def __init__(self, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
        self.lr = np.asarray(lr, np.float32)  # an array: a kernel input (a float would be baked in)
        self.b1, self.b2, self.eps = b1, b2, eps  # Python floats: constants of the kernel
        self.t = jnp.zeros((), jnp.float32)  # state, updated by the compiled code
        self.m, self.v = {}, {}

    def call_model(self, grads, params=None, loss=None):
        self.t = self.t + 1.0
        return grads

    def call_param(self, key, grad, param=None):
        if key not in self.m:  # state is created on first sight of a key
            self.m[key] = jnp.zeros_like(param)
            self.v[key] = jnp.zeros_like(param)
        self.m[key] = self.b1 * self.m[key] + (1 - self.b1) * grad
        self.v[key] = self.b2 * self.v[key] + (1 - self.b2) * grad * grad
        mhat = self.m[key] / (1 - self.b1 ** self.t)
        vhat = self.v[key] / (1 - self.b2 ** self.t)
        return self.lr * mhat / (jnp.sqrt(vhat) + self.eps)


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    true_w = rng.standard_normal((8, 1)).astype(np.float32)
    y = x @ true_w
    params = {"w": np.zeros((8, 1), np.float32), "b": np.zeros((1,), np.float32)}
    opt = MyAdam(lr=0.05)
    steps = 300
    for step in range(steps):
        err = x @ params["w"] + params["b"] - y
        grads = {"w": (2.0 / len(x)) * x.T @ err, "b": (2.0 / len(x)) * err.sum(0)}
        opt.lr[...] = 0.05 * 0.5 * (1 + math.cos(math.pi * step / steps))  # the schedule: no recompile
        opt(params, grads)  # traced and compiled on the first call, then runs in place
        if step % 100 == 0:
            print(f"step {step:3d}: mse {float(np.mean(err ** 2)):.5f}")
    mse = float(np.mean((x @ params["w"] + params["b"] - y) ** 2))
    print(f"final mse {mse:.2e}; {opt.compiles} compiled kernel, t = {float(opt.t):.0f}")


if __name__ == "__main__":
    main()
