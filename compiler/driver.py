"""compile(ir, options): verify -> passes -> backend -> an executable. The one place they meet."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from compiler.ir import Ir, verify
from compiler.ir.clone import clone

DEVICES = ("cpu", "interpreter")


@dataclass
class CompileOptions:
    """Every compile-time choice, as explicit fields (no environment variables)."""

    device: str = "cpu"
    level: int = 2  # pipeline level 0-3 (0: no passes)
    skip: tuple[str, ...] = ()  # pass names to leave out
    verify_each: bool = False  # verify the IR after every pass
    cache_dir: str | None = None  # compiled-code cache; None = the user cache dir
    use_cache: bool = True
    threads: int | None = None  # worker threads for long loops; None = decide by size
    check_finite: bool = False  # opt-in: name the first tensor that goes NaN/Inf
    extra: dict[str, Any] = field(default_factory=dict)


class Executable(Protocol):
    ir: Ir

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
            ) -> dict[str, np.ndarray]: ...


def optimise(ir: Ir, options: CompileOptions) -> Ir:
    """A copy of `ir` with the pass pipeline applied (the user's Ir is left as built)."""
    work = clone(ir)
    if options.level > 0:
        try:
            from passes.pipeline import run_pipeline
        except ImportError:  # passes not available: run as built
            return work
        run_pipeline(work, level=options.level, skip=options.skip, verify_each=options.verify_each)
    return work


def compile(ir: Ir, options: CompileOptions | None = None) -> Executable:
    options = options or CompileOptions()
    if options.device not in DEVICES:
        raise ValueError(f"unknown device {options.device!r}; supported: {', '.join(DEVICES)}")
    verify(ir, "before compilation")
    if options.check_finite and options.device == "interpreter":
        # name the user's own ops when something goes non-finite: run the program as built
        options = CompileOptions(**{**options.__dict__, "level": 0})
    work = optimise(ir, options)
    if options.device == "interpreter":
        from runtime.interpreter_exec import InterpreterExecutable

        return InterpreterExecutable(work, options)
    try:
        from compiler.backends.llvm.executable import LLVMExecutable
    except ImportError:
        from runtime.interpreter_exec import InterpreterExecutable

        return InterpreterExecutable(work, options)
    return LLVMExecutable(work, options)


def reference_executable(ir: Ir, options: CompileOptions) -> Executable:
    """The numpy interpreter over `ir` as built (used to name the op behind a non-finite value)."""
    from runtime.interpreter_exec import InterpreterExecutable

    return InterpreterExecutable(ir, options)


def save_checkpoint(path: Any, arrays: dict[str, np.ndarray]) -> Any:
    from runtime.checkpoint import save

    return save(path, arrays)


def load_checkpoint(path: Any, expected: dict[str, tuple[tuple[int, ...], Any]]) -> dict[str, np.ndarray]:
    from runtime.checkpoint import load

    return load(path, expected)
