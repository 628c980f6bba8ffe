"""Shared benchmark helpers: timing with medians, the in-place-add bandwidth probe, result files.

Every benchmark writes its figures with `write_result` into the committed history
`benchmarks/results/<benchmark>/<UTC time>.json`; `python -m benchmarks.report` renders the newest
file of each benchmark into the README between markers (see benchmarks/report.py). So a new
benchmark plugs in with:

    from common import Table, write_result            # or: from benchmarks.common import ...
    t = Table("main", "ms per step", ["case", "ours", "torch"])
    t.add(case="1 x 16M", ours=9.65, torch=11.1)
    write_result("my_bench", [t], command="python benchmarks/my_bench.py --quick",
                 settings={"threads": 2}, notes=["variants interleaved, 50 ms pause between"])

and a block `<!-- bench:my_bench -->` ... `<!-- /bench:my_bench -->` in README.md.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
SCHEMA = 1
# between variants timed in "paused" rounds: long enough for torch's OpenMP workers to stop
# spinning (their default spin time is a few ms), so one variant does not slow the next
PAUSE_S = 0.05
# the load when the benchmark started (this module is imported first thing); write_result adds the end's
_LOAD_AT_START = round(os.getloadavg()[0], 2)


def median_ms(fn: Callable[[], object], repeat: int = 20, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int = 20, reps: int = 3,
                   pause_s: float = 0.0) -> dict[str, float]:
    """Median ms per call of each variant, timed round-robin so drifting bandwidth hits all alike.

    pause_s > 0 sleeps before each variant's timing (the "paused" protocol: compares kernels);
    pause_s = 0 times them back to back (what a user who mixes them in one loop meets)."""
    samples = interleaved_samples(fns, rounds, reps, pause_s)
    return {k: statistics.median(v) * 1e3 for k, v in samples.items()}


def interleaved_samples(fns: dict[str, Callable[[], object]], rounds: int, reps: int = 3,
                        pause_s: float = 0.0) -> dict[str, list[float]]:
    """Seconds per call of each variant in each round (see interleaved_ms)."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            if pause_s:
                time.sleep(pause_s)
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            times[k].append((time.perf_counter() - t0) / reps)
    return times


def inplace_add_gbps(n: int = 16 * 2**20, repeat: int = 15) -> float:
    """True traffic of `a += b` on float32 (read a, read b, write a), one thread."""
    a = np.ones(n, np.float32)
    b = np.ones(n, np.float32)
    ms = median_ms(lambda: np.add(a, b, out=a), repeat)
    return 3 * a.nbytes / (ms * 1e-3) / 1e9


def inplace_add_probe(n: int = 16 * 2**20) -> Callable[[], object]:
    """One `a += b` on float32 (3 * 4 * n bytes of traffic), for timing inside interleaved rounds."""
    a = np.ones(n, np.float32)
    b = np.ones(n, np.float32)
    return lambda: np.add(a, b, out=a)


@dataclass
class Table:
    """One table of a result file: rows of plain numbers/strings keyed by column name.

    `key` names the table within its benchmark (README blocks may pick one: `bench:name:key`)."""
    key: str
    title: str
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **row: object) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"table {self.key!r}: columns {sorted(unknown)} are not in {self.columns}")
        self.rows.append(row)


def machine() -> dict:
    """What the figures were measured on, and how loaded it was."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "loadavg_1min": _LOAD_AT_START}
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    if hasattr(os, "sched_getscheduler") and os.sched_getscheduler(0) == os.SCHED_FIFO:
        # `chrt -f N python benchmarks/...`: the run (and every thread and process it starts) preempts all
        # normal-priority jobs, which the load average still counts although they got no CPU meanwhile
        info["realtime_priority"] = os.sched_getparam(0).sched_priority
    for var in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            info.setdefault("env", {})[var] = os.environ[var]
    return info


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_result(benchmark: str, tables: list[Table], *, command: str, settings: dict | None = None,
                 notes: list[str] | None = None, results_dir: Path | str | None = None,
                 started: _dt.datetime | None = None) -> Path:
    """Write one run's figures to results_dir/<benchmark>/<UTC time>.json (the committed history).

    `command` is how to reproduce the run; `notes` say what protocol the rows used (paused or
    back to back, threads, quick or full) and appear under the README table."""
    now = started or _dt.datetime.now(_dt.timezone.utc)
    load = machine()
    payload = {"schema": SCHEMA, "benchmark": benchmark, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "commit": git_commit(), "command": command, "machine": load,
               "loadavg_end": round(os.getloadavg()[0], 2), "settings": settings or {},
               "notes": notes or [],
               "tables": [{"key": t.key, "title": t.title, "columns": t.columns, "rows": t.rows,
                           "notes": t.notes} for t in tables]}
    folder = Path(results_dir or RESULTS) / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(payload, indent=1, default=_plain) + "\n")
    return path


def _plain(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON-serialisable in a benchmark result: {x!r} ({type(x).__name__})")


def save(name: str, payload: dict) -> Path:
    """Old untabled dump (kept for scripts not yet on write_result); not read by the report."""
    folder = RESULTS / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()}, **payload}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=_plain))
    return path


def table(rows: list[dict], cols: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))
    return "\n".join(out)
