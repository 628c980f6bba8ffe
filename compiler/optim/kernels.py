"""Build and cache compiled update kernels over caller-owned buffers.

A kernel is an Ir whose main-graph variables are placeholders; `Kernel.run(arrays)` binds the caller's
arrays (numpy arrays, or zero-copy numpy views of CPU torch tensors) to those variables for one run,
so parameters and state are updated in place without copies.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions, compile


class Kernel:
    def __init__(self, build: Callable[["KernelBuilder"], None], device: str = "cpu",
                 options: CompileOptions | None = None) -> None:
        self.ir = popxl.Ir()
        kb = KernelBuilder(self.ir)
        with self.ir.main_graph:
            build(kb)
        self.slots = kb.slots  # name -> variable value id
        opts = options or CompileOptions()
        opts.device = device
        self.exe = compile(self.ir, opts)

    def run(self, arrays: dict[str, np.ndarray]) -> None:
        self.exe.run({vid: arrays[name] for name, vid in self.slots.items()}, {}, 1)


class KernelBuilder:
    """Declares the buffers of a kernel by name; each is a main-graph variable bound at run time."""

    def __init__(self, ir: popxl.Ir) -> None:
        self.ir = ir
        self.slots: dict[str, int] = {}

    def buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> popxl.Tensor:
        if name in self.slots:
            raise ValueError(f"buffer {name!r} declared twice")
        t = popxl.variable(np.zeros(shape, popxl.dtypes.as_dtype(dtype).numpy), popxl.dtypes.as_dtype(dtype),
                           name=name)
        self.slots[name] = t._value.id
        return t
