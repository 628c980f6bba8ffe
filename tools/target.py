"""TARGET: what the command-line tools read, and the pass pipeline they may run first.

TARGET is one of
  - a saved IR: any file that is not a .py file, written by `ir.save(path)` (a popxl.Ir: `ir.core.save(path)`;
    see compiler/ir/serialize.py);
  - a Python file defining `build_ir()`: it is imported (its `if __name__ == "__main__":` block does not
    run), and `build_ir()` returns an Ir (a core one or a popxl.Ir, unwrapped by driver.program_of), or a
    tuple whose first item is the Ir (examples/custom_optimiser.py returns `(ir, handles)`);
  - `FILE.py:FUNC` to call another function of that file with no arguments, e.g. `examples/mnist_adam.py:build_ir`.
The file's folder is put on sys.path first, so it can import its neighbours.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from compiler.driver import program_of
from compiler.ir import Graph, Ir
from compiler.ir.clone import clone
from compiler.ir.serialize import IRFormatError
from passes.pipeline import LEVELS, OPT_IN, pipeline, run_pipeline


class TargetError(ValueError):
    """A TARGET, graph name or pass name the tools cannot use; the message says what to do instead."""


def _split(target: str) -> tuple[Path, str]:
    path, func = Path(target), "build_ir"
    if not path.exists() and ":" in target:
        head, _, tail = target.rpartition(":")
        if head.endswith(".py") and tail.isidentifier():
            path, func = Path(head), tail
    return path, func


def load_target(target: str) -> Ir:
    """The core Ir that TARGET names (see the module docstring); a `build_ir()` may return a popxl.Ir."""
    path, func = _split(target)
    if not path.is_file():
        raise TargetError(f"{target}: no such file; TARGET is a saved IR (ir.save) or a Python file defining build_ir()")
    if path.suffix != ".py":
        try:
            return Ir.load(path)
        except IRFormatError as e:
            raise TargetError(str(e)) from None
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"_target_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{target}: cannot be imported as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look their module up there
    spec.loader.exec_module(mod)
    build = getattr(mod, func, None)
    if not callable(build):
        raise TargetError(f"{path}: defines no {func}(); add `def {func}():` returning the Ir (or a tuple whose "
                          "first item is the Ir), or name another function as FILE.py:FUNC")
    out = build()
    ir = out[0] if isinstance(out, tuple) and out else out
    try:  # a popxl.Ir or a core Ir: the tools work on the core program
        return program_of(ir)
    except TypeError:
        raise TargetError(f"{path}: {func}() returned {type(ir).__name__}, not an Ir (or a tuple starting with "
                          "one)") from None


def pass_names() -> list[str]:
    """Every pass `--after` accepts, in pipeline order (opt-in passes included)."""
    return pipeline(max(LEVELS), enable=tuple(OPT_IN))


def after_passes(ir: Ir, after: str | None = None, level: int | None = None, enable: tuple[str, ...] = ()) -> Ir:
    """A copy of `ir` after the pass pipeline: up to and including pass `after` (of the level-3 pipeline), or the
    whole pipeline at `level`; `enable`: opt-in passes (an opt-in `after` is enabled). `ir` is not changed."""
    work = clone(ir)
    if after in OPT_IN and after not in enable:
        enable = (*enable, after)
    if after is not None and after not in pass_names():
        raise TargetError(f"unknown pass {after!r}; --after takes one of: {', '.join(pass_names())}")
    if after is None and level is not None and level not in LEVELS:
        raise TargetError(f"unknown pipeline level {level}; levels: {', '.join(map(str, sorted(LEVELS)))}")
    if after is not None:
        run_pipeline(work, level=max(LEVELS), stop_after=after, enable=enable)
    elif level is not None:
        run_pipeline(work, level=level, enable=enable)
    return work


def find_graph(ir: Ir, name: str) -> tuple[Graph, str | None]:
    """The graph called `name` ('main' or '' for the main graph) and a note when dedup_subgraphs merged it."""
    key = "" if name in ("main", "") else name
    if key in ir.graphs:
        return ir.graphs[key], None
    merged = ir.merged_graphs.get(key)
    if merged in ir.graphs:
        return ir.graphs[merged], f"graph {name!r} was merged into {merged!r} by dedup_subgraphs; showing {merged!r}"
    known = ", ".join(repr(g.id or "main") for g in ir.graphs.values())
    raise TargetError(f"no graph named {name!r}; this IR has: {known}")


def select_graphs(ir: Ir, name: str | None = None, all_graphs: bool = False) -> tuple[list[Graph], list[str]]:
    """(graphs, notes): graph `name`; every graph (main first) with `all_graphs`; else the subgraphs, the
    way the PopXL tutorials print them (the main graph when there are none)."""
    if name is not None:
        g, note = find_graph(ir, name)
        return [g], [note] if note else []
    graphs = list(ir.graphs.values())
    subgraphs = [g for g in graphs if g is not ir.main]
    return (graphs if all_graphs or not subgraphs else subgraphs), []
