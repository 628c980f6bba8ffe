"""The pass pipelines, by level. This file holds the ordered lists and nothing else.

level 0  nothing: the program runs as built.
level 1  clean-ups that keep the program's structure (calls, op kinds): schedule, Neg/ScaledAdd folding,
         constant folding, CSE, DCE; then a memory plan for the temporaries.
level 2  the default (Session): level 1 plus subgraph dedup and inlining of small elementwise graphs
         (and of optimizer updates with the graph making their gradient) before the clean-ups, then
         vertical elementwise fusion, matmul epilogue and prologue fusion and in-placing before the memory plan.
level 3  level 2 plus horizontal fusion: calls of same-bodied optimizer graphs on different parameters
         become one MultiKernel launch (the LLVM backend must lower MultiKernel to use it).
Opt-in passes (OPT_IN) run only when asked (`enable`), each right after the pass it names:
shard_weight_update (CompileOptions.shard_weight_update) after inline.
alias_analysis only annotates graph.info (every pass computes what it needs itself); run it by name.
"""
from __future__ import annotations

from compiler.ir import Ir

from .manager import PassManager, PassRecord
from .registry import PASSES, _load_all

LEVELS: dict[int, list[str]] = {
    0: [],
    1: ["schedule", "fold_neg_into_scaled_add", "constant_fold", "cse", "dce", "memory_plan"],
    2: ["schedule", "dedup_subgraphs", "inline", "inline_weight_updates", "fold_neg_into_scaled_add", "constant_fold",
        "cse", "dce", "fuse_elementwise", "fuse_matmul_epilogue", "fuse_matmul_prologue",
        "inplace", "memory_plan"],
    3: ["schedule", "dedup_subgraphs", "inline", "inline_weight_updates", "fold_neg_into_scaled_add", "constant_fold",
        "cse", "dce", "fuse_elementwise", "fuse_matmul_epilogue", "fuse_matmul_prologue",
        "fuse_horizontal", "inplace", "memory_plan"],
}

# opt-in pass -> the pass it follows (at level 1, where that one is absent, it runs first)
OPT_IN: dict[str, str] = {"shard_weight_update": "inline"}


def pipeline(level: int = 2, skip: tuple[str, ...] = (), enable: tuple[str, ...] = ()) -> list[str]:
    """The pass names run at `level`, without those in `skip` (which must be known pass names), with the
    opt-in passes in `enable`."""
    if level not in LEVELS:
        raise ValueError(f"pipeline level must be one of {sorted(LEVELS)}, got {level!r}")
    odd = [p for p in enable if p not in OPT_IN]
    if odd:
        raise ValueError(f"cannot enable {', '.join(map(repr, odd))}: the opt-in passes are {', '.join(OPT_IN)}")
    _load_all()
    unknown = [p for p in skip if p not in PASSES]
    if unknown:
        raise ValueError(f"cannot skip unknown pass(es) {', '.join(map(repr, unknown))}; "
                         f"known passes: {', '.join(sorted(PASSES))}")
    names = list(LEVELS[level])
    for p in enable:
        if level > 0:
            after = OPT_IN[p]
            names.insert(names.index(after) + 1 if after in names else 0, p)
    return [p for p in names if p not in skip]


def run_pipeline(ir: Ir, level: int = 2, skip: tuple[str, ...] = (), verify_each: bool = False,
                 stop_after: str | None = None, enable: tuple[str, ...] = ()) -> list[PassRecord]:
    """Run the level's passes on `ir` in place; returns one record (name, changed, seconds) per pass run.
    stop_after: stop after that pass (it must be in the level's pipeline); enable: opt-in passes."""
    names = pipeline(level, tuple(skip), tuple(enable))
    if stop_after is not None and stop_after not in names:
        raise ValueError(f"pass {stop_after!r} is not run at level {level}"
                         f"{' with ' + ', '.join(skip) + ' skipped' if skip else ''}; "
                         f"that pipeline is: {', '.join(names) or '(empty)'}")
    return PassManager(names, verify_each).run(ir, stop_after)
