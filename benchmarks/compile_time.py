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
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "examples", ROOT / "benchmarks"):
    sys.path.insert(0, str(p))
import deep_mlp  # noqa: E402
from common import Table, interleaved_ms, interleaved_samples, write_result  # noqa: E402
from functional_adam import MyAdam  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402

WIDTH, BATCH, CLASSES = 64, 8, 10
# run times on one thread: at these sizes our steps (and torch, set below) do, and on a loaded machine a
# second OpenMP thread waiting for a core made single steps 10x slower and the comparisons noise
THREADS = 1


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
        opts = CompileOptions(cache_dir=cache, threads=THREADS)
        cold, cold_cpu, _ = _cpu_timed(lambda: popxl.Session(ir, "cpu", options=opts))
        warm, session = _timed(lambda: popxl.Session(ir, "cpu", options=opts))
        deeper = deep_mlp.train_ir(layers + 1, WIDTH, BATCH, CLASSES)[0]  # its kernels are all cached now
        _, next_cpu, _ = _cpu_timed(lambda: popxl.Session(deeper, "cpu", options=opts))
    x, y = deep_mlp.batch(WIDTH, BATCH, CLASSES)
    feed = dict(zip(streams, [x, y]))
    with session:
        run = _median_ms(lambda: session.run(feed), steps)
    return {"cold_s": cold, "cold_cpu_s": cold_cpu, "warm_s": warm, "step_ms": run, "next_cpu_s": next_cpu}


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
            opt.compile_options = CompileOptions(cache_dir=cache, threads=THREADS)
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
            opt = Adam(model.parameters(), lr=1e-3, compile_options=CompileOptions(cache_dir=cache, threads=THREADS))
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


def _child_env() -> dict[str, str]:
    # bytecode caches as after any install: PYTHONDONTWRITEBYTECODE (set on this machine) would make
    # every fresh process compile our sources again (~0.12 s, measured)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _kernel_texts(ir: Any) -> list[str]:
    """The LLVM text of each distinct kernel of `ir` after the pass pipeline (outline.py)."""
    from compiler.backends.llvm.lower import lower as lower_module
    from compiler.backends.llvm.outline import KernelTable
    from compiler.driver import optimise

    table = KernelTable()
    lower_module(optimise(ir, CompileOptions()), "optc", kernels=table)
    return [str(m) for m in table.modules.values()]


# (CompileOptions.opt_level, loop unrolling): O3 everywhere was the pipeline before; "auto" is now (O3 for
# small kernels without reassociable sums, O2 for the rest); O2 without unrolling was measured and not
# taken (it changes the order of reassociable sums in small kernels: docs/compile_time.md)
VARIANTS = {"O3": (3, True), "O2": (2, True), "auto": ("auto", True), "O2_no_unroll": (2, False)}


def _run_steps(sess: Any, feeds: list[dict], steps: int) -> None:
    for _ in range(steps):
        for f in feeds:
            sess.run(f)


def kernel_rows(programs: dict[str, Any], small: int = 200) -> list[dict]:
    """Per program: each distinct kernel compiled (parse, optimise, emit; CPU, best of 3, interleaved) with
    each of VARIANTS, summed per size group (lines of LLVM text before optimisation)."""
    from compiler.backends.llvm import target
    from compiler.backends.llvm.jobs import to_object

    target.init()
    tm = target.target_machine()
    rows = []
    for name, ir in programs.items():
        buckets: dict[str, list[float]] = {}
        for text in _kernel_texts(ir):
            size = text.count("\n")
            bucket = f"<{small}" if size < small else f"{small}-999" if size < 1000 else ">=1000"
            best = {v: float("inf") for v in VARIANTS}
            for _ in range(3):
                for v, (level, unroll) in VARIANTS.items():
                    c0 = time.process_time()
                    to_object(text, tm, level, unroll)
                    best[v] = min(best[v], time.process_time() - c0)
            acc = buckets.setdefault(bucket, [0.0] * (1 + len(VARIANTS)))
            acc[0] += 1
            for i, v in enumerate(VARIANTS):
                acc[1 + i] += best[v]
        for bucket, (n, *ms) in sorted(buckets.items()):
            row: dict[str, Any] = {"program": name, "kernel_lines": bucket, "kernels": int(n)}
            row.update({f"{v}_ms": round(m * 1e3, 1) for v, m in zip(VARIANTS, ms)})
            row["auto/O3"] = round(ms[2] / max(ms[0], 1e-9), 3)
            rows.append(row)
    return rows


def adam_ir(n: int) -> Any:
    """The tutorial Adam (examples/custom_optimiser.py, cached graph) on one float32 parameter of n elements."""
    from custom_optimiser import Adam

    ir = popxl.Ir()
    rng = np.random.default_rng(0)
    with ir.main_graph:
        w = popxl.variable(rng.standard_normal(n).astype(np.float32), name="w")
        g = popxl.variable(rng.standard_normal(n).astype(np.float32) * 1e-2, name="g")
        facts, graph = Adam(cache=True).create_graph(w, w.spec, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                                                     first_order_dtype=popxl.float32)
        graph.bind(facts.init()).call(w, g)
    return ir


def mnist_case(bs: int) -> tuple[Any, list[dict]]:
    """The MNIST tutorial step (same initial weights every build) and one batch for it."""
    import mnist_adam

    np.random.seed(0)
    ir, streams, *_ = mnist_adam.train_ir(bs)
    rng = np.random.default_rng(0)
    return ir, [dict(zip(streams, [rng.standard_normal((bs, 28, 28)).astype(np.float32),
                                   rng.integers(0, 10, bs).astype(np.int32)]))]


def mlp_case(layers: int) -> tuple[Any, list[dict]]:
    ir, streams, *_ = deep_mlp.train_ir(layers, WIDTH, BATCH, CLASSES)
    return ir, [dict(zip(streams, deep_mlp.batch(WIDTH, BATCH, CLASSES)))]


def pipeline_rows(cases: list[tuple[str, int, Callable[[], tuple[Any, list[dict]]], int]], rounds: int) -> list[dict]:
    """The LLVM pipeline before (O3 everywhere) and now ("auto"), per program and thread count: the cold
    compile's CPU (no cache; LLVM initialised) and the step's run time, the two builds timed in alternating
    rounds in this process (a 50 ms pause before each), every step on the same inputs. auto/O3 is the
    median of the per-round ratios; middle_half the 25th-75th percentile of them."""
    from common import PAUSE_S

    rows = []
    for name, threads, build, steps in cases:
        sessions, cpu, fns = {}, {}, {}
        for lv in (3, "auto"):
            ir, feeds = build()
            opts = CompileOptions(use_cache=False, opt_level=lv, threads=threads)
            _, cpu[lv], sess = _cpu_timed(lambda ir=ir, opts=opts: popxl.Session(ir, "cpu", options=opts))
            sess.__enter__()
            sessions[lv] = sess
            fns[lv] = partial(_run_steps, sess, feeds, steps)
        samples = interleaved_samples(fns, rounds, reps=1, pause_s=PAUSE_S)
        for s in sessions.values():
            s.__exit__(None, None, None)
        ratios = sorted(a / b for a, b in zip(samples["auto"], samples[3]))
        per = steps * len(feeds)
        rows.append({"program": name, "threads": threads, "compile_O3_cpu_s": round(cpu[3], 3),
                     "compile_auto_cpu_s": round(cpu["auto"], 3),
                     "step_O3_ms": round(statistics.median(samples[3]) / per * 1e3, 4),
                     "step_auto_ms": round(statistics.median(samples["auto"]) / per * 1e3, 4),
                     "auto/O3_step": round(statistics.median(ratios), 3),
                     "middle_half": f"{ratios[len(ratios) // 4]:.3f}-{ratios[(3 * len(ratios)) // 4]:.3f}",
                     "rounds": rounds})
        print(rows[-1], flush=True)
    return rows


def workers_rows(ir: Any, rounds: int = 3) -> list[dict]:
    """Cold compile CPU and wall with kernels compiled in line (0), on one worker thread overlapping the
    lowering (1), on two compile processes (2; jobs.py). cpu_s is this process's CPU only: the compile
    processes' CPU is not in it. The processes are started in the first round and kept."""
    from compiler.driver import lower

    times: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
    for _ in range(rounds):
        for w in times:
            wall, cpu, _ = _cpu_timed(lambda w=w: lower(ir, "llvm", CompileOptions(use_cache=False,
                                                                                     compile_workers=w)))
            times[w].append((wall, cpu))
    base = statistics.median(t[0] for t in times[0])
    return [{"compile_workers": w, "wall_s": round(statistics.median(t[0] for t in ts), 3),
             "cpu_s": round(statistics.median(t[1] for t in ts), 3),
             "wall_vs_in_line": round(statistics.median(t[0] for t in ts) / base, 3)} for w, ts in times.items()]


def one_module_rows(ir: Any, feed: dict, steps: int) -> list[dict]:
    """Run time of the step as separate kernel objects (what the backend does now) against the whole
    program in one module with every kernel linked in (what it compiled before the per-kernel cache):
    calls across objects cannot be inlined, so this is where a run-time cost would show."""
    import runtime
    from compiler.backends.llvm.backend import compile_module
    from compiler.driver import optimise
    from runtime.artifact import NativeCode
    from runtime.openmp import resolve_threads

    # both at O3 (what compile_module, the one-module build of tools.compile --emit, runs): like for like
    split = popxl.Session(ir, "cpu", options=CompileOptions(use_cache=False, threads=THREADS, opt_level=3))
    one = popxl.Session(ir, "cpu", options=CompileOptions(use_cache=False, threads=THREADS, opt_level=3))
    work = optimise(ir, CompileOptions())
    mod, layout, tm = compile_module(work)
    one._exe = runtime.load(NativeCode(tm.emit_object(mod), layout, work, resolve_threads(THREADS)))
    runs = []
    with split, one:
        for _ in range(5):  # five interleaved runs: the median ratio (a loaded machine moves single runs ~8%)
            runs.append(interleaved_ms({"split": lambda: split.run(feed), "one": lambda: one.run(feed)},
                                       rounds=steps))
    ratio = statistics.median(r["split"] / r["one"] for r in runs)
    return [{"layout": "kernels in objects of their own", "step_ms": round(statistics.median(r["split"] for r in runs), 4),
             "vs_one_module": round(ratio, 3)},
            {"layout": "one module (before)", "step_ms": round(statistics.median(r["one"] for r in runs), 4),
             "vs_one_module": 1.0}]


def fresh_process_s(code: str) -> tuple[float, float, float]:
    """(wall, CPU, compile CPU) seconds of a fresh interpreter running `code`: the whole process
    (Python start, imports, LLVM initialisation, compile), then what `code` prints as the CPU seconds
    of its Session call (the first compile in the process: lazy imports of the backend and LLVM's
    initialisation included). CPU time is what a loaded machine inflates least."""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, env=_child_env())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True,
                       env=_child_env())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = r.stdout.split()
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), \
        float(lines[-1]) if lines else float("nan")


FRESH_TUTORIAL_ADAM = """
import sys, tempfile
sys.path[:0] = ["examples"]
from custom_optimiser import build_ir
from compiler import popxl
from compiler.driver import CompileOptions
ir, _ = build_ir()
import time
c0 = time.process_time()
popxl.Session(ir, "cpu", options=CompileOptions(cache_dir=tempfile.mkdtemp()))
print(time.process_time() - c0)
"""
FRESH_NOTHING = "import sys, tempfile\nsys.path[:0] = ['examples']\nfrom compiler import popxl\nprint(0.0)\n"
FRESH_MNIST = """
import sys, tempfile
sys.path[:0] = ["examples"]
import mnist_adam
from compiler import popxl
from compiler.driver import CompileOptions
ir, *_ = mnist_adam.train_ir(8)
import time
c0 = time.process_time()
popxl.Session(ir, "cpu", options=CompileOptions(cache_dir=tempfile.mkdtemp()))
print(time.process_time() - c0)
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[4, 16, 64, 128, 256])
    ap.add_argument("--torch-compile-max", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--rounds", type=int, default=31, help="alternating rounds of the pipeline table")
    a = ap.parse_args(argv)
    try:
        import torch
        have_torch = not a.no_torch
        torch.set_num_threads(1)  # our compiled steps run on one thread at these sizes; so does torch here
    except ImportError:
        have_torch = False
        print("torch is not installed: the torch drop-in and torch.compile columns are left out")
    popxl_case(2, 2)  # LLVM initialised and every module imported before the first cold figure
    cols = ["layers", "popxl_cold_s", "popxl_cold_cpu_s", "popxl_warm_s", "popxl_next_layer_cpu_s", "popxl_step_ms",
            "functional_cold_s",
            "functional_warm_s", "functional_step_ms"]
    if have_torch:
        cols += ["dropin_cold_s", "dropin_warm_s", "dropin_step_ms", "torch_compile_s",
                 "torch_compile_step_ms", "torch_eager_step_ms"]
    t = Table("depth", "compile time (s) and run time per step (ms) against layer count", cols)
    for n in a.layers:
        p, f = popxl_case(n, a.steps), functional_case(n, a.steps)
        row: dict[str, object] = {
            "layers": n, "popxl_cold_s": p["cold_s"], "popxl_cold_cpu_s": p["cold_cpu_s"],
            "popxl_warm_s": p["warm_s"], "popxl_next_layer_cpu_s": p["next_cpu_s"], "popxl_step_ms": p["step_ms"],
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
    fresh = Table("fresh", "a fresh process (s): Python start, imports, LLVM initialisation and a cold compile "
                  "(whole process), and the CPU of its first Session call alone (compile_cpu_s)",
                  ["program", "wall_s", "cpu_s", "compile_cpu_s"])
    for name, code in [("python + imports only", FRESH_NOTHING), ("tutorial Adam (custom_optimiser.py)",
                                                                 FRESH_TUTORIAL_ADAM),
                       ("MNIST tutorial step, batch 8", FRESH_MNIST)]:
        wall, cpu, comp = fresh_process_s(code)
        fresh.add(program=name, wall_s=round(wall, 3), cpu_s=round(cpu, 3), compile_cpu_s=round(comp, 3))
    for row in fresh.rows:
        print(row)
    import mnist_adam

    mn_ir, mn_streams, *_ = mnist_adam.train_ir(8)
    rng = np.random.default_rng(0)
    mn_feed = dict(zip(mn_streams, [rng.standard_normal((8, 28, 28)).astype(np.float32),
                                    rng.integers(0, 10, 8).astype(np.int32)]))
    mlp_ir = deep_mlp.train_ir(16, WIDTH, BATCH, CLASSES)[0]
    kernels = Table("kernels", "each distinct kernel compiled at O3, O2, auto and O2 without loop unrolling (CPU ms, "
                    "best of 3, summed per size group: lines of LLVM text)",
                    ["program", "kernel_lines", "kernels"] + [f"{v}_ms" for v in VARIANTS] + ["auto/O3"])
    for row in kernel_rows({"MNIST step, batch 8": mn_ir, "MNIST step, batch 128": mnist_adam.train_ir(128)[0],
                            "MLP 16 layers": mlp_ir}):
        kernels.add(**row)
        print(row)
    pipe = Table("pipeline", "the LLVM pipeline before (O3 everywhere) and now (auto): cold compile CPU (s) and run "
                 "time per step (ms), alternating rounds", ["program", "threads", "compile_O3_cpu_s",
                                                            "compile_auto_cpu_s", "step_O3_ms", "step_auto_ms",
                                                            "auto/O3_step", "middle_half", "rounds"])
    cases: list = []
    for threads in (1, 2):
        cases += [("MNIST step, batch 8", threads, partial(mnist_case, 8), 50),
                  ("MNIST step, batch 128", threads, partial(mnist_case, 128), 5)]
    cases += [("MLP 16 layers", 1, partial(mlp_case, 16), 100),
              ("tutorial Adam, 262K", 1, lambda: (adam_ir(2**18), [{}]), 100),
              ("tutorial Adam, 16M", 1, lambda: (adam_ir(2**24), [{}]), 2),
              ("tutorial Adam, 16M", 2, lambda: (adam_ir(2**24), [{}]), 2)]
    for row in pipeline_rows(cases, a.rounds):
        pipe.add(**row)
    workers = Table("workers", "cold compile of the 128-layer MLP step by kernel compile workers (no cache; "
                    "2 = two compile processes, whose CPU cpu_s leaves out)",
                    ["compile_workers", "wall_s", "cpu_s", "wall_vs_in_line"])
    for row in workers_rows(deep_mlp.train_ir(128, WIDTH, BATCH, CLASSES)[0]):
        workers.add(**row)
        print(row)
    layout = Table("layout", "MNIST step (batch 8) run time: kernels as objects of their own against one module",
                   ["layout", "step_ms", "vs_one_module"])
    for row in one_module_rows(mn_ir, mn_feed, a.steps * 10):
        layout.add(**row)
        print(row)
    write_result("compile_time", [t, fresh, kernels, pipe, workers, layout],
                 command="python benchmarks/compile_time.py " + " ".join(argv or sys.argv[1:]),
                 settings={"layers": a.layers, "width": WIDTH, "batch": BATCH, "steps": a.steps},
                 notes=["cold: empty cache directory, this process (LLVM initialised); warm: the same program "
                        "again with that cache", "run time: median of steps after one warm-up",
                        "measured on a shared 2-core machine with other jobs running: compare within a run"])


if __name__ == "__main__":
    main()
