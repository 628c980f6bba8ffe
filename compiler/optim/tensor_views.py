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


class ParamViews:
    """The views of one parameter and its state tensors, reused by later steps while the parameter keeps
    its memory and the state tensors their identity (load_state_dict replaces them: new views)."""

    __slots__ = ("param", "ptr", "layout", "state", "views", "where", "flat", "contiguous", "bf16", "spec")

    def __init__(self, p: torch.Tensor, names: tuple[str, ...], state: list[torch.Tensor], where: str,
                 suggestion: str) -> None:
        self.param, self.ptr, self.state, self.where = p, p.data_ptr(), tuple(state), where
        self.layout = (p.shape, p.stride(), p.dtype)  # p.set_(...) or p.data = p.data.view(...) keep the pointer
        self.views = [flat_view(p, where, suggestion)]
        for name, t in zip(names, state):
            if t.dim() and not same_layout(p, t):
                raise UnsupportedTensorError(
                    f"state[{name!r}] of {where} has shape {tuple(t.shape)} and strides {t.stride()}, the parameter "
                    f"{tuple(p.shape)} and {p.stride()}: load a state_dict saved for parameters of this layout")
            if t.dim() and t.dtype != p.dtype:
                raise UnsupportedTensorError(f"state[{name!r}] of {where} is {t.dtype}, the parameter {p.dtype}")
            self.views.append(flat_view(t, f"state[{name!r}] of {where}", suggestion))
        self.flat = (-1,) if p.dim() else ()
        self.contiguous = p.is_contiguous()
        self.bf16 = p.dtype == torch.bfloat16
        self.spec = (self.views[0].shape, DTYPES[p.dtype])

    def valid(self, p: torch.Tensor, state: list[torch.Tensor]) -> bool:
        return (self.param is p and self.ptr == p.data_ptr() and self.layout == (p.shape, p.stride(), p.dtype)
                and len(state) == len(self.state)
                and all(a is b for a, b in zip(state, self.state)))

    def grad(self, suggestion: str) -> np.ndarray:
        """The gradient's view; a gradient laid out unlike its parameter is first copied into its layout."""
        p = self.param
        g = p.grad
        if g.shape != p.shape:  # torch.optim raises too (the kernel would read it as the parameter's shape)
            raise RuntimeError(f"gradient of {self.where} has shape {tuple(g.shape)}, the parameter "
                               f"{tuple(p.shape)}; they must be the same")
        if (self.contiguous and g.is_cpu and g.layout == torch.strided and g.dtype == p.dtype and g.is_contiguous()
                and not g.is_neg()):
            g = g.detach().view(self.flat)  # the common case, without the checks below
            return g.view(torch.int16).numpy().view(ml_dtypes.bfloat16) if self.bf16 else g.numpy()
        if g.layout != torch.strided:
            raise UnsupportedTensorError(f"gradient of {self.where} is sparse: not supported; {suggestion} "
                                         "(torch.optim.SparseAdam for sparse gradients)")
        if g.dtype != p.dtype or g.device != p.device:
            raise UnsupportedTensorError(f"gradient of {self.where} is {g.dtype} on {g.device}, the parameter "
                                         f"{p.dtype} on {p.device}")
        if not same_layout(p, g):  # the documented fallback: read a copy in the parameter's layout
            g = torch.empty_like(p, memory_format=torch.preserve_format).copy_(g)
        return flat_view(g, f"gradient of {self.where}", suggestion)
