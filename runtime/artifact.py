"""Artifacts the runtime loads (NativeCode, Interpretable) and the manifest of a program's buffers.

A manifest lists the variables (value ids, specs, names) in the order of the entry point's `vars`
table, the host streams in the order of its `h2d` / `d2h` tables, the workspace size, and the
messages of its runtime error codes. The backend derives it from the Ir (compiler/backends/llvm/abi.py);
only the prefix, the workspace size and the error count go into the compile cache (`to_json`), so a
cached object always reports the current program's names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from compiler.ir import Ir, TensorSpec


@dataclass
class Manifest:
    prefix: str
    var_ids: list[int]
    var_specs: list[TensorSpec]
    var_names: list[str]
    h2d: list[str]
    d2h: list[str]
    ws_size: int = 0
    errors: list[str] = field(default_factory=list)
    h2d_specs: list[TensorSpec] = field(default_factory=list)
    d2h_specs: list[TensorSpec] = field(default_factory=list)
    updated: set[int] = field(default_factory=set)  # var ids the program writes in place
    # host transfers of each stream per iteration (several host_loads of one stream; default 1)
    h2d_per: list[int] = field(default_factory=list)
    d2h_per: list[int] = field(default_factory=list)
    # what the code was generated for and needs of the CPU running it (runtime/cpu_check.py)
    target: str = ""  # LLVM CPU name
    triple: str = ""
    requires: tuple[str, ...] = ()  # LLVM feature names, e.g. ("avx", "avx2", "fma")
    externals: set[int] = field(default_factory=set)  # var ids of caller-owned buffers (no data in the Ir)

    @property
    def entry(self) -> str:
        return f"{self.prefix}_run"

    def to_json(self) -> dict:
        return {"prefix": self.prefix, "ws_size": self.ws_size, "num_errors": len(self.errors)}

    def matches(self, cached: dict) -> bool:
        """Whether a cached entry's manifest fields agree with this (freshly derived) manifest."""
        return cached.get("prefix") == self.prefix and cached.get("num_errors") == len(self.errors) and \
            isinstance(cached.get("ws_size"), int) and cached["ws_size"] >= 0


@dataclass
class NativeCode:
    """What the LLVM backend hands the runtime: object files for this CPU and their manifest."""

    obj: bytes
    manifest: Manifest
    ir: Ir  # the optimised IR the code was compiled from
    threads: int = 1  # threads its runs start with (a run-time setting: the code runs with any count)
    cache_hit: bool = False  # taken from the compile cache rather than compiled now
    source: Callable[[], str] | None = None  # the optimised LLVM IR text, produced on demand
    kernels: tuple[bytes, ...] = ()  # object files of the outlined kernels `obj` calls, linked with it
    reused_kernels: int = 0  # kernels taken from the compile cache
    compiled_kernels: int = 0  # kernels lowered and compiled for this artifact


@dataclass
class Interpretable:
    """An optimised IR for the numpy reference interpreter (device "interpreter")."""

    ir: Ir
    check_finite: bool = False  # name the first op whose result holds NaN or Inf


Artifact = Union[NativeCode, Interpretable]
