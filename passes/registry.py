"""The one registry of passes: name -> function `run(ir) -> changed`."""
from __future__ import annotations

from typing import Callable

from compiler.ir import Ir

PassFn = Callable[[Ir], bool]
PASSES: dict[str, PassFn] = {}

# every module that registers a pass; imported on first lookup
MODULES = ("alias_analysis", "schedule", "dedup_subgraphs", "inline", "fold_neg_into_scaled_add", "constant_fold",
           "cse", "dce", "fuse_elementwise", "fuse_horizontal", "inplace", "memory_plan")


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


def describe(name: str) -> str:
    """The first line of the pass function's docstring."""
    doc = get_pass(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _load_all() -> None:
    import importlib

    for m in MODULES:
        importlib.import_module(f"{__package__}.{m}")
