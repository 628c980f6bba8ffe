"""Optimizers written in the functional style, exactly as a user would write them: Python-float
hyper-parameters (baked into the kernel; assign a numpy array to make one a kernel input), state
created on first sight of a key, `self.t` a float32 array updated by the compiled step."""
from __future__ import annotations

from . import numpy as jnp
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba): m, v moving averages of g and g*g, bias-corrected."""

    def __init__(self, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.t = jnp.zeros((), jnp.float32)
        self.m, self.v = {}, {}

    def call_model(self, grads, params=None, loss=None):
        self.t = self.t + 1.0
        return grads

    def call_param(self, key, grad, param=None):
        if key not in self.m:
            self.m[key] = jnp.zeros_like(param)
            self.v[key] = jnp.zeros_like(param)
        self.m[key] = self.b1 * self.m[key] + (1 - self.b1) * grad
        self.v[key] = self.b2 * self.v[key] + (1 - self.b2) * grad * grad
        mhat = self.m[key] / (1 - self.b1 ** self.t)
        vhat = self.v[key] / (1 - self.b2 ** self.t)
        return self.lr * mhat / (jnp.sqrt(vhat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): update + lr * wd * param."""

    def __init__(self, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, b1, b2, eps)
        self.weight_decay = weight_decay

    def call_param(self, key, grad, param=None):
        return super().call_param(key, grad, param) + self.lr * self.weight_decay * param


class SGD(Optimizer):
    """SGD with optional momentum (buf = momentum * buf + g) and Nesterov (g + momentum * buf)."""

    def __init__(self, lr=1e-2, momentum=0.0, nesterov=False):
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.buf = {}

    def call_param(self, key, grad, param=None):
        if self.momentum == 0.0:
            return self.lr * grad
        if key not in self.buf:
            self.buf[key] = jnp.zeros_like(param)
        self.buf[key] = self.momentum * self.buf[key] + grad
        step = grad + self.momentum * self.buf[key] if self.nesterov else self.buf[key]
        return self.lr * step


class Adamax(Optimizer):
    """Adamax: the infinity-norm variant of Adam, u = max(b2 * u, |g|)."""

    def __init__(self, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.t = jnp.zeros((), jnp.float32)
        self.m, self.u = {}, {}

    def call_model(self, grads, params=None, loss=None):
        self.t = self.t + 1.0
        return grads

    def call_param(self, key, grad, param=None):
        if key not in self.m:
            self.m[key] = jnp.zeros_like(param)
            self.u[key] = jnp.zeros_like(param)
        self.m[key] = self.b1 * self.m[key] + (1 - self.b1) * grad
        self.u[key] = jnp.maximum(self.b2 * self.u[key], jnp.abs(grad))
        return self.lr / (1 - self.b1 ** self.t) * self.m[key] / (self.u[key] + self.eps)


class Lion(Optimizer):
    """Lion (Chen et al. 2023): the sign of an interpolated momentum, decoupled weight decay."""

    def __init__(self, lr=1e-4, b1=0.9, b2=0.99, weight_decay=0.0):
        self.lr, self.b1, self.b2, self.weight_decay = lr, b1, b2, weight_decay
        self.m = {}

    def call_param(self, key, grad, param=None):
        if key not in self.m:
            self.m[key] = jnp.zeros_like(param)
        update = jnp.sign(self.b1 * self.m[key] + (1 - self.b1) * grad)
        self.m[key] = self.b2 * self.m[key] + (1 - self.b2) * grad
        return self.lr * (update + self.weight_decay * param)


class LAMB(Optimizer):
    """LAMB (You et al.): the Adam direction plus weight decay, scaled by the trust ratio |w| / |r|."""

    def __init__(self, lr=1e-3, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01):
        self.lr, self.b1, self.b2, self.eps, self.weight_decay = lr, b1, b2, eps, weight_decay
        self.t = jnp.zeros((), jnp.float32)
        self.m, self.v = {}, {}

    def call_model(self, grads, params=None, loss=None):
        self.t = self.t + 1.0
        return grads

    def call_param(self, key, grad, param=None):
        if key not in self.m:
            self.m[key] = jnp.zeros_like(param)
            self.v[key] = jnp.zeros_like(param)
        self.m[key] = self.b1 * self.m[key] + (1 - self.b1) * grad
        self.v[key] = self.b2 * self.v[key] + (1 - self.b2) * grad * grad
        mhat = self.m[key] / (1 - self.b1 ** self.t)
        vhat = self.v[key] / (1 - self.b2 ** self.t)
        r = mhat / (jnp.sqrt(vhat) + self.eps) + self.weight_decay * param
        wn = jnp.sqrt(jnp.sum(param * param))
        rn = jnp.sqrt(jnp.sum(r * r))
        trust = jnp.where(wn > 0, jnp.where(rn > 0, wn / rn, 1.0), 1.0)
        return self.lr * trust * r


__all__ = ["Adam", "AdamW", "SGD", "Adamax", "Lion", "LAMB"]
