"""torch's CPU optimizer arithmetic, op for op, as IR: what the torch.optim drop-ins compile.

ATen computes an op on a float16/bfloat16 tensor in float32 ("op math") and rounds the result
to the tensor's dtype; float32/float64 tensors compute in their own dtype. Its vectorised CPU
kernels (measured against torch 2.13, x86-64 with FMA) are, with (op) the op-math cast and (dt)
the cast to the tensor's dtype:

    a.add(b, alpha=s)          fma(b, (dt)s, a)          the alpha is rounded to the tensor dtype
    a.add_(s)                  a + (dt)s
    a.mul_(s)                  a * (op)s
    a / s                      a / (op)s
    a.lerp_(b, w)              |w| < 0.5 ? fma(w, b - a, a) : fma(w - 1, b - a, b)
    a.addcmul_(b, c, value=s)  fma((op)s * b, c, a)
    a.addcdiv_(b, c, value=s)  a + ((op)s * b) / c
    a.sqrt()                   sqrt(a)

Scalars arrive as float64 kernel inputs (Python floats in torch) and scalar arithmetic such as
`1 - beta1 ** step` is done in float64, as Python does it. Two things are not reproducible bit
for bit: torch's float32 sqrt is MKL's vsSqrt (within 1 ulp, not correctly rounded), and the
scalar tail loop of ATen's float16/bfloat16 kernels (the last < 32 elements of a tensor) rounds
`alpha * b` to the tensor dtype before adding. Everything else agrees to the last bit.
"""
from __future__ import annotations

from compiler.ir import DType
from compiler.ops import builder as ops
from compiler.ops.builder import Handle
from compiler.ops.builder import fma

_REDUCED = (DType.float16, DType.bfloat16)


class Arith:
    """ATen's arithmetic on tensors of dtype `dt` (see the module docstring); scalars are float64 Handles."""

    def __init__(self, dt: DType) -> None:
        self.dt = dt
        self.op = DType.float32 if dt in _REDUCED else dt

    def up(self, x: Handle) -> Handle:
        return x if x.dtype == self.op else ops.cast(x, self.op)

    def down(self, x: Handle) -> Handle:
        return x if x.dtype == self.dt else ops.cast(x, self.dt)

    def opmath(self, s: Handle) -> Handle:
        return ops.cast(s, self.op)

    def rounded(self, s: Handle) -> Handle:
        """A scalar rounded to the tensor dtype, then widened to op math (add's alpha and added scalars)."""
        return self.up(ops.cast(s, self.dt))

    def add(self, a: Handle, b: Handle, alpha: Handle) -> Handle:
        """a.add(b, alpha=alpha)"""
        return self.down(fma(self.up(b), self.rounded(alpha), self.up(a)))

    def add_scalar(self, a: Handle, s: Handle) -> Handle:
        """a.add_(s)"""
        return self.down(self.up(a) + self.rounded(s))

    def mul_scalar(self, a: Handle, s: Handle) -> Handle:
        """a.mul_(s)"""
        return self.down(self.up(a) * self.opmath(s))

    def div_scalar(self, a: Handle, s: Handle) -> Handle:
        """a / s"""
        return self.down(self.up(a) / self.opmath(s))

    def lerp(self, a: Handle, b: Handle, w: Handle) -> Handle:
        """a.lerp_(b, w): the branch on |w| is on a scalar, so it costs one select per element."""
        wo = self.opmath(w)
        small = ops.abs(wo) < 0.5
        coef = ops.where(small, wo, wo - 1.0)
        ua, ub = self.up(a), self.up(b)
        return self.down(fma(coef, ub - ua, ops.where(small, ua, ub)))

    def addcmul(self, a: Handle, b: Handle, c: Handle, s: Handle) -> Handle:
        """a.addcmul_(b, c, value=s)"""
        return self.down(fma(self.opmath(s) * self.up(b), self.up(c), self.up(a)))

    def addcdiv(self, a: Handle, b: Handle, c: Handle, s: Handle) -> Handle:
        """a.addcdiv_(b, c, value=s)"""
        return self.down(self.up(a) + (self.opmath(s) * self.up(b)) / self.up(c))

    def sqrt(self, a: Handle) -> Handle:
        return self.down(ops.sqrt(self.up(a)))


def adam_step(p: Handle, g: Handle, m: Handle, v: Handle, step: Handle, vmax: Handle | None,
              hyper: tuple[Handle, ...], *, maximize: bool, weight_decay: bool, decoupled: bool) -> None:
    """torch.optim.Adam / AdamW (`_single_tensor_adam`), statement for statement; p, m, v, step and vmax
    (max_exp_avg_sq, amsgrad) are updated in place. hyper = (lr, beta1, beta2, eps, weight_decay) as
    float64 scalars."""
    param, m_new, src, t = adam_moments(p, g, m, v, step, vmax, hyper, maximize=maximize,
                                        weight_decay=weight_decay, decoupled=decoupled)
    ops.copy_(p, adam_param(param, m_new, Arith(p.dtype).sqrt(src), t, hyper))


def adam_moments(p: Handle, g: Handle, m: Handle, v: Handle, step: Handle, vmax: Handle | None,
                 hyper: tuple[Handle, ...], *, maximize: bool, weight_decay: bool, decoupled: bool
                 ) -> tuple[Handle, Handle, Handle, Handle]:
    """Adam up to the square root: updates step, m, v (and vmax) in place; returns (the parameter after
    decoupled weight decay, the new m, the tensor whose square root divides the update, the new step)."""
    lr, b1, b2, eps, wd = hyper
    ar = Arith(p.dtype)
    one = p.gb.constant(1.0, DType.float64)
    t = step + 1.0  # step_t += 1
    ops.copy_(step, t)
    if maximize:
        g = -g
    param = p
    if weight_decay:
        if decoupled:
            param = ar.mul_scalar(p, one - lr * wd)  # param.mul_(1 - lr * weight_decay)
        else:
            g = ar.add(g, p, wd)  # grad = grad.add(param, alpha=weight_decay)
    m_new = ar.lerp(m, g, one - b1)  # exp_avg.lerp_(grad, 1 - beta1)
    v_new = ar.addcmul(ar.mul_scalar(v, b2), g, g, one - b2)  # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
    src = v_new
    if vmax is not None:
        src = ops.maximum(vmax, v_new)  # torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        ops.copy_(vmax, src)
    ops.copy_(m, m_new)
    ops.copy_(v, v_new)
    return param, m_new, src, t


def adam_param(param: Handle, m: Handle, root: Handle, t: Handle, hyper: tuple[Handle, ...]) -> Handle:
    """Adam's parameter update from the new exp_avg `m` and `root` = sqrt(exp_avg_sq or max_exp_avg_sq)
    (in the parameter's dtype) at step `t`; returns the new parameter."""
    lr, b1, b2, eps, _ = hyper
    ar = Arith(param.dtype)
    one = param.gb.constant(1.0, DType.float64)
    s = ops.cast(t, DType.float64)  # step = step_t.item()
    step_size = lr / (one - ops.pow(b1, s))
    bc2_sqrt = ops.sqrt(one - ops.pow(b2, s))
    denom = ar.add_scalar(ar.div_scalar(root, bc2_sqrt), eps)  # (sqrt(v) / bc2_sqrt).add_(eps)
    return ar.addcdiv(param, m, denom, -step_size)  # param.addcdiv_(exp_avg, denom, value=-step_size)


def sgd_step(p: Handle, g: Handle, buf: Handle | None, hyper: tuple[Handle, ...], *, maximize: bool,
             weight_decay: bool, nesterov: bool, first: bool) -> None:
    """torch.optim.SGD (`_single_tensor_sgd`), statement for statement; p and buf (the momentum buffer, None
    without momentum) are updated in place. `first`: the buffer is new, so it becomes a copy of the gradient.
    hyper = (lr, momentum, dampening, weight_decay) as float64 scalars."""
    lr, mom, damp, wd = hyper
    ar = Arith(p.dtype)
    one = p.gb.constant(1.0, DType.float64)
    d = -g if maximize else g
    if weight_decay:
        d = ar.add(d, p, wd)  # grad = grad.add(param, alpha=weight_decay)
    if buf is not None:
        b = d if first else ar.add(ar.mul_scalar(buf, mom), d, one - damp)  # buf.mul_(m).add_(grad, alpha=1-damp)
        ops.copy_(buf, b)
        d = ar.add(d, b, mom) if nesterov else b  # grad = grad.add(buf, alpha=momentum)
    ops.copy_(p, ar.add(p, d, -lr))  # param.add_(grad, alpha=-lr)

