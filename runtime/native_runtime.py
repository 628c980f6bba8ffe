"""`optc_runtime`: the run-time context every compiled entry point receives (compiler/backends/llvm/abi.py
prints its C declaration into the generated header).

    typedef struct optc_runtime {
        int32_t abi_version;     /* OPTC_ABI_VERSION: the layout of this struct */
        int32_t num_threads;     /* threads for parallel regions; 0 = the OpenMP runtime's default */
        void *collective_ctx;    /* reserved for collectives: NULL when the program has none */
        void *collective_hooks;
    } optc_runtime;

The same object code runs with any thread count: the count is read from here on every call, never
baked into the code. A NULL runtime pointer means all defaults.
"""
from __future__ import annotations

import ctypes

ABI_VERSION = 1
# what the entry point returns when `abi_version` is not ABI_VERSION (error codes of checks are >= 1)
BAD_ABI_VERSION = -1
# what it returns when a collective hook returned non-zero (the hook's owner knows why), and when a
# program with collectives was given no hooks (runtime/hooks.py provides them)
COLLECTIVE_FAILED = -2
NO_COLLECTIVE_HOOKS = -3


class RuntimeStruct(ctypes.Structure):
    """ctypes mirror of `optc_runtime` (field order and types are the ABI)."""

    _fields_ = [("abi_version", ctypes.c_int32), ("num_threads", ctypes.c_int32),
                ("collective_ctx", ctypes.c_void_p), ("collective_hooks", ctypes.c_void_p)]


def make_runtime(num_threads: int = 0) -> RuntimeStruct:
    if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 0:
        raise ValueError(f"the thread count must be an integer >= 0 (0 = the OpenMP default), got {num_threads!r}")
    return RuntimeStruct(ABI_VERSION, num_threads, None, None)
