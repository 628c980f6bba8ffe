"""A one-iteration run of a loaded program over a pointer table checked once (the per-step fast path
of callers that run the same program over the same buffers step after step, e.g. the torch.optim
drop-in).

`Executor.bind(variables, movable)` checks every variable as `Executor.run` does (shape, dtype,
C-contiguity, writeability, no written buffer overlapping another) and keeps the pointer table. A
call then costs one native call. The `movable` variables (read-only inputs whose memory moves from
call to call, such as gradients that autograd allocates afresh) can be re-pointed with `repoint`:
the caller vouches that the new memory has the checked shape and dtype and is C-contiguous (it
checks its own tensors' metadata), and `repoint` checks that no new span overlaps a buffer the
program writes.

Plain Python over lists here, not numpy: the drop-in calls this right after a torch backward, whose
data has just evicted everything from the caches, and then every numpy call on a handful of
elements costs microseconds. Re-pointing the 8 gradients of benchmarks/torch_loop.py's conv net
took ~100 us as numpy's searchsorted and fancy indexing, a few us as `bisect` over lists
(benchmarks/torch_step_profile.py splits the step right after backward into its parts).
"""
from __future__ import annotations

import ctypes
from bisect import bisect_left
from itertools import repeat
from operator import add, gt, sub
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
        self._slots = [slot[v] for v in movable]
        bad = [ex._checks[k][3] for k in self._slots if k in ex._written or not nbytes[k]]
        if bad:
            raise ValueError(f"bind: {bad} cannot move between calls (written in place, or empty)")
        self._nbytes = [nbytes[k] for k in self._slots]
        # the written spans, disjoint (checked above) and sorted, after a sentinel span [0, 0): a moved
        # span [a, a + n) overlaps one iff it overlaps the last one starting before a + n
        w = sorted((lo, hi) for lo, hi, k in spans if k in ex._written and hi > lo)
        self._w_lo = [0] + [lo for lo, _ in w]
        self._w_hi = [0] + [hi for _, hi in w]
        self._moved = [self._table[k] for k in self._slots]
        self._set = self._table.__setitem__
        # the entry point's arguments never change: the table, the (empty) stream tables, the
        # workspace, one iteration, the runtime struct
        self._args = (_addressof(self._table), _addressof(ex._h2d), _addressof(ex._d2h), ex._ws.ctypes.data, 1,
                      _addressof(ex._rt))

    def repoint(self, addresses: list[int]) -> None:
        """Point the movable variables (in bind's order) at new memory of the checked shape and dtype."""
        if addresses == self._moved:
            return
        if len(addresses) != len(self._slots):
            raise ValueError(f"repoint: expected {len(self._slots)} addresses, got {len(addresses)}")
        if not all(addresses):
            raise ValueError("repoint: a NULL address")
        lo, hi = self._w_lo, self._w_hi
        last = map(sub, map(bisect_left, repeat(lo), map(add, addresses, self._nbytes)), repeat(1))
        if any(map(gt, map(hi.__getitem__, last), addresses)):
            j = next(j for j, (a, nb) in enumerate(zip(addresses, self._nbytes))
                     if hi[bisect_left(lo, a + nb) - 1] > a)
            raise ValueError(f"variable {self._ex._checks[self._slots[j]][3]!r} now shares memory with a buffer "
                             "the program writes in place; pass separate arrays")
        list(map(self._set, self._slots, addresses))
        self._moved = addresses

    def __call__(self) -> None:
        ex = self._ex
        with ex._lock:
            ex.call_native(*self._args)
