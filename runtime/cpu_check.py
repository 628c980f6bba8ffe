"""Refusing native code this machine cannot run, with a clear error instead of an illegal-instruction
crash: every NativeCode records the CPU it was generated for and the ISA extensions it may use
(Manifest.target / triple / requires); this process's CPU must have them all and the same architecture.
Generated C headers carry the same check for C callers (compiler/backends/llvm/cpu_header.py)."""
from __future__ import annotations

import functools

import llvmlite.binding as llvm

from .artifact import Manifest
from .loader import prepare_llvm


class UnsupportedCpu(RuntimeError):
    """Native code needs an architecture or ISA extensions this machine lacks."""


@functools.cache
def host() -> tuple[str, frozenset[str]]:
    """(architecture, enabled LLVM feature names) of this machine."""
    prepare_llvm()
    arch = llvm.get_process_triple().split("-", 1)[0]
    return arch, frozenset(name for name, on in llvm.get_host_cpu_features().items() if on)


def _arch(triple: str) -> str:
    arch = triple.split("-", 1)[0]
    return "aarch64" if arch == "arm64" else arch


def missing(layout: Manifest) -> list[str]:
    """The required features this machine lacks (the architecture first, when that differs)."""
    arch, have = host()
    if layout.triple and _arch(layout.triple) != arch:
        return [f"architecture {_arch(layout.triple)}"]
    return [f for f in layout.requires if f not in have]


def ensure(layout: Manifest) -> None:
    """Raise UnsupportedCpu when this machine cannot run code built for `layout`'s target."""
    lacking = missing(layout)
    if lacking:
        raise UnsupportedCpu(
            f"this code was compiled for CPU {layout.target!r} ({layout.triple}) and needs {', '.join(lacking)}, "
            f"which this machine ({host()[0]}, {llvm.get_host_cpu_name()}) lacks; compile for this machine "
            "(CompileOptions(target_cpu=None), the default) or for a CPU it supports (e.g. target_cpu='x86-64-v2')")
