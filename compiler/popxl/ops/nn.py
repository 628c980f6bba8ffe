"""Tensor ops: matmul, reductions, reshape, transpose, softmax, nll."""
from __future__ import annotations

from typing import Any, Iterable


from compiler.ir import as_dtype

from ..tensor import Tensor
from ._emit import emit_op, out, outputs


def matmul(lhs: Tensor, rhs: Tensor, available_memory_proportion: float | None = None, output_type: Any = None,
           partials_type: Any = None) -> Tensor:
    """out = lhs @ rhs. `available_memory_proportion` and `partials_type` steer IPU tiling and the
    IPU accumulator; on the CPU they change nothing (float32 accumulates in float32, float16 as
    documented for MatMul). `output_type` casts the result (PopXL's MatMul output dtype)."""
    if available_memory_proportion is not None and not 0.0 < float(available_memory_proportion) <= 1.0:
        raise ValueError(f"matmul: available_memory_proportion must be in (0, 1], got {available_memory_proportion}")
    y = out(emit_op("MatMul", {"a": lhs, "b": rhs}, name="matmul", out_names=["matmul_out"]))
    if output_type is not None and as_dtype(output_type) != y.dtype:
        from .math import cast

        y = cast(y, output_type)
    return y


def _axes(axis: int | Iterable[int] | None) -> tuple[int, ...] | None:
    if axis is None:
        return None
    return (int(axis),) if isinstance(axis, int) else tuple(int(a) for a in axis)


def _reduce(kind: str, name: str):
    def f(t: Tensor, axis: int | Iterable[int] | None = None, keepdims: bool = False) -> Tensor:
        return out(emit_op(kind, {"x": t}, {"axes": _axes(axis), "keepdims": bool(keepdims)},
                           name=name, out_names=[f"{name}_out"]))
    f.__name__ = name
    return f


sum = _reduce("ReduceSum", "sum")
mean = _reduce("ReduceMean", "mean")
max = _reduce("ReduceMax", "max")
min = _reduce("ReduceMin", "min")
sumsquare = _reduce("ReduceSumSquare", "sumsquare")
l1 = _reduce("ReduceL1", "l1")
l2 = _reduce("ReduceL2", "l2")
logsum = _reduce("ReduceLogSum", "logsum")
logsumexp = _reduce("ReduceLogSumExp", "logsumexp")
prod = _reduce("ReduceProd", "prod")


def reshape(t: Tensor, shape: Iterable[int]) -> Tensor:
    return out(emit_op("Reshape", {"x": t}, {"shape": tuple(int(s) for s in shape)}, name="reshape",
                       out_names=["reshape_out"]))


def flatten(t: Tensor) -> Tensor:
    return reshape(t, (-1,))


def transpose(t: Tensor, permutation: Iterable[int] | None = None) -> Tensor:
    perm = None if permutation is None else tuple(int(p) for p in permutation)
    return out(emit_op("Transpose", {"x": t}, {"perm": perm}, name="transpose", out_names=["transpose_out"]))


def softmax(t: Tensor, axis: int = -1) -> Tensor:
    return out(emit_op("Softmax", {"x": t}, {"axis": int(axis)}, name="softmax", out_names=["softmax_out"]))


def nll_loss_with_softmax_grad(probs: Tensor, labels: Tensor, loss_grad: Any = 1, ignore_index: int | None = None,
                               reduction: str = "mean") -> tuple[Tensor, Tensor]:
    """loss = reduction(-log(probs[label] + 1e-7)), dx = (probs - onehot(label)) * loss_grad / N; labels may be
    integer or float (truncated). A number loss_grad becomes a constant of probs' dtype, as PopXL makes it."""
    from ..creation import constant

    if not isinstance(loss_grad, Tensor):
        loss_grad = constant(float(loss_grad), probs.dtype, name="loss_grad")
    ins: dict[str, Tensor | None] = {"probs": probs, "labels": labels, "loss_grad": loss_grad}
    attrs: dict[str, Any] = {"ignore_index": ignore_index, "reduction": reduction}
    loss, dx = outputs(emit_op("NlllWithSoftmaxGradDirect", ins, attrs, name="nll_loss_with_softmax_grad",
                               out_names=["loss", "dx"]))
    return loss, dx


def lamb_square(t: Tensor) -> Tensor:
    """The squared L2 norm of t, as a float32 scalar (LAMB's r1/r2)."""
    return out(emit_op("LambSquare", {"x": t}, name="lamb_square", out_names=["lamb_square_out"]))


def nll_loss(probs: Tensor, labels: Tensor, ignore_index: int | None = None, reduction: str = "mean",
             log_prob: bool = False) -> Tensor:
    """Negative log-likelihood of `labels` under `probs` (class dim last): per item -log(p[label])
    (-p[label] when `log_prob`), items equal to ignore_index contribute 0; reduced by 'mean' (over the
    non-ignored items, at least 1), 'sum' or 'none'. One Nll op, as PopXL builds it."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    attrs = {"reduction": reduction, "ignore_index": None if ignore_index is None else int(ignore_index),
             "log_prob": bool(log_prob)}
    return out(emit_op("Nll", {"probs": probs, "labels": labels}, attrs, name="nll", out_names=["nll_out"]))
