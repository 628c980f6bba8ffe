"""The pass pipelines, by level. This file holds the ordered lists and nothing else.

level 0: nothing (run as built)
level 1: clean-ups that keep every op: scheduling, Neg folding, constant folding, CSE, DCE
level 2: + subgraph dedup, elementwise fusion, in-placing, memory planning (the Session default)
level 3: level 2 (horizontal fusion would go here; not implemented)
"""
from __future__ import annotations

from compiler.ir import Ir

from .manager import PassManager, PassRecord

LEVELS: dict[int, list[str]] = {
    0: [],
    1: ["schedule", "fold_neg_into_scaled_add", "constant_fold", "cse", "dce"],
    2: ["schedule", "dedup_subgraphs", "fold_neg_into_scaled_add", "constant_fold", "cse", "dce",
        "fuse_elementwise", "inplace", "memory_plan"],
    3: ["schedule", "dedup_subgraphs", "fold_neg_into_scaled_add", "constant_fold", "cse", "dce",
        "fuse_elementwise", "inplace", "memory_plan"],
}


def pipeline(level: int = 2, skip: tuple[str, ...] = ()) -> list[str]:
    if level not in LEVELS:
        raise ValueError(f"pipeline level must be one of {sorted(LEVELS)}, got {level}")
    return [p for p in LEVELS[level] if p not in skip]


def run_pipeline(ir: Ir, level: int = 2, skip: tuple[str, ...] = (), verify_each: bool = False,
                 stop_after: str | None = None) -> list[PassRecord]:
    names = pipeline(level, skip)
    if stop_after is not None and stop_after not in names:
        names = pipeline(3, skip)
    return PassManager(names, verify_each).run(ir, stop_after)
