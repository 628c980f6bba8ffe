"""Compiled update kernels over caller-owned buffers.

A kernel is a core Ir whose main-graph buffers are caller-owned (`Ir.add_external`): the Ir holds
their specs and no data, so building a kernel for a 25M-parameter model allocates nothing, and the
runtime refuses a run that does not bind an array to every one. `Kernel.run(arrays)` binds the
caller's arrays (numpy arrays, or zero-copy numpy views of CPU torch tensors), in the order the
buffers were declared, and runs the compiled program once: parameters and state are updated in
place in those arrays, never copied. The IR is built through the core builder (compiler/ops/builder.py).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from compiler.driver import CompileOptions, compile
from compiler.ops.builder import Builder, Handle


class KernelBuilder:
    """Declares a kernel's buffers; each is a caller-owned main-graph buffer bound to an array at run time."""

    def __init__(self) -> None:
        self.builder = Builder()
        self.ir = self.builder.ir
        self.main = self.builder.main
        self.vids: list[int] = []

    def buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> Handle:
        h = self.main.external(name, shape, dtype)
        self.vids.append(h.value.id)
        return h


class Kernel:
    """`build(kb)` declares buffers with `kb.buffer` and emits the update ops; the result is compiled once."""

    def __init__(self, build: Callable[[KernelBuilder], None], options: CompileOptions | None = None) -> None:
        kb = KernelBuilder()
        build(kb)
        self.ir = kb.ir
        self.vids = kb.vids
        t0 = time.perf_counter()
        self.exe = compile(self.ir, options or CompileOptions(device="cpu"))
        self.compile_seconds = time.perf_counter() - t0

    def run(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) != len(self.vids):
            raise ValueError(f"kernel expects {len(self.vids)} buffers, got {len(arrays)}")
        self.exe.run(dict(zip(self.vids, arrays)), {}, 1)
