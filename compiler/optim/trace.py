"""Tracing a functional Optimizer's step into a kernel: what is an input, what is state, what is baked.

One trace runs `call_model` then `call_param` per parameter on traced tensors, with the optimizer's
attributes swapped for tensors while it runs:
  numpy arrays (directly, or values of a dict attribute)   state: kernel buffers, read and written
  Python / numpy scalars (and tuples of them)              baked into the kernel as constants
  anything else                                             left alone
State created while tracing (jnp.zeros_like & co, or any new tensor stored in an attribute or a
dict entry) gets a numpy array after the trace. Every buffer has a binding (where its array comes
from at run time) so a compiled kernel can be reused for every call with the same signature.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.ops import builder as ops
from compiler.ops.builder import Handle

from .kernels import KernelBuilder
from .traced import Traced, to_tensor

Binding = tuple  # ("param", key) | ("grad", key) | ("loss",) | ("kw", name) | ("state", attr, key|None) | ("temp", i)
_BAKED = (bool, int, float, complex, str, bytes, type(None), np.generic)


def is_baked(v: Any) -> bool:
    """Values that are compiled in as constants (part of the kernel's signature)."""
    if isinstance(v, (tuple, frozenset)):
        return all(is_baked(x) for x in v)
    return isinstance(v, _BAKED)


def plain(v: Any) -> Any:
    """numpy scalars as Python scalars while tracing (so `np.float32(b1) * tensor` stays a tensor op)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return tuple(plain(x) for x in v)
    return v


class TraceDict(dict):
    """A state dict while tracing: remembers the first value stored under each key."""

    def __init__(self, items: dict) -> None:
        super().__init__(items)
        self.first: dict[Any, Any] = {}

    def __setitem__(self, k: Any, v: Any) -> None:
        self.first.setdefault(k, v)
        super().__setitem__(k, v)

    def setdefault(self, k: Any, v: Any = None) -> Any:
        if k not in self:
            self[k] = v
        return self[k]

    def update(self, *a: Any, **kw: Any) -> None:
        for k, v in dict(*a, **kw).items():
            self[k] = v


@dataclass
class Trace:
    """The buffers of one trace and where their arrays come from."""

    kb: KernelBuilder
    bindings: list[Binding] = field(default_factory=list)
    fresh: dict[int, tuple[tuple[int, ...], np.dtype, float]] = field(default_factory=dict)  # vid -> state init
    temps: list[tuple[tuple[int, ...], np.dtype, float]] = field(default_factory=list)

    @property
    def ir(self) -> Any:
        return self.kb.ir

    def buffer(self, binding: Binding, name: str, shape: tuple[int, ...], dtype: Any) -> Traced:
        t = self.kb.buffer(name, shape, dtype)
        self.bindings.append(binding)
        return Traced(t)

    def new_state(self, shape: tuple[int, ...], dtype: np.dtype, fill: float) -> Traced:
        """jnp creation while tracing: a buffer whose binding is decided when the trace ends."""
        t = self.buffer(("temp", len(self.temps)), "state", shape, dtype)
        self.temps.append((shape, dtype, fill))
        self.fresh[t.t.value.id] = (shape, dtype, fill)
        return t

    def store(self, slot: tuple[str, Any], first: Any, final: Any, old: Traced | None) -> tuple | None:
        """Make `final` the slot's new value: returns (shape, dtype, fill) when the slot is new state."""
        if old is not None:  # existing state: write the final value back into its buffer (in its dtype)
            write_back(old, final)
            return None
        f = first.t if isinstance(first, Traced) else first
        if isinstance(f, Handle) and f.value.id in self.fresh:  # jnp-created: it is the buffer
            vid = f.value.id
            self.bindings[self.kb.vids.index(vid)] = ("state", *slot)
            write_back(Traced(f), final)
            return self.fresh.pop(vid)
        final = final if isinstance(final, Traced) else Traced(final)
        buf = self.buffer(("state", *slot), f"{slot[0]}", final.shape, final.dtype)
        write_back(buf, final)
        return final.shape, final.dtype, 0.0

    def structure(self) -> Any:
        """The program's structure with buffers named by binding (equal structures compute the same)."""
        from compiler.ir.hashing import graph_key

        names = {vid: ("temp", *self.temps[b[1]]) if b[0] == "temp" else b  # temps: constant-filled, read only
                 for vid, b in zip(self.kb.vids, self.bindings)}

        def canon(x: Any) -> Any:
            if isinstance(x, tuple):
                if len(x) == 2 and x[0] == "ext" and x[1] in names:
                    return ("ext", names[x[1]])
                return tuple(canon(i) for i in x)
            return x
        return canon(graph_key(self.ir, self.ir.main))


def write_back(var: Traced, value: Any) -> None:
    """var <- value, in place, cast to var's dtype (state keeps its dtype, as `a[...] = b` in numpy)."""
    v = value.t if isinstance(value, Traced) else value
    if v is not var.t:
        ops.copy_(var.t, to_tensor(value, var.dtype, var.t.gb))


def is_value(x: Any) -> bool:
    return isinstance(x, (Traced, Handle))
