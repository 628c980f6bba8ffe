"""Run one program on several configurations and compare each with the reference interpreter.

The reference is the interpreter on the program as built (`CompileOptions(level=0)`). Values that
only exact ops computed (see exactness.py) must agree bit for bit (NaN == NaN and -0 == +0
included); the rest within `tol * (|want| + 1)` element by element, where tol is that of the least
precise dtype an inexact result passed through (program.py): that allows the last bits of
transcendentals and reassociated sums (the generator keeps values within 16, so the absolute term
covers cancellation of values of order 1).
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl.tensor import wrap
from passes.pipeline import pipeline

from .program import Context, build, inputs

@dataclass(frozen=True)
class Config:
    device: str
    level: int = 2
    skip: tuple[str, ...] = ()
    threads: int | None = None  # native code's thread count (None: every CPU we may run on)

    @property
    def label(self) -> str:
        s = f"{self.device}-L{self.level}"
        return s + "".join(f"-no-{p}" for p in self.skip) + (f"-T{self.threads}" if self.threads else "")

    def options(self, cache_dir: str | None) -> CompileOptions:
        return CompileOptions(device=self.device, level=self.level, skip=self.skip, cache_dir=cache_dir,
                              threads=self.threads)


REFERENCE = Config("interpreter", 0)


def default_pipeline(level: int = 2) -> list[str]:
    return list(pipeline(level))


def configs(each_pass_off: bool = True, threads: int | None = None) -> list[Config]:
    """Passes on the interpreter, native code without passes and at every level, then each pass of the
    default pipeline switched off in turn; native code runs with `threads` threads."""
    t = threads
    out = [Config("interpreter", 2), Config("cpu", 0, threads=t), Config("cpu", 1, threads=t), Config("cpu", 2, threads=t)]
    if default_pipeline(3) != default_pipeline(2):
        # inlining usually dissolves the small optimizer graphs horizontal fusion groups: also without it
        out += [Config("interpreter", 3), Config("cpu", 3, threads=t), Config("cpu", 3, ("inline",), t)]
    if each_pass_off:
        out += [Config("cpu", 2, (p,), t) for p in default_pipeline()]
    return out


@dataclass
class Finding:
    config: Config
    kind: str  # "mismatch" | "crash" | "invalid" (the reference itself failed: a generator bug)
    detail: str

    @property
    def signature(self) -> tuple[str, str, str]:
        first = self.detail.split(":", 1)[0] if self.kind != "mismatch" else ""
        return self.config.label, self.kind, first

    def __str__(self) -> str:
        return f"[{self.config.label}] {self.kind}: {self.detail}"


class Broken(AssertionError):
    """A guarantee broken outside the numbers: a refused run that changed state, a constant that changed."""


def run(ctx: Context, config: Config, cache_dir: str | None = None) -> dict[str, np.ndarray]:
    """Every variable after the runs and every device-to-host output of every run, by name.

    A run fed a bad host index (ctx.bad_runs) must raise IndexError with nothing changed: the state the
    session reports after it must be the state before it (and the next run continues from there, which
    the comparison of the later runs checks). No run may change a constant."""
    s = popxl.Session(ctx.ir, config.device, options=config.options(cache_dir))
    got: dict[str, np.ndarray] = {}
    core = ctx.ir.core
    variables = [wrap(core.main.values[vid]) for vid in core.variables]
    constants = {vid: a.copy() for vid, a in core.constants.items()}
    with s, np.errstate(all="ignore"):
        for r in range(ctx.runs):
            if r not in ctx.bad_runs:
                for h, a in s.run(inputs(ctx, r)).items():
                    got[f"{h.name}#{r}"] = np.array(a, copy=True)
                continue
            before = {t.name: s.get_tensor_data(t) for t in variables}
            try:
                s.run(inputs(ctx, r))
            except IndexError as e:
                got[f"refused#{r}"] = np.array("before any variable changed" in str(e))
            else:
                raise Broken(f"run {r} was fed an index out of range and did not raise IndexError")
            changed = [t.name for t in variables if not _same(before[t.name], s.get_tensor_data(t))]
            if changed:
                raise Broken(f"run {r} was refused for a bad host-fed index but changed {changed}")
    for t in variables:
        got[t.name] = s.get_tensor_data(t)
    moved = [vid for vid, a in constants.items() if not _same(a, core.constants[vid])]
    if moved:
        raise Broken(f"running changed the Ir's constants {moved}")
    return got


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def compare(name: str, want: np.ndarray, got: np.ndarray, tol: float) -> str | None:
    """None when `got` agrees with `want` (see the module docstring), else what differs and where."""
    if want.shape != got.shape or want.dtype != got.dtype:
        return f"{name}: expected {want.dtype}{want.shape}, got {got.dtype}{got.shape}"
    if want.dtype.kind not in "fc" and str(want.dtype) != "bfloat16":
        bad = want != got
    else:
        w, g = want.astype(np.float64), got.astype(np.float64)
        finite = np.isfinite(w) & np.isfinite(g)
        # NaN where the reference has NaN, the same infinity where it has one
        same_nonfinite = (np.isnan(w) & np.isnan(g)) | (np.isinf(w) & (w == g)) | finite
        with np.errstate(invalid="ignore"):
            diff = np.where(finite, np.abs(g - w), 0.0)
        limit = np.zeros_like(w)
        if tol:  # per element: one element's error is not excused by another element's magnitude
            limit = tol * (np.abs(np.where(finite, w, 0.0)) + 1.0)
        bad = ~same_nonfinite | (diff > limit)
    if not np.any(bad):
        return None
    idx = np.unravel_index(int(np.argmax(bad)), want.shape) if want.ndim else ()
    how = "bit for bit" if tol == 0.0 else f"within {tol:g}"
    return (f"{name} {want.dtype}{want.shape} differs at {int(np.sum(bad))} of {want.size} elements "
            f"(expected {how}); first at {tuple(int(i) for i in idx)}: expected {want[idx]!r}, got {got[idx]!r}")


def check(program: dict, configs_: list[Config], cache_dir: str | None = None, stop_early: bool = False
          ) -> list[Finding]:
    """The findings of `program` on each configuration (at most one per configuration)."""
    try:
        ctx = build(program)
        want = run(ctx, REFERENCE, cache_dir)
    except Exception as e:  # the generator made something the reference refuses: a bug in the generator
        return [Finding(REFERENCE, "invalid", f"{type(e).__name__}: {e}")]
    findings = []
    for c in configs_:
        try:
            got = run(ctx, c, cache_dir)
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)[-1]
            findings.append(Finding(c, "crash", f"{type(e).__name__}: {e} (at {tb.filename}:{tb.lineno})"))
        else:
            problems = [p for k in want for p in [_cmp(k, want, got, ctx)] if p]
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                findings.append(Finding(c, "mismatch", problems[0] + more))
        if findings and stop_early:
            break
    return findings


def _cmp(k: str, want: dict[str, np.ndarray], got: dict[str, np.ndarray], ctx: Context) -> str | None:
    if k not in got:
        return f"{k}: missing from the results"
    return compare(k, want[k], got[k], ctx.tol.get(k.split("#")[0], ctx.var_tol))


def as_source(ctx: Any) -> str:
    """The printed schedules of every graph of a built program (for reproducer files)."""
    from compiler.ir import print_schedule

    return "\n".join(print_schedule(g) for g in ctx.ir.core.graphs.values())
