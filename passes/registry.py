"""The one registry of passes: name -> function `run(ir) -> changed`."""
from __future__ import annotations

from typing import Callable

from compiler.ir import Ir

PassFn = Callable[[Ir], bool]
PASSES: dict[str, PassFn] = {}


def register(name: str) -> Callable[[PassFn], PassFn]:
    def deco(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass {name!r} registered twice")
        PASSES[name] = fn
        fn.pass_name = name  # type: ignore[attr-defined]
        return fn
    return deco


def get_pass(name: str) -> PassFn:
    _load_all()
    try:
        return PASSES[name]
    except KeyError:
        raise KeyError(f"unknown pass {name!r}; known passes: {', '.join(sorted(PASSES))}") from None


def _load_all() -> None:
    from . import (alias_analysis, constant_fold, cse, dce, dedup_subgraphs, fold_neg_into_scaled_add,  # noqa: F401
                   fuse_elementwise, inplace, memory_plan, schedule)
