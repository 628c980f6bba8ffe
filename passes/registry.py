"""The one registry of passes: name -> function `run(ir) -> changed`."""
from __future__ import annotations

from typing import Callable

from compiler.ir import Graph, Ir

PassFn = Callable[[Ir], bool]
PASSES: dict[str, PassFn] = {}

# the modules of this package that are machinery, not passes; every other module is imported on first
# lookup, so a new pass is one file (with @register) plus its name in a list of pipeline.py
MACHINERY = ("__init__", "manager", "registry", "pipeline", "invariants", "rewrite", "contraction",
             "depgraph", "refusals")


def register(name: str) -> Callable[[PassFn], PassFn]:
    def deco(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass {name!r} registered twice")
        PASSES[name] = fn
        fn.pass_name = name  # type: ignore[attr-defined]
        return fn
    return deco


def in_every_graph(ir: Ir, fn: Callable[[Graph], bool]) -> bool:
    """A graph-local pass over the whole Ir: fn on every graph (each one, even after a change)."""
    changed = False
    for g in ir.graphs.values():
        changed |= fn(g)
    return changed


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
    import pkgutil
    from pathlib import Path

    for m in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if m.name not in MACHINERY:
            importlib.import_module(f"{__package__}.{m.name}")
