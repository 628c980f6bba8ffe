"""The LLVM backend's door: `lower(optimised_ir, options) -> NativeCode`, an object file for this CPU
and its manifest, compiled now or taken from the compile cache (runtime/cache.py)."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import llvmlite.binding as llvm

from compiler.ir import Ir
from compiler.ir.hashing import ir_digest
from compiler.options import CompileOptions
from compiler.version import __version__
from runtime.artifact import Manifest, NativeCode
from runtime.cache import CompileCache
from runtime.openmp import resolve_threads

from . import target
from .isa import Target
from .abi import layout_of
from .lower import lower as lower_module


def compile_module(irx: Ir, prefix: str = "optc", tgt: Target | None = None
                   ) -> tuple[llvm.ModuleRef, Manifest, llvm.TargetMachine]:
    """Lower, verify and optimise (O3, vectorisers on) for `tgt` (default the host CPU). The code runs
    with any thread count (a run-time argument of the entry point), so the count is not a compile input."""
    target.init()
    tgt = tgt or target.host_target()
    module, layout = lower_module(irx, prefix, tgt.isa)
    tm = target.target_machine(tgt)
    mod = llvm.parse_assembly(str(module))
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    target.optimise(mod, tm)
    mark_target(layout, tgt)
    return mod, layout, tm


def mark_target(layout: Manifest, tgt: Target) -> None:
    """Record in the manifest what the code needs of the CPU that runs it (runtime/cpu_check.py)."""
    layout.target, layout.triple, layout.requires = tgt.cpu, tgt.triple, tgt.required


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


def cache_key(irx: Ir, prefix: str = "optc", tgt: Target | None = None) -> str:
    tgt = tgt or target.host_target()
    return CompileCache.key(ir_digest(irx), (tgt.triple, tgt.cpu, tgt.features), __version__, code_version(), prefix)


def lower(irx: Ir, options: CompileOptions) -> NativeCode:
    """Native code for the optimised `irx`: from the cache when an entry for the same IR, CPU,
    compiler is there and intact, otherwise compiled now (and stored). The artifact carries the
    thread count its runs start with (CompileOptions.threads, else every CPU we may run on)."""
    threads = resolve_threads(options.threads)
    prefix = options.prefix
    target.init()
    tgt = target.resolve(options.target_cpu, options.target_triple)
    cache = CompileCache(options.cache_dir) if options.use_cache else None
    key = cache_key(irx, prefix, tgt) if cache else ""
    layout = layout_of(irx, prefix)
    mark_target(layout, tgt)
    hit = cache.load(key) if cache else None

    def source() -> str:
        return str(compile_module(irx, prefix, tgt)[0])

    if hit is not None and layout.matches(hit[1]):
        layout.ws_size = hit[1]["ws_size"]
        return NativeCode(hit[0], layout, irx, threads, cache_hit=True, source=source)
    mod, layout, tm = compile_module(irx, prefix, tgt)
    obj = tm.emit_object(mod)
    if cache:
        try:
            cache.store(key, obj, layout.to_json())
        except OSError:
            pass  # an unwritable cache only costs the next compile
    return NativeCode(obj, layout, irx, threads, cache_hit=False, source=lambda: str(mod))
