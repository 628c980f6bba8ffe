"""Compile time against depth: cold (empty compile cache) and warm (cache hit) compile of a deep MLP's
training step, with run time per step, for three front ends and torch.compile.

  python benchmarks/compile_time.py [--layers 4 16 64 128 256] [--torch-compile-max 64] [--steps 20]

- popxl: examples/deep_mlp.py, the PopXL way (N Linear+gelu layers, 64 wide, cross entropy, the
  tutorial's cached per-variable Adam); compile = popxl.Session(ir, "cpu").
- functional: the functional optimizer of examples/functional_adam.py over the same N layers' parameters
  (the optimizer step alone: gradients come from outside); compile = the first call.
- torch drop-in: compiler.optim.torch.Adam on a torch MLP of the same shape; compile = the first step().
  Its training step (torch forward/backward plus our step) is timed per step.
- torch.compile: the same torch training step (model and torch.optim.Adam.step compiled), first call
  minus an eager step = its compile time; skipped above --torch-compile-max layers (minutes each).
Cold compiles use a fresh cache directory in this process (LLVM already initialised by a warm-up
compile); `fresh process` rows add Python start, imports and LLVM initialisation.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "examples", ROOT / "benchmarks"):
    sys.path.insert(0, str(p))
import deep_mlp  # noqa: E402
from common import Table, write_result  # noqa: E402
from functional_adam import MyAdam  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402

WIDTH, BATCH, CLASSES = 64, 8, 10


def _median_ms(fn: Callable[[], Any], steps: int) -> float:
    fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _cpu_timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall, CPU of this process) seconds; our compile runs on one thread, so on an idle machine
    the two agree, and on a loaded one the CPU figure is the one that means something."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def popxl_case(layers: int, steps: int) -> dict:
    ir, streams, _vars, loss = deep_mlp.train_ir(layers, WIDTH, BATCH, CLASSES)
    with tempfile.TemporaryDirectory() as cache:
        opts = CompileOptions(cache_dir=cache)
        cold, cold_cpu, _ = _cpu_timed(lambda: popxl.Session(ir, "cpu", options=opts))
        warm, session = _timed(lambda: popxl.Session(ir, "cpu", options=opts))
    x, y = deep_mlp.batch(WIDTH, BATCH, CLASSES)
    feed = dict(zip(streams, [x, y]))
    with session:
        run = _median_ms(lambda: session.run(feed), steps)
    return {"cold_s": cold, "cold_cpu_s": cold_cpu, "warm_s": warm, "step_ms": run}


def _params(layers: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for i in range(layers):
        out[f"w{i}"] = rng.standard_normal((WIDTH, WIDTH)).astype(np.float32) * 0.02
        out[f"b{i}"] = np.zeros(WIDTH, np.float32)
    out["head_w"] = rng.standard_normal((WIDTH, CLASSES)).astype(np.float32) * 0.02
    out["head_b"] = np.zeros(CLASSES, np.float32)
    return out


def functional_case(layers: int, steps: int) -> dict:
    params = _params(layers)
    grads = {k: np.full_like(v, 1e-3) for k, v in params.items()}
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for _ in range(2):  # cold, then warm (a new optimizer: a new trace, the cached object)
            opt = MyAdam(lr=1e-3)
            opt.compile_options = CompileOptions(cache_dir=cache)
            t, _ = _timed(lambda o=opt: o(params, grads))
            times.append(t)
    run = _median_ms(lambda: opt(params, grads), steps)
    return {"cold_s": times[0], "warm_s": times[1], "step_ms": run}


def _torch_model(layers: int) -> Any:
    import torch

    torch.manual_seed(0)
    mods: list[Any] = []
    for _ in range(layers):
        mods += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.GELU(approximate="tanh")]
    return torch.nn.Sequential(*mods, torch.nn.Linear(WIDTH, CLASSES))


def _torch_batch() -> tuple[Any, Any]:
    import torch

    x, y = deep_mlp.batch(WIDTH, BATCH, CLASSES)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def torch_dropin_case(layers: int, steps: int) -> dict:
    import torch

    from compiler.optim.torch import Adam

    x, y = _torch_batch()
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for _ in range(2):
            model = _torch_model(layers)
            opt = Adam(model.parameters(), lr=1e-3, compile_options=CompileOptions(cache_dir=cache))
            torch.nn.functional.cross_entropy(model(x), y).backward()
            t, _ = _timed(opt.step)
            times.append(t)

    def train_step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return {"cold_s": times[0], "warm_s": times[1], "step_ms": _median_ms(train_step, steps)}


def torch_compile_case(layers: int, steps: int) -> dict:
    import torch

    x, y = _torch_batch()
    model = _torch_model(layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def eager() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    eager_ms = _median_ms(eager, steps)
    torch._dynamo.reset()
    cmodel = torch.compile(model)
    cstep = torch.compile(opt.step)

    def compiled() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(cmodel(x), y).backward()
        cstep()
    first, _ = _timed(compiled)
    second, _ = _timed(compiled)  # the backward graph and the optimizer may compile on the 2nd call
    run = _median_ms(compiled, steps)
    return {"cold_s": first + second - 2 * run / 1e3, "step_ms": run, "eager_ms": eager_ms}


def fresh_process_s(code: str) -> tuple[float, float]:
    """(wall, CPU) seconds of a fresh interpreter running `code` (imports, LLVM initialisation, compile).
    CPU time (user + system of the child) is what a loaded machine does not inflate."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


FRESH_TUTORIAL_ADAM = """
import sys, tempfile
sys.path[:0] = ["examples"]
from custom_optimiser import build_ir
from compiler import popxl
from compiler.driver import CompileOptions
ir, _ = build_ir()
popxl.Session(ir, "cpu", options=CompileOptions(cache_dir=tempfile.mkdtemp()))
"""
FRESH_NOTHING = "import sys, tempfile\nsys.path[:0] = ['examples']\nfrom compiler import popxl\n"
FRESH_MNIST = """
import sys, tempfile
sys.path[:0] = ["examples"]
import mnist_adam
from compiler import popxl
from compiler.driver import CompileOptions
ir, *_ = mnist_adam.train_ir(8)
popxl.Session(ir, "cpu", options=CompileOptions(cache_dir=tempfile.mkdtemp()))
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[4, 16, 64, 128, 256])
    ap.add_argument("--torch-compile-max", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args(argv)
    try:
        import torch
        have_torch = not a.no_torch
        torch.set_num_threads(1)  # our compiled steps run on one thread at these sizes; so does torch here
    except ImportError:
        have_torch = False
        print("torch is not installed: the torch drop-in and torch.compile columns are left out")
    popxl_case(2, 2)  # LLVM initialised and every module imported before the first cold figure
    cols = ["layers", "popxl_cold_s", "popxl_cold_cpu_s", "popxl_warm_s", "popxl_step_ms", "functional_cold_s",
            "functional_warm_s", "functional_step_ms"]
    if have_torch:
        cols += ["dropin_cold_s", "dropin_warm_s", "dropin_step_ms", "torch_compile_s",
                 "torch_compile_step_ms", "torch_eager_step_ms"]
    t = Table("depth", "compile time (s) and run time per step (ms) against layer count", cols)
    for n in a.layers:
        p, f = popxl_case(n, a.steps), functional_case(n, a.steps)
        row: dict[str, object] = {
            "layers": n, "popxl_cold_s": p["cold_s"], "popxl_cold_cpu_s": p["cold_cpu_s"],
            "popxl_warm_s": p["warm_s"], "popxl_step_ms": p["step_ms"],
            "functional_cold_s": f["cold_s"], "functional_warm_s": f["warm_s"], "functional_step_ms": f["step_ms"]}
        if have_torch:
            d = torch_dropin_case(n, a.steps)
            row.update(dropin_cold_s=d["cold_s"], dropin_warm_s=d["warm_s"], dropin_step_ms=d["step_ms"])
            if n <= a.torch_compile_max:
                c = torch_compile_case(n, a.steps)
                row.update(torch_compile_s=c["cold_s"], torch_compile_step_ms=c["step_ms"],
                           torch_eager_step_ms=c["eager_ms"])
        t.add(**{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    if len(a.layers) >= 2:
        lo, hi = t.rows[-2], t.rows[-1]
        for col in ("popxl_cold_s", "popxl_cold_cpu_s"):
            per_layer = (hi[col] - lo[col]) / (hi["layers"] - lo["layers"])  # type: ignore[operator]
            t.notes.append(f"{col} per added layer ({lo['layers']} -> {hi['layers']}): {per_layer * 1e3:.1f} ms")
    fresh = Table("fresh", "a fresh process (s): Python start, imports, LLVM initialisation and a cold compile",
                  ["program", "wall_s", "cpu_s"])
    for name, code in [("python + imports only", FRESH_NOTHING), ("tutorial Adam (custom_optimiser.py)",
                                                                 FRESH_TUTORIAL_ADAM),
                       ("MNIST tutorial step, batch 8", FRESH_MNIST)]:
        wall, cpu = fresh_process_s(code)
        fresh.add(program=name, wall_s=round(wall, 3), cpu_s=round(cpu, 3))
    for row in fresh.rows:
        print(row)
    write_result("compile_time", [t, fresh], command="python benchmarks/compile_time.py " + " ".join(argv or sys.argv[1:]),
                 settings={"layers": a.layers, "width": WIDTH, "batch": BATCH, "steps": a.steps},
                 notes=["cold: empty cache directory, this process (LLVM initialised); warm: the same program "
                        "again with that cache", "run time: median of steps after one warm-up",
                        "measured on a shared 2-core machine with other jobs running: compare within a run"])


if __name__ == "__main__":
    main()
