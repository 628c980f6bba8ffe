"""MemoryPlan: where a graph's temporaries live in its workspace (made by passes/memory_plan.py, read
by the LLVM backend). It describes the graph exactly as it was when planned: the pass manager drops
every plan as soon as a pass changes the IR, and the plan is made again at the end of a pipeline."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemoryPlan:
    offsets: dict[int, int]  # storage id (the id of its version-0 value) -> byte offset in the workspace
    peak_bytes: int  # workspace bytes the plan needs
    naive_bytes: int  # bytes without sharing: every temporary its own buffer
