"""The OpenMP runtime native code calls for its parallel regions: GCC's libgomp (docs/threads.md).

`load()` makes libgomp's symbols visible to the JIT, once per process. It opens the library by its
soname, `libgomp.so.1`, so a process that already holds a libgomp (PyTorch's CPU wheels ship one in
torch/lib under that soname) gets that same one back: one runtime, one pool of worker threads, no
two pools spinning against each other. A torch imported afterwards resolves its libgomp.so.1 to ours
the same way.

Threads: `default_threads()` is the number of CPUs this process may run on (its affinity mask).
OMP_NUM_THREADS is the OpenMP runtime's business: it sets the count a C caller gets with
rt->num_threads == 0; Python sessions always pass an explicit count (CompileOptions.threads, else
the affinity count), so the environment never changes what a Session does.

fork: libgomp's worker pool does not survive fork() (the child's runtime would wait for workers that
do not exist). A child forked from a process that had loaded libgomp therefore runs every compiled
step on one thread, without entering the runtime; `forked_child()` says so.
"""
from __future__ import annotations

import ctypes.util
import functools
import os
import shutil
import subprocess

SONAME = "libgomp.so.1"
_state = {"loaded": False, "forked": False}


def _after_fork_in_child() -> None:
    if _state["loaded"]:
        _state["forked"] = True


os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def library() -> str:
    """What to dlopen: the soname when the dynamic linker can find it, else the path gcc knows."""
    if ctypes.util.find_library("gomp"):
        return SONAME
    gcc = shutil.which("gcc")
    if gcc:
        path = subprocess.run([gcc, "-print-file-name=libgomp.so"], capture_output=True, text=True).stdout.strip()
        if os.path.isabs(path) and os.path.exists(path):
            return path
    raise RuntimeError("native code needs GCC's OpenMP runtime (libgomp.so.1), which was not found; install it "
                       "(Debian/Ubuntu: apt-get install libgomp1) or use Session(ir, 'interpreter')")


def load() -> None:
    """Make GOMP_parallel and friends resolvable by the JIT (idempotent)."""
    if _state["loaded"]:
        return
    import llvmlite.binding as llvm

    try:
        llvm.load_library_permanently(library())
    except RuntimeError as e:
        raise RuntimeError(f"could not load the OpenMP runtime {library()!r}: {e}") from None
    _state["loaded"] = True


def forked_child() -> bool:
    """True in a process forked after libgomp was loaded: parallel regions must not enter it."""
    return _state["forked"]


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def resolve_threads(requested: int | None) -> int:
    """The thread count a Session passes to compiled code."""
    if requested is None:
        return default_threads()
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ValueError(f"CompileOptions.threads must be a positive integer or None (= the {default_threads()} "
                         f"CPUs this process may run on), got {requested!r}")
    return requested
