"""The TARGET convention shared by the tools.

TARGET is either
  - a saved IR (`ir.save("prog.json")`, any suffix but .py), or
  - a Python file that defines `build_ir()` returning an Ir (or a tuple whose first item is an Ir,
    as examples/custom_optimiser.py does).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from compiler.ir import Graph, Ir
from compiler.ir.clone import clone


class TargetError(ValueError):
    pass


def load_target(target: str) -> Ir:
    path = Path(target)
    if not path.exists():
        raise TargetError(f"{target}: no such file; TARGET is a saved IR (.json) or a Python file with build_ir()")
    if path.suffix != ".py":
        return Ir.load(path)
    sys.path.insert(0, str(path.resolve().parent))
    spec = importlib.util.spec_from_file_location(f"_target_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    build = getattr(mod, "build_ir", None)
    if build is None:
        raise TargetError(f"{target}: defines no build_ir(); add `def build_ir(): ...` that returns an Ir")
    out = build()
    ir = out[0] if isinstance(out, tuple) else out
    if not isinstance(ir, Ir):
        raise TargetError(f"{target}: build_ir() returned {type(ir).__name__}, not an Ir")
    return ir


def after_passes(ir: Ir, after: str | None = None, level: int | None = None) -> Ir:
    """A copy of `ir` after the pipeline (stopping after pass `after`, or the whole pipeline at `level`)."""
    from passes.pipeline import run_pipeline

    work = clone(ir)
    if after is not None:
        run_pipeline(work, level=3, stop_after=after)
    elif level is not None:
        run_pipeline(work, level=level)
    return work


def select_graphs(ir: Ir, name: str | None, all_graphs: bool = True) -> list[Graph]:
    if name is not None:
        key = "" if name in ("main", "") else name
        if key not in ir.graphs:
            raise TargetError(f"no graph named {name!r}; graphs: {', '.join(repr(g or 'main') for g in ir.graphs)}")
        return [ir.graphs[key]]
    graphs = [g for g in ir.graphs.values() if g is not ir.main]
    return graphs + [ir.main] if all_graphs or not graphs else graphs
