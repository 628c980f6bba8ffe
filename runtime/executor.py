"""Runs a loaded program (see loader.py) over caller-owned numpy arrays, through its C entry point.

Everything the caller passes is checked before the call, so no misuse from Python reaches machine
code: shapes, dtypes, C-contiguity, writeability of variables, stream shapes, and that no written
variable overlaps another buffer (the kernels assume distinct buffers do not alias). The pointer
tables and the 64-byte aligned workspace are allocated once; the per-call cost is a few hundred
nanoseconds per variable, and the overlap check only runs when the variables' addresses change.
"""
from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from .artifact import Manifest
from .bound_run import BoundRun
from .buffers import aligned_empty, describe_bad_array, first_overlap
from .native_runtime import BAD_ABI_VERSION, COLLECTIVE_FAILED, NO_COLLECTIVE_HOOKS, RuntimeStruct, make_runtime
from .openmp import forked_child

_ENTRY = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_int64, ctypes.c_void_p)


class CollectiveFailed(RuntimeError):
    """A collective hook returned an error (the hook's owner knows why)."""


_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


class Executor:
    def __init__(self, manifest: Manifest, address: int, owner: Any, threads: int = 0,
                 runtime: RuntimeStruct | None = None) -> None:
        self.manifest = manifest
        # the optc_runtime every call gets (thread count: run-time; collective hooks: runtime/hooks.py)
        self._rt = runtime if runtime is not None else make_runtime(threads)
        self.threads = threads
        self._owner = owner  # keeps the code mapped
        self._fn = _ENTRY(address)
        self._ws = aligned_empty(max(manifest.ws_size, 64))
        m = manifest
        self._vars = (ctypes.c_void_p * max(len(m.var_ids), 1))()
        self._h2d = (ctypes.c_void_p * max(len(m.h2d), 1))()
        self._d2h = (ctypes.c_void_p * max(len(m.d2h), 1))()
        self._checks = [(vid, spec.shape, spec.dtype.numpy, name, spec.nbytes)
                        for vid, spec, name in zip(m.var_ids, m.var_specs, m.var_names)]
        self._written = {k for k, vid in enumerate(m.var_ids) if vid in m.updated}
        self._checked_addresses: tuple | None = None
        self._lock = threading.Lock()

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
            ) -> dict[str, np.ndarray]:
        """Run `iterations` steps; variables are updated in place; returns each output stream's
        (iterations, *shape) array."""
        if isinstance(iterations, (bool, np.bool_)) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
        iterations = int(iterations)
        with self._lock:  # one run at a time: the workspace and pointer tables belong to this executor
            return self._run(variables, streams, iterations)

    def bind(self, variables: dict[int, np.ndarray], movable: list[int]) -> BoundRun:
        """A checked pointer table over `variables` for repeated one-iteration runs (bound_run.py)."""
        return BoundRun(self, variables, movable)

    def _run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
             ) -> dict[str, np.ndarray]:
        ptrs = self._vars
        for k, (vid, shape, dtype, name, nbytes) in enumerate(self._checks):
            try:
                arr = variables[vid]
            except (KeyError, TypeError):
                raise ValueError(self.missing(vid, name)) from None
            if arr.__class__ is np.ndarray and arr.shape == shape and arr.dtype == dtype and nbytes:
                try:  # the fast path: a writeable C-contiguous buffer, or an exception
                    ptrs[k] = _addressof(_from_buffer(arr))
                    continue
                except (TypeError, ValueError, BufferError):
                    pass
            ptrs[k] = self._checked(arr, f"variable {name!r}", shape, dtype, True)
        addresses = tuple(ptrs)
        if addresses != self._checked_addresses:
            self._check_overlaps(addresses)
        keep = []
        m = self.manifest
        for k, (name, spec) in enumerate(zip(m.h2d, m.h2d_specs)):
            if name not in streams:
                raise ValueError(f"no data given for host stream {name!r} ({spec.dtype.name}{spec.shape} per "
                                 "iteration)")
            a = streams[name]
            if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)
                keep.append(a)
            rows = iterations * (m.h2d_per[k] if m.h2d_per else 1)
            self._h2d[k] = self._checked(a, f"host stream {name!r}", (rows, *spec.shape), spec.dtype.numpy, False)
        outs = {}
        for k, (name, spec) in enumerate(zip(m.d2h, m.d2h_specs)):
            o = np.empty((iterations * (m.d2h_per[k] if m.d2h_per else 1), *spec.shape), spec.dtype.numpy)
            outs[name] = o
            self._d2h[k] = o.ctypes.data if o.nbytes else self._ws.ctypes.data
        self.call_native(_addressof(ptrs), _addressof(self._h2d), _addressof(self._d2h), self._ws.ctypes.data,
                         iterations, _addressof(self._rt))
        del keep
        return outs

    def call_native(self, *args: int) -> None:
        """Call the entry point (the caller holds the lock) at this executor's thread count; raise its error."""
        # libgomp's workers do not survive fork: a forked child stays out of the runtime (openmp.py)
        self._rt.num_threads = 1 if forked_child() else self.threads
        rc = self._fn(*args)
        if rc:
            self._raise_for(rc)

    def missing(self, vid: int, name: str) -> str:
        """The error for a run that binds no array to buffer `vid`."""
        if vid in self.manifest.externals:
            return (f"no array bound to caller-owned buffer {name!r} (value id {vid}): the program has no memory "
                    "of its own for it; bind an array of its shape and dtype at every run")
        return f"no buffer given for variable {name!r} (value id {vid})"

    def _raise_for(self, rc: int) -> None:
        """The error a non-zero return code of the entry point stands for."""
        if rc == COLLECTIVE_FAILED:
            raise CollectiveFailed("compiled program stopped: a collective failed")
        if rc == NO_COLLECTIVE_HOOKS:
            raise RuntimeError("the program has collectives but its optc_runtime has no collective hooks; run it "
                               "through popxl.Session (runtime/replicas.py) or give rt->collective_hooks")
        if rc == BAD_ABI_VERSION:
            raise RuntimeError("the compiled program expects another optc_runtime ABI version; clear the compile "
                               "cache and recompile")
        errors = self.manifest.errors
        msg = errors[rc - 1] if 0 < rc <= len(errors) else f"unknown error code {rc}"
        raise IndexError(f"compiled program stopped: {msg}")

    def _checked(self, arr: Any, what: str, shape: tuple[int, ...], dtype: np.dtype, writable: bool) -> int:
        msg = describe_bad_array(what, arr, shape, dtype, writable)
        if msg:  # a variable that is not an array is a type error; a stream's data is checked as a value
            raise (TypeError if writable and not isinstance(arr, np.ndarray) else ValueError)(msg)
        return arr.ctypes.data if arr.nbytes else self._ws.ctypes.data  # never NULL, never read

    def _check_overlaps(self, addresses: tuple) -> None:
        spans = [(a or 0, (a or 0) + nbytes, k) for k, (a, (*_, nbytes)) in enumerate(zip(addresses, self._checks))]
        hit = first_overlap(spans, self._written)
        if hit is not None:
            n1, n2 = (self._checks[k][3] for k in hit)
            raise ValueError(f"variables {n1!r} and {n2!r} share memory, and the program writes at least one of "
                             "them in place; pass separate arrays (e.g. a copy of one)")
        self._checked_addresses = addresses
