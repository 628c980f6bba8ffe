"""A one-iteration run of a loaded program over a pointer table checked once (the per-step fast path
of callers that run the same program over the same buffers step after step, e.g. the torch.optim
drop-in).

`Executor.bind(variables, movable)` checks every variable as `Executor.run` does (shape, dtype,
C-contiguity, writeability, no written buffer overlapping another) and keeps the pointer table. A
call then costs one native call. The `movable` variables (read-only inputs whose memory moves from
call to call, such as gradients that autograd allocates afresh) can be re-pointed with `repoint`:
the caller vouches that the new memory has the checked shape and dtype and is C-contiguous (it
checks its own tensors' metadata), and `repoint` checks, vectorised, that no new span overlaps a
buffer the program writes.
"""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .buffers import first_overlap

if TYPE_CHECKING:
    from .executor import Executor

_addressof = ctypes.addressof


class BoundRun:
    """The checked pointer table of one executor; `__call__` runs the program once over it."""

    def __init__(self, ex: Executor, variables: dict[int, np.ndarray], movable: Sequence[int]) -> None:
        m = ex.manifest
        if m.h2d or m.d2h:
            raise ValueError("bind: the program has host streams; use run(), which takes their data")
        self._ex = ex
        n = len(m.var_ids)
        self._table = (ctypes.c_void_p * max(n, 1))()
        slot = {vid: k for k, vid in enumerate(m.var_ids)}
        self._keep = []  # the bound arrays stay alive as long as the table points at them
        for k, (vid, shape, dtype, name, _nbytes) in enumerate(ex._checks):
            try:
                arr = variables[vid]
            except (KeyError, TypeError):
                raise ValueError(ex.missing(vid, name)) from None
            self._table[k] = ex._checked(arr, f"variable {name!r}", shape, dtype, True)
            self._keep.append(arr)
        nbytes = [c[4] for c in ex._checks]
        spans = [(a or 0, (a or 0) + nb, k) for k, (a, nb) in enumerate(zip(self._table[:n], nbytes))]
        hit = first_overlap(spans, ex._written)
        if hit is not None:
            n1, n2 = (ex._checks[k][3] for k in hit)
            raise ValueError(f"variables {n1!r} and {n2!r} share memory, and the program writes at least one "
                             "of them in place; pass separate arrays (e.g. a copy of one)")
        self._slots = np.array([slot[v] for v in movable], np.intp)
        bad = [ex._checks[k][3] for k in self._slots if k in ex._written or not nbytes[k]]
        if bad:
            raise ValueError(f"bind: {bad} cannot move between calls (written in place, or empty)")
        self._nbytes = np.array([nbytes[k] for k in self._slots], np.int64)
        # the written spans, disjoint (checked above) and sorted: a moved span overlaps one iff it
        # overlaps the last one starting before its end
        w = sorted((lo, hi) for lo, hi, k in spans if k in ex._written and hi > lo)
        self._w_lo = np.array([lo for lo, _ in w] or [0], np.int64)
        self._w_hi = np.array([hi for _, hi in w] or [0], np.int64)
        self._view = np.frombuffer(self._table, np.uintp)  # writes go straight into the ctypes table
        self._moved = [int(a) for a in self._view[self._slots]]

    def repoint(self, addresses: list[int]) -> None:
        """Point the movable variables (in bind's order) at new memory of the checked shape and dtype."""
        if addresses == self._moved:
            return
        a = np.array(addresses, np.int64)
        if a.shape != self._slots.shape:
            raise ValueError(f"repoint: expected {len(self._slots)} addresses, got {len(addresses)}")
        if not a.all():
            raise ValueError("repoint: a NULL address")
        i = np.searchsorted(self._w_lo, a + self._nbytes, "left") - 1
        clash = (i >= 0) & (self._w_hi[np.maximum(i, 0)] > a)
        if clash.any():
            k = int(self._slots[int(np.argmax(clash))])
            raise ValueError(f"variable {self._ex._checks[k][3]!r} now shares memory with a buffer the program "
                             "writes in place; pass separate arrays")
        self._view[self._slots] = a
        self._moved = addresses

    def __call__(self) -> None:
        ex = self._ex
        with ex._lock:
            rc = ex._fn(_addressof(self._table), _addressof(ex._h2d), _addressof(ex._d2h), ex._ws.ctypes.data, 1,
                        _addressof(ex._rt))
        if rc:
            ex._raise_for(rc)
