"""Helpers for the pass tests: run passes with the verifier after each, run programs on the interpreter,
compare results bit for bit. Each takes a popxl.Ir or a core Ir (a pass's result) and works on the core
program (`driver.program_of`)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from compiler.driver import CompileOptions, compile, program_of
from compiler.ir import Ir, print_schedule
from compiler.ir.clone import clone
from passes.manager import PassManager
from passes.pipeline import run_pipeline


def after(ir: Ir, passes: list[str] | str) -> Ir:
    """A copy of `ir` with the passes run, the verifier and the pass invariants checked after each."""
    work = clone(program_of(ir))
    PassManager([passes] if isinstance(passes, str) else list(passes), verify_each=True).run(work)
    return work


def at_level(ir: Ir, level: int, skip: tuple[str, ...] = ()) -> Ir:
    work = clone(program_of(ir))
    run_pipeline(work, level=level, skip=skip, verify_each=True)
    return work


def schedules(ir: Ir) -> str:
    return "\n".join(print_schedule(g) for g in program_of(ir).graphs.values())


def kinds(g: Any) -> list[str]:
    return [op.kind for op in g.ops]


def run(ir: Ir, runs: int = 2, inputs: dict | None = None) -> dict[str, np.ndarray]:
    """Every variable after `runs` runs, and every device-to-host output of every run, on the interpreter
    with no further passes (the Ir runs exactly as given: a rewritten Ir is no user program, so it
    goes to the driver directly, past the Session's checks of what a user built)."""
    ir = program_of(ir)
    exe = compile(ir, CompileOptions(device="interpreter", level=0))
    variables = {vid: np.array(a, copy=True) for vid, a in ir.variables.items()}
    nht = ir.num_host_transfers
    streams = {h.name: np.asarray(a) if nht > 1 else np.asarray(a)[None] for h, a in (inputs or {}).items()}
    got: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for r in range(runs):
            for name, a in exe.run(variables, streams, nht).items():
                got[f"{name}#{r}"] = np.array(a, copy=True)
    for vid in ir.variables:
        got[f"{ir.main.values[vid].name}%{vid}"] = variables[vid]
    return got


def assert_same(want: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    """Bit-exact equality (NaN equals NaN; -0 differs from +0)."""
    assert want.keys() == got.keys()
    for k in want:
        a, b = want[k], got[k]
        assert a.dtype == b.dtype and a.shape == b.shape, k
        if a.dtype.kind == "f" or str(a.dtype) == "bfloat16":
            a, b = a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")
            na, nb = np.isnan(want[k].astype(np.float64)), np.isnan(got[k].astype(np.float64))
            np.testing.assert_array_equal(na, nb, err_msg=k)
            a, b = np.where(na, 0, a), np.where(nb, 0, b)
        np.testing.assert_array_equal(a, b, err_msg=k)


def check_passes(build: Callable[[], Ir], passes: list[str] | str, runs: int = 2) -> Ir:
    """The program gives bit-identical results with the passes on and off; returns the rewritten Ir."""
    ir = build()
    work = after(ir, passes)
    assert_same(run(build(), runs), run(work, runs))
    return work


def check_level(build: Callable[[], Ir], level: int, skip: tuple[str, ...] = (), runs: int = 2) -> Ir:
    ir = build()
    work = at_level(ir, level, skip)
    assert_same(run(build(), runs), run(work, runs))
    return work
