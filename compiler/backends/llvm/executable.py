"""LLVMExecutable: JIT-compiles an optimised Ir and runs it over caller-owned numpy buffers."""
from __future__ import annotations

import ctypes
import functools
import threading
from typing import Any

import llvmlite.binding as llvm
import numpy as np

from compiler.ir import Ir

from . import target
from .lower import Layout, lower

_RUN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                        ctypes.c_int64)


def aligned_empty(nbytes: int, align: int = 64) -> np.ndarray:
    raw = np.empty(nbytes + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + nbytes]


def compile_module(irx: Ir, prefix: str = "optc", threads: int = 2
                   ) -> tuple[llvm.ModuleRef, Layout, llvm.TargetMachine]:
    target.init()
    module, layout = lower(irx, prefix, threads)
    tm = target.target_machine()
    mod = llvm.parse_assembly(str(module))
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    target.optimise(mod, tm)
    return mod, layout, tm


def _layout_to_json(layout: Layout) -> dict:
    return {"prefix": layout.prefix, "var_ids": layout.var_ids, "var_names": layout.var_names,
            "var_specs": [[list(s.shape), s.dtype.name] for s in layout.var_specs], "h2d": layout.h2d,
            "d2h": layout.d2h, "ws_size": layout.ws_size}


def _layout_from_json(d: dict) -> Layout:
    from compiler.ir import DType, TensorSpec

    return Layout(d["prefix"], list(d["var_ids"]), [TensorSpec(tuple(sh), DType[dt]) for sh, dt in d["var_specs"]],
                  list(d["var_names"]), list(d["h2d"]), list(d["d2h"]), int(d["ws_size"]))


@functools.cache
def code_version() -> str:
    """A hash of the code that decides what gets compiled (op definitions and this backend), so a
    changed compiler never reuses objects built by an older one."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for d in (here, here.parents[1] / "ops"):
        for f in sorted(d.glob("*.py")):
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_key(irx: Ir, threads: int) -> str:
    from compiler import __version__
    from compiler.ir.hashing import ir_digest
    from runtime.cache import CompileCache

    return CompileCache.key(ir_digest(irx), target.host_cpu(), threads, __version__, code_version())


class LLVMExecutable:
    """Runs the compiled main graph; variables are updated in place in the arrays passed to `run`."""

    def __init__(self, irx: Ir, options: Any = None) -> None:
        from runtime.cache import CompileCache

        self.ir = irx
        self.options = options
        threads = getattr(options, "threads", None)
        self.threads = 2 if threads is None else threads
        target.init()
        tm = target.target_machine()
        cache = CompileCache(getattr(options, "cache_dir", None)) if getattr(options, "use_cache", True) else None
        key = cache_key(irx, self.threads) if cache else ""
        hit = cache.load(key) if cache else None
        self.cache_hit = hit is not None
        self._mod = None
        if hit is not None:
            obj, layout = hit[0], _layout_from_json(hit[1])
        else:
            self._mod, layout, tm = compile_module(irx, threads=self.threads)
            obj = tm.emit_object(self._mod)
            if cache:
                try:
                    cache.store(key, obj, _layout_to_json(layout))
                except OSError:
                    pass  # an unwritable cache only costs the next compile
        self.layout = layout
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
        self._engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        self._engine.finalize_object()
        addr = self._engine.get_function_address(f"{self.layout.prefix}_run")
        if not addr:
            raise RuntimeError("compiled object has no entry point; clear the compile cache and retry")
        self._run = _RUN(addr)
        self._ws = aligned_empty(max(self.layout.ws_size, 64))
        self._lock = threading.Lock()
        nv = len(self.layout.var_ids)
        self._vars = (ctypes.c_void_p * max(nv, 1))()
        self._h2d = (ctypes.c_void_p * max(len(self.layout.h2d), 1))()
        self._d2h = (ctypes.c_void_p * max(len(self.layout.d2h), 1))()
        specs = {n: s.spec for n, s in irx.streams.items()}
        self._h2d_specs = [specs[n] for n in self.layout.h2d]
        self._d2h_specs = [specs[n] for n in self.layout.d2h]
        self._checks = [(vid, spec.shape, spec.dtype.numpy, name) for vid, spec, name in
                        zip(self.layout.var_ids, self.layout.var_specs, self.layout.var_names)]
        self._stored = {op.attrs["stream"] for op in irx.main.ops if op.kind == "HostStore"}

    @property
    def mod(self):
        if self._mod is None:
            self._mod = compile_module(self.ir, threads=self.threads)[0]
        return self._mod

    @property
    def llvm_ir(self) -> str:
        """The optimised LLVM IR (for inspection and tests)."""
        return str(self.mod)

    def _check_var(self, arr: Any, shape: tuple, dtype: np.dtype, name: str) -> np.ndarray:
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"variable {name!r}: expected a numpy array, got {type(arr).__name__}")
        if arr.shape != shape or arr.dtype != dtype:
            raise ValueError(f"variable {name!r}: expected {dtype}{shape}, got {arr.dtype}{arr.shape}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"variable {name!r}: the array must be C-contiguous (use np.ascontiguousarray)")
        if not arr.flags.writeable:
            raise ValueError(f"variable {name!r}: the array is read-only; compiled code updates variables in place")
        return arr

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
            ) -> dict[str, np.ndarray]:
        with self._lock:  # one run at a time: the workspace and pointer tables belong to the executable
            return self._run_unlocked(variables, streams, iterations)

    def _run_unlocked(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
                       ) -> dict[str, np.ndarray]:
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        for k, (vid, shape, dtype, name) in enumerate(self._checks):
            try:
                arr = variables[vid]
            except KeyError:
                raise ValueError(f"no buffer given for variable {name!r}") from None
            self._vars[k] = self._check_var(arr, shape, dtype, name).ctypes.data
        keep = []
        for k, (name, spec) in enumerate(zip(self.layout.h2d, self._h2d_specs)):
            if name not in streams:
                raise ValueError(f"no data given for host stream {name!r}")
            a = streams[name]
            want = (iterations, *spec.shape)
            if not isinstance(a, np.ndarray) or a.shape != want or a.dtype != spec.dtype.numpy:
                raise ValueError(f"host stream {name!r}: expected {spec.dtype.numpy}{want}, got "
                                 f"{getattr(a, 'dtype', type(a).__name__)}{getattr(a, 'shape', '')}")
            a = np.ascontiguousarray(a)
            keep.append(a)
            self._h2d[k] = a.ctypes.data
        outs = {}
        for k, (name, spec) in enumerate(zip(self.layout.d2h, self._d2h_specs)):
            o = np.empty((iterations, *spec.shape), spec.dtype.numpy)
            outs[name] = o
            self._d2h[k] = o.ctypes.data
        rc = self._run(ctypes.addressof(self._vars), ctypes.addressof(self._h2d), ctypes.addressof(self._d2h),
                       self._ws.ctypes.data, iterations)
        if rc != 0:
            raise RuntimeError(f"compiled program returned error code {rc}")
        del keep
        return {k: v for k, v in outs.items() if k in self._stored}
