"""In-place variants: elementwise ones write x (relu_, exp_, ...); shape ones are PopXL views."""
from __future__ import annotations

from typing import Any, Iterable

from ..tensor import Tensor
from ._emit import emit_op, out


def _modify(kind: str, name: str):
    def f(t: Tensor) -> Tensor:
        return out(emit_op(kind, {"x": t}, name=name, out_names=[f"{name}_{t.name}"]))
    f.__name__ = name
    f.__doc__ = f"t <- {name[:-1]}(t), in place on t."
    return f


relu_ = _modify("ReluInplace", "relu_")
exp_ = _modify("ExpInplace", "exp_")
gelu_ = _modify("GeluInplace", "gelu_")
geluerf_ = _modify("GeluErfInplace", "geluerf_")
swish_ = _modify("SwishInplace", "swish_")


def reshape_(t: Tensor, shape: Iterable[int]) -> Tensor:
    """reshape as a PopXL view of t (see ops/views.py)."""
    return out(emit_op("ReshapeInplace", {"x": t}, {"shape": tuple(int(s) for s in shape)}, name="reshape_",
                       out_names=["reshape__out"]))


def flatten_(t: Tensor) -> Tensor:
    return reshape_(t, (-1,))


def transpose_(t: Tensor, permutation: Any = None) -> Tensor:
    """transpose as a PopXL view of t (see ops/views.py)."""
    perm = None if permutation is None else tuple(int(p) for p in permutation)
    return out(emit_op("TransposeInplace", {"x": t}, {"perm": perm}, name="transpose_",
                       out_names=["transpose__out"]))


def detach_(t: Tensor) -> Tensor:
    """detach as a PopXL view of t (see ops/views.py)."""
    return out(emit_op("DetachInplace", {"x": t}, name="detach_", out_names=["detach__out"]))
