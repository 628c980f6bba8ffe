"""Runtime: executes artifacts over a Session's buffers. `load(artifact) -> Executable` is its one door.

It reads the core IR (for the interpreter and manifests) and never imports front ends, passes or
backends: the backends hand it finished artifacts (runtime/artifact.py) through compiler/driver.py.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from compiler.ir import Ir

from .artifact import Artifact, Interpretable, NativeCode
from .interpreter_exec import InterpreterExecutable
from .native_exec import NativeExecutable


class Executable(Protocol):
    ir: Ir

    def run(self, variables: dict[int, np.ndarray], streams: dict[str, np.ndarray], iterations: int
            ) -> dict[str, np.ndarray]: ...


def load(artifact: Artifact) -> Executable:
    """Something to run: native code linked into this process, or the interpreter over the IR."""
    if isinstance(artifact, NativeCode):
        return NativeExecutable(artifact)
    if isinstance(artifact, Interpretable):
        return InterpreterExecutable(artifact.ir, artifact.check_finite)
    raise TypeError(f"runtime.load takes a NativeCode or Interpretable artifact, not {type(artifact).__name__}")


__all__ = ["load", "Executable", "Artifact", "NativeCode", "Interpretable"]
