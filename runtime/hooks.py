"""The collective hooks compiled code calls (the table in compiler/backends/llvm/collectives.py),
implemented in Python over a Rendezvous (runtime/replicas.py): in one process the replicas meet in shared
memory, under MPI the rendezvous goes on to the other processes (runtime/mpi.py).

The hooks see the compiled program's own buffers as numpy arrays (no copy); an exception inside a hook
is kept for its replica and turned into a non-zero return, which stops that replica's run.
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from compiler.ir import DType
from compiler.ops.collectives import REDUCE_OPS

from .native_runtime import ABI_VERSION, RuntimeStruct

HOOK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                        ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32)
INDEX = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)
DTYPES = list(DType)  # a hook receives the index of its buffers' dtype in this list


class HookTable(ctypes.Structure):
    _fields_ = [("all_reduce", HOOK), ("reduce_scatter", HOOK), ("all_gather", HOOK), ("replica_index", INDEX)]


def view(address: int, count: int, dtype: np.dtype) -> np.ndarray:
    """The `count` elements at `address` as a writeable numpy array (no copy)."""
    if count == 0:
        return np.empty(0, dtype)
    buf = (ctypes.c_char * (count * dtype.itemsize)).from_address(address)
    return np.frombuffer(buf, dtype=dtype, count=count)


class Hooks:
    """One hook table for all local replicas of a program; `ctx` = local replica index + 1."""

    def __init__(self, rendezvous: Any) -> None:
        self.rendezvous = rendezvous
        self.errors: dict[int, BaseException] = {}
        self.calls = 0  # hook calls of local replica 0 (how many collectives its code issued)
        n = rendezvous.n_total

        def hook(kind: str, out_count: Any) -> Any:
            def fn(ctx: int, src: int, dst: int, count: int, dtype: int, op: int, stride: int, size: int) -> int:
                local = (ctx or 1) - 1
                if local in self.errors:  # this run already failed: the rest of the iteration skips ahead
                    return 1
                if local == 0:
                    self.calls += 1
                try:
                    dt = DTYPES[dtype].numpy
                    attrs = {"op": REDUCE_OPS[op], "group": (stride, size), "replicas": n, "axis": 0,
                             "mode": "new_axis", "out_shape": (size, count)}
                    x = view(src, count, dt)
                    out = view(dst, out_count(count, size), dt)
                    if kind == "ReplicatedAllGather":
                        out = out.reshape(size, count)
                    rendezvous.collective(local, kind, attrs, x, out)
                    return 0
                except BaseException as e:  # an exception must not cross into machine code
                    self.errors.setdefault(local, e)
                    return 1
            return HOOK(fn)

        self.table = HookTable(hook("ReplicatedAllReduceInplace", lambda c, s: c),
                               hook("ReplicatedReduceScatter", lambda c, s: -(-c // s)),
                               hook("ReplicatedAllGather", lambda c, s: c * s),
                               INDEX(lambda ctx: rendezvous.first + (ctx or 1) - 1))

    def runtime(self, local: int, threads: int = 0) -> RuntimeStruct:
        """The optc_runtime local replica `local`'s calls get (keep it alive while they run)."""
        return RuntimeStruct(ABI_VERSION, threads, local + 1, ctypes.addressof(self.table))

    def error(self, local: int) -> BaseException:
        """Why replica `local`'s run stopped (and forget it, for the next run)."""
        e = self.errors.pop(local, None)
        return e if e is not None else RuntimeError("a collective failed without a recorded error")
