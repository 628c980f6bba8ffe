"""Zero-copy numpy views of CPU torch tensors, flattened to 1-D, and a cache of them across steps.

An elementwise update does not care about a tensor's shape, only that a parameter, its gradient
and its state walk memory in the same order: every dense tensor (contiguous, channels-last, any
permutation of a contiguous layout) is seen as a 1-D array of its elements in memory order.
Needs torch (imported by compiler.optim.torch only).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import torch

from compiler.ir import DType

DTYPES = {torch.float32: DType.float32, torch.float64: DType.float64, torch.float16: DType.float16,
          torch.bfloat16: DType.bfloat16}


class UnsupportedTensorError(RuntimeError, ValueError):
    """A tensor the compiled step cannot update in place (device, layout, dtype); the message says what to do."""


def dense_order(t: torch.Tensor) -> torch.Tensor | None:
    """t permuted so that it is contiguous (its elements in memory order), or None if t is not dense."""
    if t.is_contiguous():
        return t
    perm = sorted(range(t.dim()), key=lambda d: (-t.stride(d), d))
    tp = t.permute(perm)
    return tp if tp.is_contiguous() else None


def flat_view(t: torch.Tensor, what: str, suggestion: str) -> np.ndarray:
    """The 1-D numpy view of t's memory (no copy); clear errors for what cannot be updated in place."""
    if t.device.type != "cpu":
        raise UnsupportedTensorError(
            f"{what} is on {t.device}: the compiled step updates CPU tensors in place; {suggestion}")
    if t.layout != torch.strided:
        raise UnsupportedTensorError(f"{what} is {t.layout} (sparse): not supported; {suggestion}")
    if t.dtype not in DTYPES:
        raise UnsupportedTensorError(
            f"{what} has dtype {t.dtype}: supported are float32, float64, float16 and bfloat16; {suggestion}")
    d = dense_order(t.detach())
    if d is None:
        raise UnsupportedTensorError(
            f"{what} with shape {tuple(t.shape)} and strides {t.stride()} is not dense (a slice or an expanded "
            f"view): make the parameter contiguous (`p.data = p.data.contiguous()`) before the first step; "
            f"{suggestion}")
    if d.is_conj() or d.is_neg():
        d = d.resolve_conj().resolve_neg()
    d = d.reshape(-1) if d.dim() else d
    if d.dtype == torch.bfloat16:  # numpy has no bfloat16: view the bits, then reinterpret them
        return d.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return d.numpy()


def same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Do a and b hold their elements in the same memory order? (strides of size-1 dims do not matter)"""
    return a.shape == b.shape and all(sa == sb for n, sa, sb in zip(a.shape, a.stride(), b.stride()) if n > 1)


class ViewCache:
    """Views of the tensors used by the last step, reused while a tensor keeps its identity and memory.

    Entries hold the tensor itself, so an id cannot be reused while its entry lives; only tensors
    used by the current step are kept (`swap`), so replaced state (load_state_dict) is released.
    """

    def __init__(self) -> None:
        self._old: dict[int, tuple[torch.Tensor, int, np.ndarray]] = {}
        self._new: dict[int, tuple[torch.Tensor, int, np.ndarray]] = {}

    def get(self, t: torch.Tensor, what: str, suggestion: str) -> np.ndarray:
        key, ptr = id(t), t.data_ptr()
        e = self._old.get(key)
        if e is None or e[0] is not t or e[1] != ptr or e[2].size != t.numel():
            e = (t, ptr, flat_view(t, what, suggestion))
        self._new[key] = e
        return e[2]

    def swap(self) -> None:
        self._old, self._new = self._new, {}
