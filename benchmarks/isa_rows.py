"""Rows per target CPU (--target-cpu host,haswell,x86-64-v2 of mnist_train.py and adam_step.py): our
step compiled for each CPU, against PyTorch restricted to the same ISA.

torch picks its kernels when it is imported (ATen's CPU capability, MKL's and oneDNN's instruction
sets), so each torch variant runs in its own worker process started with the restricting variables
(TORCH_ISA); one worker is unrestricted. Rounds alternate between our sessions (in this process) and
the workers, each timed where it runs, with a pause before each variant; medians of the rounds.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from common import PAUSE_S

# how PyTorch is held to an ISA (its own documented variables); None: torch's defaults
TORCH_ISA: dict[str, dict[str, str] | None] = {
    "default": None,
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"},
    # x86-64-v2: ATen's unvectorised build, MKL's and oneDNN's SSE4 kernels
    "sse4": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "DNNL_MAX_CPU_ISA": "SSE41"},
}
# the torch ISA that is like for like with our build for a CPU (host: torch's defaults)
TORCH_FOR = {"host": "default", "haswell": "avx2", "x86-64-v3": "avx2", "znver3": "avx2", "x86-64-v2": "sse4"}
HERE = Path(__file__).resolve().parent


class TorchWorker:
    """A Python process holding one torch step; `time(reps)` runs it reps times there and returns
    seconds per step measured there (so no pipe latency is counted)."""

    def __init__(self, isa: str, setup: dict) -> None:
        env = dict(os.environ)
        env.update(TORCH_ISA[isa] or {})
        self.isa = isa
        self.proc = subprocess.Popen([sys.executable, str(HERE / "isa_rows.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._ask(setup)  # what torch reports it uses (its CPU capability)

    def _ask(self, msg: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"torch worker ({self.isa}) exited with {self.proc.wait()}")
        return json.loads(line)

    def time(self, reps: int) -> float:
        return self._ask({"reps": reps})["s"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=60)


def alternate(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median seconds per step of each variant, rounds alternating over all of them."""
    for fn in variants.values():  # warm-up
        fn()
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for k, fn in variants.items():
            time.sleep(PAUSE_S)
            samples[k].append(fn())
    return {k: statistics.median(v) for k, v in samples.items()}


def timed(step: Callable[[], object], reps: int) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        return (time.perf_counter() - t0) / reps
    return run


def _serve() -> None:
    """Worker side: the first line sets the step up (mnist_train.torch_setup / adam_step.torch_setup),
    each later line times it."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import torch

    step: Callable[[], object] | None = None
    for line in sys.stdin:
        msg = json.loads(line)
        if step is None:
            torch.set_num_threads(msg["threads"])
            module = __import__(msg["module"])
            step = module.torch_setup(**msg["args"])
            reply = {"capability": torch.backends.cpu.get_cpu_capability()}
        else:
            reply = {"s": timed(step, msg["reps"])()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
