"""cross_entropy_with_grad: softmax + NLL with the gradient computed directly (PopART semantics)."""
from __future__ import annotations

from typing import Any

from compiler import popxl


def cross_entropy(x: popxl.Tensor, labels: popxl.Tensor, ignore_index: int | None = None,
                  reduction: str = "mean") -> popxl.Tensor:
    """loss = reduction(-log softmax(x)[label]) over the items of `labels` (ignore_index items excluded)."""
    return popxl.ops.nll_loss(popxl.ops.softmax(x, axis=-1), labels, ignore_index=ignore_index, reduction=reduction)


def cross_entropy_with_grad(x: popxl.Tensor, labels: popxl.Tensor, loss_scaling: Any = 1,
                            ignore_index: int | None = None, reduction: str = "mean"
                            ) -> tuple[popxl.Tensor, popxl.Tensor]:
    """loss = mean(-log softmax(x)[label]); dx = (softmax(x) - onehot) * loss_scaling / N (loss not scaled)."""
    if not isinstance(loss_scaling, popxl.Tensor):
        loss_scaling = popxl.constant(float(loss_scaling), popxl.float32, name="loss_scaling")
    probs = popxl.ops.softmax(x, axis=-1)
    return popxl.ops.nll_loss_with_softmax_grad(probs, labels, loss_scaling, ignore_index, reduction)
