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
    ins: dict[str, Tensor | None] = {"probs": probs, "labels": labels}
    attrs: dict[str, Any] = {"ignore_index": ignore_index, "reduction": reduction}
    if isinstance(loss_grad, Tensor):
        ins["loss_grad"] = loss_grad
    else:
        attrs["loss_grad"] = float(loss_grad)
    loss, dx = outputs(emit_op("NlllWithSoftmaxGradDirect", ins, attrs, name="nll_loss_with_softmax_grad",
                               out_names=["loss", "dx"]))
    return loss, dx


def lamb_square(t: Tensor) -> Tensor:
    """The squared L2 norm of t, as a float32 scalar (LAMB's r1/r2)."""
    return out(emit_op("LambSquare", {"x": t}, name="lamb_square", out_names=["lamb_square_out"]))
