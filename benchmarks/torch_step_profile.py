"""Where the torch.optim drop-in's step goes right after `loss.backward()`: its parts, timed apart.

The step after a backward meets caches full of the backward's data, so every part costs more than
in a step repeated back to back ("warm"). This splits the steady-state step (compiler/optim/step_plan.py)
into what each part costs there:

- torch's wrapper: `Optimizer.step`'s profiling and hook wrapper (record_function, pre/post hooks),
  which torch installs around every optimizer's step; torch fused always pays it, ours only while a
  step hook is registered or torch's profiler is on (compiler/optim/torch_step.py), else only the
  check for those ("hook check");
- validation: StepPlan._check, the Python checks of groups, hyper-parameters, parameters, state and
  gradients;
- repoint: BoundRun.repoint, the overlap check of the gradients' new addresses;
- native call: ctypes and the lock around the entry point (the bound call minus the bare kernel);
- kernel: the entry point itself (the fused update; parallel regions only above the thresholds in
  compiler/backends/llvm/thresholds.py).

Each iteration does one forward and backward, then times one of the measurements (in rotation, so
all see the same conditions), then completes the step untimed where the measurement stopped early.
torch.optim.AdamW(fused=True) is profiled alongside, interleaved iteration by iteration: its whole
step, and the step without the wrapper. Medians over the iterations. The warm column repeats each
measurement right after a step, with no backward between.

Run: python benchmarks/torch_step_profile.py [--iters 300] [--models conv]
"""
from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import Table, table, write_result  # noqa: E402
from torch_loop import _models  # noqa: E402

from compiler.optim import torch_step  # noqa: E402
from compiler.optim.torch import AdamW  # noqa: E402

nn = torch.nn
_pc = time.perf_counter
_data_ptr = torch.Tensor.data_ptr
PARTS = ("step()", "step() through torch's wrapper", "without torch's wrapper", "validation", "validation + repoint",
         "validation + repoint + call", "kernel")


def _ours(opt: AdamW) -> dict[str, Callable[[], float]]:
    """Each measurement: run it, return the seconds of its timed part (the step is always completed)."""
    bare = opt._plain_step

    def plan():
        p = opt._rt().plan
        assert p is not None, "the steady state was left: the profile would time the slow path"
        return p

    def step() -> float:
        t = _pc()
        opt.step()
        return _pc() - t

    def hooked() -> float:
        t = _pc()
        torch_step._hooked(opt, None)
        return _pc() - t

    def unwrapped() -> float:
        t = _pc()
        bare()
        return _pc() - t

    def check(upto: int) -> Callable[[], float]:
        def run() -> float:
            p = plan()
            t0 = _pc()
            grads = p._check(opt, opt._group_spec)
            t1 = _pc()
            p.bound.repoint(list(map(_data_ptr, grads)))
            t2 = _pc()
            p.bound()
            t3 = _pc()
            return (t1 - t0, t2 - t0, t3 - t0)[upto]
        return run

    def kernel() -> float:
        p = plan()
        p.bound.repoint(list(map(_data_ptr, p._check(opt, opt._group_spec))))
        b = p.bound
        ex = b._ex
        ex._rt.num_threads = ex.threads
        t = _pc()
        rc = ex._fn(*b._args)
        dt = _pc() - t
        assert rc == 0
        return dt

    return dict(zip(PARTS, (step, hooked, unwrapped, check(0), check(1), check(2), kernel)))


def _torch(opt: torch.optim.Optimizer) -> dict[str, Callable[[], float]]:
    bare = type(opt).step.__wrapped__

    def step() -> float:
        t = _pc()
        opt.step()
        return _pc() - t

    def unwrapped() -> float:
        t = _pc()
        bare(opt)
        return _pc() - t
    return {"step()": step, "without torch's wrapper": unwrapped}  # torch's step() is its wrapper


def profile_row(name: str, make: Callable[[], nn.Module], batch: Callable, iters: int) -> list[dict]:
    torch.manual_seed(0)
    base = make()
    runs = {}
    for kind in ("ours", "torch fused"):
        net = copy.deepcopy(base)
        opt = AdamW(net.parameters(), lr=1e-3) if kind == "ours" else \
            torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
        runs[kind] = (net, opt, torch.Generator().manual_seed(1), (_ours if kind == "ours" else _torch)(opt))

    def backward(net: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
        x, y = batch(gen)
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()

    for net, opt, gen, _ in runs.values():  # compiles ours and reaches its steady state
        for _ in range(4):
            backward(net, opt, gen)
            opt.step()
    cold: dict[tuple[str, str], list[float]] = {}
    warm: dict[tuple[str, str], list[float]] = {}
    for i in range(iters):
        for kind, (net, opt, gen, parts) in runs.items():
            part = list(parts)[i % len(parts)]
            backward(net, opt, gen)
            cold.setdefault((kind, part), []).append(parts[part]())
            warm.setdefault((kind, part), []).append(parts[part]())
    rows = []
    for kind, (_, opt, _, parts) in runs.items():
        if kind == "ours":
            assert opt._rt().slow_steps == 2, "a profiled step left the steady state"
        med = {p: (statistics.median(cold[kind, p]) * 1e6, statistics.median(warm[kind, p]) * 1e6) for p in parts}
        for part, (c, w) in med.items():
            rows.append({"model": name, "optimizer": kind, "part": part, "us after backward": round(c, 1),
                         "us warm": round(w, 1)})
        if kind == "ours":  # the parts, as differences of the nested measurements above
            derived = {
                "= torch's wrapper (when used)": "step() through torch's wrapper", "= hook check": "step()",
                "= validation": "validation", "= repoint": "validation + repoint",
                "= native call": "validation + repoint + call", "= kernel": "kernel"}
            less = {"step() through torch's wrapper": "without torch's wrapper", "step()": "without torch's wrapper",
                    "validation + repoint": "validation", "validation + repoint + call": "validation + repoint"}
            for label, part in derived.items():
                c, w = med[part]
                if part in less:
                    c, w = c - med[less[part]][0], w - med[less[part]][1]
                if label == "= native call":
                    c, w = c - med["kernel"][0], w - med["kernel"][1]
                rows.append({"model": name, "optimizer": kind, "part": label, "us after backward": round(c, 1),
                             "us warm": round(w, 1)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300, help="iterations per model (measurements rotate)")
    ap.add_argument("--models", default="conv", help="models whose names contain one of these comma-separated "
                    "words ('' = all three of benchmarks/torch_loop.py)")
    args = ap.parse_args(argv)
    words = [w for w in args.models.split(",") if w]
    t = Table("profile", "The step right after backward, in parts (us, medians)",
              ["model", "optimizer", "part", "us after backward", "us warm"],
              notes=["'= ...' rows are differences of the measurements above them (e.g. native call = "
                     "validation + repoint + call - validation + repoint - kernel); as differences of medians, "
                     "a small one can come out negative"])
    for name, (make, batch) in _models(False).items():
        if words and not any(w in name for w in words):
            continue
        for row in profile_row(name, make, batch, args.iters):
            t.add(**row)
    print(table(t.rows, t.columns))
    notes = [f"{args.iters} iterations per model, ours and torch fused interleaved iteration by iteration; "
             f"torch.get_num_threads() = {torch.get_num_threads()}, torch's defaults"]
    path = write_result("torch_step_profile", [t], command="python benchmarks/torch_step_profile.py"
                        + (f" --models {shlex.quote(args.models)}" if args.models != "conv" else ""), settings=vars(args),
                        notes=notes)
    print(f"wrote {path}")
    return {"profile": t.rows}


if __name__ == "__main__":
    main()
