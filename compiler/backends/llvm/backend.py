"""The LLVM backend's door: `lower(optimised_ir, options) -> NativeCode`, object files for this CPU
and their manifest, compiled now or taken from the compile cache (runtime/cache.py).

A program is the graphs' module (graph functions, entry point: flat lists of calls) plus one module
per distinct kernel (outline.py). Both levels are cached: the whole program by its IR, each kernel by
its signature, so a program sharing kernels with an earlier one compiles only its new kernels and its
graphs. Kernels lowered now are compiled on a worker thread while the next ones are lowered (jobs.py).
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

from compiler.ir import Ir
from compiler.ir.hashing import ir_digest
from compiler.options import CompileOptions
from compiler.version import __version__
from runtime.artifact import Manifest, NativeCode
from runtime.cache import KERNEL_PREFIX, CompileCache
from runtime.openmp import resolve_threads

from . import target
from .abi import layout_of
from .isa import Target
from .jobs import ObjectJobs, to_object
from .lower import lower as lower_module
from .outline import KernelTable


def compile_module(irx: Ir, prefix: str = "optc", tgt: Target | None = None
                   ) -> tuple[llvm.ModuleRef, Manifest, llvm.TargetMachine]:
    """One module holding the whole program (kernels linked in, internal and noinline), verified and
    optimised (O3, vectorisers on) for `tgt` (default the host CPU): what `tools.compile --emit` writes.
    The code runs with any thread count (a run-time argument of the entry point), so the count is not a
    compile input."""
    target.init()
    tgt = tgt or target.host_target()
    table = KernelTable()
    module, layout = lower_module(irx, prefix, tgt.isa, table)
    tm = target.target_machine(tgt)
    mod = llvm.parse_assembly(str(module))
    for sym, km in table.modules.items():
        mod.link_in(llvm.parse_assembly(str(km)))
        mod.get_function(sym).linkage = "internal"  # a shipped library exports only its entry point
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
    """A hash of the code that decides what gets compiled (the IR and its hashing, op definitions,
    this backend, the rule tables, the runtime ABI) and of llvmlite/LLVM, so that a changed compiler
    never reuses objects, whole programs or kernels, built by an older one."""
    here = Path(__file__).resolve().parent
    root = here.parents[2]
    return source_digest([here, here.parent, root / "compiler" / "ir", root / "compiler" / "ops", root / "runtime"],
                         f"llvmlite {llvmlite.__version__} LLVM {llvm.llvm_version_info}")


def source_digest(dirs: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for d in dirs:
        for f in sorted(d.glob("*.py")):
            h.update(f"\0{d.name}/{f.name}\0".encode() + f.read_bytes())
    return h.hexdigest()[:16]


def _target_parts(tgt: Target | None, opt_level: int | str) -> tuple:
    tgt = tgt or target.host_target()
    return (tgt.triple, tgt.cpu, tgt.features), __version__, code_version(), opt_level


def cache_key(irx: Ir, prefix: str = "optc", tgt: Target | None = None, opt_level: int | str = "auto") -> str:
    return CompileCache.key(ir_digest(irx), *_target_parts(tgt, opt_level), prefix)


def kernel_symbol(signature: tuple, tgt: Target | None = None, opt_level: int | str = "auto") -> str:
    """The symbol of a kernel: its cache key, so a symbol names one compiled object ("auto" picks a
    kernel's level from its LLVM text, which the signature and code_version() determine)."""
    return KERNEL_PREFIX + CompileCache.key("kernel", signature, *_target_parts(tgt, opt_level))


def lower(irx: Ir, options: CompileOptions) -> NativeCode:
    """Native code for the optimised `irx`: from the cache when an entry for the same IR, CPU,
    compiler is there and intact (with every kernel it names), otherwise compiled now, reusing every
    cached kernel (and stored). The artifact carries the thread count its runs start with
    (CompileOptions.threads, else every CPU we may run on)."""
    threads = resolve_threads(options.threads)
    prefix = options.prefix
    target.init()
    tgt = target.resolve(options.target_cpu, options.target_triple)
    cache = CompileCache(options.cache_dir) if options.use_cache else None
    kcache = cache.kernels() if cache else None
    level = options.opt_level
    target.level_for("", level)  # a bad level fails here, before anything is lowered
    key = cache_key(irx, prefix, tgt, level) if cache else ""
    layout = layout_of(irx, prefix)
    mark_target(layout, tgt)

    def source() -> str:
        return str(compile_module(irx, prefix, tgt)[0])

    looked: dict[str, tuple[bytes, int] | None] = {}  # each kernel entry read (and warned about) once

    def lookup(sym: str) -> tuple[bytes, int] | None:
        if sym not in looked:
            looked[sym] = kcache.load_kernel(sym) if kcache else None
        return looked[sym]

    hit = cache.load(key) if cache else None
    if hit is not None and layout.matches(hit[1]):
        syms = hit[1].get("kernels")
        objs = [lookup(s) for s in syms] if isinstance(syms, list) else [None]
        if all(o is not None for o in objs):
            layout.ws_size = hit[1]["ws_size"]
            return NativeCode(hit[0], layout, irx, threads, cache_hit=True, source=source,
                              kernels=tuple(o[0] for o in objs), reused_kernels=len(objs))  # type: ignore[index]
    jobs = ObjectJobs(tgt, workers=options.compile_workers, speed_level=level)
    table = KernelTable(lambda sig: kernel_symbol(sig, tgt, level), lookup if kcache else None,
                        lambda sym, km: jobs.submit(sym, str(km)))
    module, layout = lower_module(irx, prefix, tgt.isa, table)
    mark_target(layout, tgt)
    obj = to_object(str(module), jobs.tm, level)
    new = jobs.results()
    if cache and kcache:
        try:
            for sym, data in new.items():
                kcache.store_kernel(sym, data, table.scratch[sym])
            cache.store(key, obj, {**layout.to_json(), "kernels": sorted(table.scratch)})
        except OSError:
            pass  # an unwritable cache only costs the next compile
    objs = {**table.objects, **new}
    return NativeCode(obj, layout, irx, threads, cache_hit=False, source=source,
                      kernels=tuple(objs[s] for s in sorted(objs)), reused_kernels=len(table.objects),
                      compiled_kernels=len(new))
