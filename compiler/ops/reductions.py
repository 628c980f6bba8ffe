"""PopXL's other reductions (ReduceL1/L2/LogSum/LogSumExp/Prod), defined like ReduceSum in nn.py:
the reference computes in the accumulator dtype (float32 for float16) and rounds once."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import Op

from .nn import define_reduction, expand_reduced


def logsumexp(v: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """log(sum(exp(x - m))) + m with m the max over the axes (0 where the max is not finite: all -inf
    gives -inf, a +inf or NaN passes through), so large inputs do not overflow."""
    m = np.max(v, axis=axis, keepdims=True) if v.size else np.zeros([1] * v.ndim, v.dtype)
    m = np.where(np.isfinite(m), m, 0).astype(v.dtype)
    with np.errstate(divide="ignore"):
        r = np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


def _grad(dx_of: Any) -> Any:
    """dx = dx_of(ctx, x, y, dy) with y and dy broadcast back to x's shape."""
    def rule(c: Any, op: Op, dys: list[Any]) -> list[Any]:
        y = expand_reduced(c, op, c.fwd(op.outputs[0]))
        return [dx_of(c, c.fwd(op.inputs[0]), y, expand_reduced(c, op, dys[0]))]
    return rule


define_reduction("ReduceL1", lambda v, axis, keepdims: np.sum(np.abs(v), axis=axis, keepdims=keepdims),
                 "out = sum(|x|, axes)", grad=_grad(lambda c, x, y, g: c.mul(g, c.one("Sign", {"x": x}))))
define_reduction("ReduceL2", lambda v, axis, keepdims: np.sqrt(np.sum(v * v, axis=axis, keepdims=keepdims)),
                 "out = sqrt(sum(x*x, axes))", floats=True,  # dx = dy * x / out
                 grad=_grad(lambda c, x, y, g: c.div(c.mul(g, x), y)))
define_reduction("ReduceLogSum", lambda v, axis, keepdims: np.log(np.sum(v, axis=axis, keepdims=keepdims)),
                 "out = log(sum(x, axes))", floats=True,  # dx = dy / sum = dy / exp(out)
                 grad=_grad(lambda c, x, y, g: c.div(g, c.one("Exp", {"x": y}))))
define_reduction("ReduceLogSumExp", logsumexp, "out = log(sum(exp(x - m), axes)) + m, m = max(x, axes)",
                 floats=True,  # dx = dy * exp(x - out)
                 grad=_grad(lambda c, x, y, g: c.mul(g, c.one("Exp", {"x": c.one("Sub", {"a": x, "b": y})}))))
define_reduction("ReduceProd", lambda v, axis, keepdims: np.prod(v, axis=axis, keepdims=keepdims),
                 "out = prod(x, axes)",  # dx = dy * out / x (a zero input gives a non-finite gradient)
                 grad=_grad(lambda c, x, y, g: c.div(c.mul(g, y), x)))
