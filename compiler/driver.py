"""The one junction: verify -> passes -> a backend's `lower` -> an artifact -> `runtime.load`.

Front ends and tools call only this module to compile; backends never run passes and the runtime
never sees a front end. Nothing falls back: a broken part of ours raises. Backends load on first use
(the ONNX one needs the optional onnx package and says so when it is missing).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import runtime
from compiler.ir import Ir, verify
from compiler.ir.clone import clone
from compiler.options import DEVICES, CompileOptions
from passes.pipeline import run_pipeline
from runtime import Executable, Interpretable

# backend name -> the module whose `lower(optimised_ir, options)` makes its artifact
BACKENDS = {"llvm": "compiler.backends.llvm.backend", "onnx": "compiler.backends.onnx",
            "poplar": "compiler.backends.poplar"}

__all__ = ["CompileOptions", "Executable", "HoldsIr", "program_of", "compile", "replicated", "processes", "optimise",
           "lower", "emit", "emit_all", "export_onnx", "emit_poplar", "reference_executable", "save_checkpoint",
           "load_checkpoint"]


class HoldsIr(Protocol):
    """A front end's Ir (popxl.Ir): the program it builds is its `core`."""

    core: Ir


def program_of(ir: Ir | HoldsIr) -> Ir:
    """The core program of what a caller passed: a `compiler.ir.Ir` itself, or a front end's Ir that
    holds one as `.core` (`popxl.Ir`). Every entry point below, the popxl Session and the tools unwrap
    here, so nothing under the driver ever meets a front-end object."""
    if isinstance(ir, Ir):
        return ir
    core = getattr(ir, "core", None)
    if isinstance(core, Ir):
        return core
    raise TypeError(f"expected a program to compile: a compiler.ir.Ir or a front end's Ir holding one as `.core` "
                    f"(popxl.Ir), got {type(ir).__name__}")


def optimise(ir: Ir | HoldsIr, options: CompileOptions) -> Ir:
    """A copy of `ir` with the pass pipeline applied (the user's Ir is left as built)."""
    ir = program_of(ir)
    work = clone(ir)
    if options.level > 0:
        run_pipeline(work, level=options.level, skip=options.skip, verify_each=options.verify_each,
                     enable=("shard_weight_update",) if options.shard_weight_update else ())
    return work


def lower(ir: Ir | HoldsIr, backend: str, options: CompileOptions | None = None) -> Any:
    """Verify `ir`, run the pipeline once and hand the result to `backend`'s lower: NativeCode
    ("llvm"), an onnx.ModelProto ("onnx") or a Poplar program in memory ("poplar")."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    options = options or CompileOptions()
    ir = program_of(ir)
    verify(ir, "before compilation")
    if ir.externals and backend != "llvm":
        names = [ir.main.values[vid].name for vid in ir.externals]
        raise ValueError(f"the {backend} backend emits a program that owns all of its buffers, but this Ir has "
                         f"caller-owned buffers {names} (an optimizer kernel of compiler.optim): compile it for "
                         "device 'cpu' or 'interpreter', whose runs bind them")
    return importlib.import_module(BACKENDS[backend]).lower(optimise(ir, options), options)


def compile(ir: Ir | HoldsIr, options: CompileOptions | None = None) -> Executable:
    """Something to run `ir` with: native code for device "cpu", the interpreter for "interpreter"."""
    options = options or CompileOptions()
    ir = program_of(ir)
    if options.device not in DEVICES:
        raise ValueError(f"unknown device {options.device!r}; supported: {', '.join(DEVICES)}")
    if options.device == "cpu":
        return replicated(runtime.load(lower(ir, "llvm", options)), ir, options)
    verify(ir, "before compilation")
    if options.check_finite:
        # name the user's own ops when something goes non-finite: run the program as built
        return replicated(runtime.load(Interpretable(clone(ir), check_finite=True)), ir, options)
    return replicated(runtime.load(Interpretable(optimise(ir, options))), ir, options)


def replicated(exe: Any, ir: Ir | HoldsIr, options: CompileOptions) -> Any:
    """With replication > 1: the replicas this process hosts (runtime/replicas.py), meeting the other
    processes' replicas through MPI when launched by mpiexec (runtime/mpi.py)."""
    ir = program_of(ir)
    n = ir.replication_factor
    if n == 1:  # nothing to meet: under mpiexec every process runs its own copy
        return exe
    from runtime.mpi import world
    from runtime.replicas import ReplicatedExecutable

    w = world()
    rank, procs = (w.rank, w.size) if w is not None else (0, 1)
    if n % procs:
        raise ValueError(f"replication_factor {n} is not divisible by the {procs} MPI processes: each process "
                         f"hosts replication_factor / processes replicas; launch with mpiexec -n P where P "
                         f"divides {n}")
    if w is not None:
        from runtime.program_digest import program_digest

        w.timeout_s = options.collective_timeout_s
        w.agree(program_digest(ir), "the program (IR digest, replication, variables' initial data)")
    n_local = n // procs
    return ReplicatedExecutable(exe, n_local, rank * n_local, n, w)


def processes() -> tuple[int, int]:
    """(rank, number of processes) of the MPI job this process belongs to; (0, 1) without mpiexec."""
    from runtime.mpi import world

    w = world()
    return (w.rank, w.size) if w is not None else (0, 1)


def reference_executable(ir: Ir | HoldsIr, options: CompileOptions) -> Executable:
    """The numpy interpreter over `ir` as built (used to name the op behind a non-finite value)."""
    return runtime.load(Interpretable(program_of(ir), check_finite=options.check_finite))


def emit(ir: Ir | HoldsIr, kind: str, path: str | Path, options: CompileOptions | None = None) -> Path:
    """Write one ahead-of-time LLVM output (ll, asm, obj, so, header) of the optimised `ir` to `path`."""
    from compiler.backends.llvm import emit as llvm_emit

    options = options or CompileOptions()
    if kind not in llvm_emit.KINDS:  # before any work: a typo should not cost a compile
        raise ValueError(f"unknown output kind {kind!r}; choose one of {', '.join(llvm_emit.KINDS)}")
    ir = program_of(ir)
    verify(ir, "before compilation")
    return llvm_emit.write(optimise(ir, options), (kind,), [Path(path)], options)[0]


def emit_all(ir: Ir | HoldsIr, out_dir: str | Path, options: CompileOptions | None = None,
             kinds: tuple[str, ...] | None = None) -> list[Path]:
    """Write every ahead-of-time LLVM output (or those in `kinds`) into `out_dir` (one compile)."""
    from compiler.backends.llvm import emit as llvm_emit

    options = options or CompileOptions()
    kinds = llvm_emit.KINDS if kinds is None else tuple(kinds)
    ir = program_of(ir)
    verify(ir, "before compilation")
    paths = llvm_emit.default_paths(out_dir, options.prefix, kinds)
    return llvm_emit.write(optimise(ir, options), kinds, paths, options)


def export_onnx(ir: Ir | HoldsIr, path: str | Path, options: CompileOptions | None = None) -> Any:
    """Write the ONNX model of one step of the optimised `ir` to `path`; returns the model."""
    model = lower(ir, "onnx", options)  # says what to install when onnx is missing
    import onnx

    onnx.save(model, str(path))
    return model


def emit_poplar(ir: Ir | HoldsIr, out_dir: str | Path, options: CompileOptions | None = None) -> list[Path]:
    """Write the Poplar C++ program folder of the optimised `ir` into `out_dir`."""
    from compiler.backends import poplar

    return poplar.write(lower(ir, "poplar", options), out_dir)


def save_checkpoint(path: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Under mpiexec only rank 0 writes (replicas hold equal values), and every rank returns once the
    file is complete, so any rank can load it next."""
    from runtime.checkpoint import save
    from runtime.mpi import world

    w = world()
    if w is None:
        return save(path, arrays)
    out, failure = None, ""
    if w.rank == 0:
        try:
            out = save(path, arrays)
        except Exception as e:  # the other ranks learn it instead of loading a file that is not there
            failure = f"{type(e).__name__}: {e}"
            raise
        finally:
            w.agree(failure or "saved", "the checkpoint write on rank 0")
    else:
        w.agree("saved", "the checkpoint write on rank 0")
    return out if out is not None else path


def load_checkpoint(path: Any, expected: dict[str, tuple[tuple[int, ...], Any]]) -> dict[str, np.ndarray]:
    from runtime.checkpoint import load

    return load(path, expected)
