"""Compiled update kernels over caller-owned buffers.

A kernel is an Ir whose main-graph variables are placeholders: zero-strided arrays that own no
memory, so building a kernel for a 25M-parameter model allocates nothing. `Kernel.run(arrays)`
binds the caller's arrays (numpy arrays, or zero-copy numpy views of CPU torch tensors), in the
order the buffers were declared, and runs the compiled program once: parameters and state are
updated in place in those arrays, never copied.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions, compile
from compiler.ir import TensorSpec, as_dtype
from compiler.popxl.tensor import Variable


class KernelBuilder:
    """Declares a kernel's buffers; each is a main-graph variable bound to a caller's array at run time."""

    def __init__(self, ir: popxl.Ir) -> None:
        self.ir = ir
        self.vids: list[int] = []

    def buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> popxl.Tensor:
        dt = as_dtype(dtype)
        g = self.ir.main_graph
        v = self.ir.main.new_value(TensorSpec(tuple(shape), dt), g.unique_name(name), "variable")
        self.ir.variables[v.id] = np.broadcast_to(np.zeros((), dt.numpy), tuple(shape))
        self.vids.append(v.id)
        return Variable(v, g)


class Kernel:
    """`build(kb)` declares buffers with `kb.buffer` and emits the update ops; the result is compiled once."""

    def __init__(self, build: Callable[[KernelBuilder], None], options: CompileOptions | None = None) -> None:
        self.ir = popxl.Ir()
        kb = KernelBuilder(self.ir)
        with self.ir.main_graph:
            build(kb)
        self.vids = kb.vids
        t0 = time.perf_counter()
        self.exe = compile(self.ir, options or CompileOptions(device="cpu"))
        self.compile_seconds = time.perf_counter() - t0

    def run(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) != len(self.vids):
            raise ValueError(f"kernel expects {len(self.vids)} buffers, got {len(arrays)}")
        self.exe.run(dict(zip(self.vids, arrays)), {}, 1)
