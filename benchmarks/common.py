"""Shared benchmark helpers: timing with medians, the in-place-add bandwidth probe, JSON output."""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def median_ms(fn: Callable[[], object], repeat: int = 20, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int = 20, reps: int = 3) -> dict[str, float]:
    """Median ms per call of each variant, timed round-robin so drifting bandwidth hits all alike."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            times[k].append((time.perf_counter() - t0) / reps)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def inplace_add_gbps(n: int = 16 * 2**20, repeat: int = 15) -> float:
    """True traffic of `a += b` on float32 (read a, read b, write a), one thread."""
    a = np.ones(n, np.float32)
    b = np.ones(n, np.float32)
    ms = median_ms(lambda: np.add(a, b, out=a), repeat)
    return 3 * a.nbytes / (ms * 1e-3) / 1e9


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()}, **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def table(rows: list[dict], cols: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))
    return "\n".join(out)
