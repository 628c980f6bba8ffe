"""LLVMExecutable: compiles an optimised Ir to native code (or takes it from the compile cache), links
it into this process and runs it over caller-owned numpy buffers (runtime/executor.py)."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm
import numpy as np

from compiler.ir import Ir
from runtime.artifact import Manifest
from runtime.executor import Executor
from runtime.loader import load_object

from . import target
from .abi import layout_of
from .lower import lower


def compile_module(irx: Ir, prefix: str = "optc", threads: int = 2
                   ) -> tuple[llvm.ModuleRef, Manifest, llvm.TargetMachine]:
    """Lower, verify and optimise (O3, vectorisers on) for the host CPU."""
    target.init()
    module, layout = lower(irx, prefix, threads)
    tm = target.target_machine()
    mod = llvm.parse_assembly(str(module))
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    target.optimise(mod, tm)
    return mod, layout, tm


@functools.cache
def code_version() -> str:
    """A hash of the code that decides what gets compiled (op definitions, this backend, the runtime
    ABI), so a changed compiler never reuses objects built by an older one."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for d in (here, here.parents[1] / "ops", here.parents[2] / "runtime"):
        for f in sorted(d.glob("*.py")):
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def cache_key(irx: Ir, threads: int) -> str:
    from compiler import __version__
    from compiler.ir.hashing import ir_digest
    from runtime.cache import CompileCache

    return CompileCache.key(ir_digest(irx), target.host_cpu(), threads, __version__, code_version())


def threads_of(options: Any) -> int:
    t = getattr(options, "threads", None)
    if t is None:
        return 2
    if not isinstance(t, int) or t < 1:
        raise ValueError(f"CompileOptions.threads must be a positive integer or None, got {t!r}")
    return min(t, 2)  # kernels split work in two at most


class LLVMExecutable:
    """The Executable protocol for device "cpu": variables are updated in place in the arrays given
    to `run`; `llvm_ir` shows the optimised LLVM IR."""

    def __init__(self, irx: Ir, options: Any = None) -> None:
        from runtime.cache import CompileCache

        self.ir = irx
        self.options = options
        self.threads = threads_of(options)
        target.init()
        tm = target.target_machine()
        use_cache = getattr(options, "use_cache", True)
        cache = CompileCache(getattr(options, "cache_dir", None)) if use_cache else None
        key = cache_key(irx, self.threads) if cache else ""
        layout = layout_of(irx, "optc")
        hit = cache.load(key) if cache else None
        if hit is not None and layout.matches(hit[1]):
            obj = hit[0]
            layout.ws_size = hit[1]["ws_size"]
        else:
            hit = None
            mod, layout, tm = compile_module(irx, threads=self.threads)
            obj = tm.emit_object(mod)
            self._mod: llvm.ModuleRef | None = mod
            if cache:
                try:
                    cache.store(key, obj, layout.to_json())
                except OSError:
                    pass  # an unwritable cache only costs the next compile
        self.cache_hit = hit is not None
        if self.cache_hit:
            self._mod = None
        self.layout = layout
        address, engine = load_object(obj, layout.entry, tm)
        self._executor = Executor(layout, address, engine, self.threads)

    @property
    def llvm_ir(self) -> str:
        """The optimised LLVM IR (recompiled on demand after a cache hit)."""
        if self._mod is None:
            self._mod = compile_module(self.ir, threads=self.threads)[0]
        return str(self._mod)

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
            ) -> dict[str, np.ndarray]:
        return self._executor.run(variables, streams, iterations)
