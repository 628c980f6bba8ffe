"""One Adam step: the compiled tutorial Adam vs numpy in-place ufuncs, torch.optim.Adam and torch.compile.

Run: python benchmarks/adam_step.py [--quick] [--sizes 1,16,64] [--threads 1,2] [--rounds 15]
     python benchmarks/adam_step.py --target-cpu host,haswell,x86-64-v2 [--sizes 1,16] [--threads 1]

Every variant keeps fp32 state (our Adam's first moment in float32, like torch's); the tutorial's
float16 first moment is a separate column. Variants and an in-place-add bandwidth probe are timed
round by round in one process, twice: with a 50 ms pause before each variant (kernels compared
without one variant's spinning OpenMP workers slowing the next) and back to back (what a loop that
mixes them meets). torch runs at its defaults (no OMP_WAIT_POLICY or other setting changed); only
its thread count is set, per row. numpy's ufuncs run on one thread. torch.compile's first call
(compile time) is reported separately from its step time. Writes benchmarks/results/adam_step/.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from common import PAUSE_S, Table, inplace_add_probe, interleaved_samples, write_result  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402
from custom_optimiser import Adam  # noqa: E402

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8
PROBE_N = 16 * 2**20  # float32 elements of the bandwidth probe's a += b


def compiled_step(shapes: list[tuple[int, ...]], first_order: popxl.dtype, threads: int, target_cpu: str | None = None):
    """A Session that applies the tutorial Adam to each parameter (graphs deduplicated by the passes)."""
    ir = popxl.Ir()
    rng = np.random.default_rng(0)
    opt = Adam(cache=True)
    with ir.main_graph:
        for i, shape in enumerate(shapes):
            w = popxl.variable(rng.standard_normal(shape).astype(np.float32), name=f"w{i}")
            g = popxl.variable(rng.standard_normal(shape).astype(np.float32) * 1e-2, name=f"g{i}")
            facts, graph = opt.create_graph(w, w.spec, lr=LR, beta1=B1, beta2=B2, eps=EPS,
                                            first_order_dtype=first_order)
            graph.bind(facts.init()).call(w, g)
    sess = popxl.Session(ir, "cpu", options=CompileOptions(threads=threads, target_cpu=target_cpu))
    sess.__enter__()
    return sess.run


def numpy_step(shapes):
    """Bias-corrected Adam in numpy ufuncs with out= everywhere: no temporaries, one thread."""
    rng = np.random.default_rng(0)
    ps = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    gs = [rng.standard_normal(s).astype(np.float32) * 1e-2 for s in shapes]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    tmp = [np.empty_like(p) for p in ps]
    state = {"t": 0}

    def step():
        state["t"] += 1
        t = state["t"]
        c1, c2 = 1 - B1 ** t, 1 - B2 ** t
        for p, g, m, v, w in zip(ps, gs, ms, vs, tmp):
            np.multiply(m, B1, out=m)
            np.multiply(g, 1 - B1, out=w)
            np.add(m, w, out=m)
            np.multiply(v, B2, out=v)
            np.multiply(g, g, out=w)
            np.multiply(w, 1 - B2, out=w)
            np.add(v, w, out=v)
            np.divide(v, c2, out=w)
            np.sqrt(w, out=w)
            np.add(w, EPS, out=w)
            np.divide(m, w, out=w)
            np.multiply(w, -LR / c1, out=w)
            np.add(p, w, out=p)
    return step


def torch_opt(shapes, **kw):
    import torch

    torch.manual_seed(0)
    ps = [torch.randn(s, requires_grad=True) for s in shapes]
    for p in ps:
        p.grad = torch.randn(p.shape) * 1e-2
    return torch.optim.Adam(ps, lr=LR, betas=(B1, B2), eps=EPS, **kw)


def torch_compiled_step(shapes) -> tuple[object, float]:
    """torch.compile of torch.optim.Adam's step (the PyTorch recipe); returns (step, first-call seconds)."""
    import torch

    opt = torch_opt(shapes)
    step = torch.compile(opt.step, fullgraph=False)
    t0 = time.perf_counter()
    step()
    return step, time.perf_counter() - t0


def torch_setup(shapes: list[list[int]]):
    """torch.optim.Adam(fused=True).step on fp32 parameters of `shapes` (isa_rows.py's workers)."""
    return torch_opt([tuple(s) for s in shapes], fused=True).step


def isa_table(cpus: list[str], sizes: str, threads_list: str, rounds: int) -> Table:
    """One Adam step (fp32 state) compiled for each CPU, against torch's fused Adam restricted to the same
    ISA in its own process (isa_rows.py), alternating rounds. Memory-bound: the ISA should not matter."""
    from isa_rows import TORCH_FOR, TorchWorker, alternate, timed

    t = Table("isa", "One Adam step per target CPU, fp32 state: median ms/step (torch fused Adam on the same "
              "ISA, in its own process)", ["case", "target", "threads", "ours", "torch ISA", "torch fused",
                                           "ours / torch fused", "ours / ours host"])
    for threads in map(int, threads_list.split(",")):
        for m in map(int, sizes.split(",")):
            shapes = [(m * 2**20,)]
            workers = {isa: TorchWorker(isa, {"module": "adam_step", "threads": threads, "args": {"shapes": shapes}})
                       for isa in sorted({TORCH_FOR[c] for c in cpus})}
            variants = {}
            for cpu in cpus:
                run = compiled_step(shapes, popxl.float32, threads, None if cpu == "host" else cpu)
                variants[cpu] = timed(lambda r=run: r({}), 2)
            for isa, w in workers.items():
                variants[f"torch {isa}"] = lambda w=w: w.time(2)
            med = alternate(variants, rounds)
            for cpu in cpus:
                isa = TORCH_FOR[cpu]
                t.add(**{"case": f"1 x {m}M", "target": cpu, "threads": threads, "ours": med[cpu] * 1e3,
                         "torch ISA": f"{isa} ({workers[isa].info['capability']})",
                         "torch fused": med[f"torch {isa}"] * 1e3, "ours / torch fused": med[cpu] / med[f"torch {isa}"],
                         "ours / ours host": med[cpu] / med["host"] if "host" in med else None})
                print(f"1 x {m}M {cpu} threads {threads}: {t.rows[-1]}", flush=True)
            for w in workers.values():
                w.close()
    return t


def run_case(label: str, shapes, threads: int, rounds: int, with_torch: bool, with_compile: bool) -> dict:
    n = sum(int(np.prod(s)) for s in shapes)
    fns = {"ours fp32": compiled_step(shapes, popxl.float32, threads),
           "ours fp16 m": compiled_step(shapes, popxl.float16, threads),
           "numpy": numpy_step(shapes), "probe": inplace_add_probe(PROBE_N)}
    compile_s = None
    if with_torch:
        fns["torch foreach"] = torch_opt(shapes, foreach=True).step
        fns["torch fused"] = torch_opt(shapes, fused=True).step
        if with_compile:
            fns["torch.compile"], compile_s = torch_compiled_step(shapes)
    out = {"case": label, "params": n, "threads": threads, "compile_s": compile_s}
    for protocol, pause in (("paused", PAUSE_S), ("back to back", 0.0)):
        samples = interleaved_samples(fns, rounds, reps=2, pause_s=pause)
        ms = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
        # Adam's traffic (28 B/param: read w, g, m, v, write w, m, v) over the probe's, round by round
        frac = [28 * n / a / (12 * PROBE_N / b) for a, b in zip(samples["ours fp32"], samples["probe"])]
        out[protocol] = {**ms, "probe GB/s": 12 * PROBE_N / (ms["probe"] * 1e-3) / 1e9,
                         "ours GB/s": 28 * n / (ms["ours fp32"] * 1e-3) / 1e9,
                         "ours / probe": statistics.median(frac)}
    del fns
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None, help="single-tensor sizes in millions of parameters (default 1,16,64)")
    ap.add_argument("--threads", default="1,2", help="thread counts for ours and torch, one row each")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per protocol (default 15)")
    ap.add_argument("--quick", action="store_true", help="sizes 1,16, the 100-tensor case, 5 rounds")
    ap.add_argument("--no-compile", action="store_true", help="leave out torch.compile (its compile takes minutes)")
    ap.add_argument("--results-dir", default=None, help="where to write the result (default benchmarks/results)")
    ap.add_argument("--target-cpu", default=None, help="instead: rows per target CPU, e.g. host,haswell,x86-64-v2 "
                    "(torch restricted to the same ISA in its own process); writes adam_step_isa")
    args = ap.parse_args(argv)
    if args.target_cpu:
        sizes = args.sizes or "1,16"
        rounds = args.rounds or (5 if args.quick else 15)
        t = isa_table(args.target_cpu.split(","), sizes, args.threads, rounds)
        path = write_result("adam_step_isa", [t], command=f"python benchmarks/adam_step.py --target-cpu "
                            f"{args.target_cpu} --sizes {sizes} --threads {args.threads}",
                            settings={"sizes": sizes, "threads": args.threads, "rounds": rounds, "pause_s": PAUSE_S},
                            notes=["torch restricted by ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2, "
                                   "DNNL_MAX_CPU_ISA=AVX2 (x86-64-v2 rows: ATen default, MKL SSE4_2, oneDNN SSE41; "
                                   "host rows: torch's "
                                   "defaults); rounds alternate between "
                                   "our sessions and the torch processes; medians of 2-step samples."],
                            results_dir=args.results_dir)
        print(f"wrote {path}")
        return {"path": path}
    sizes = args.sizes or ("1,16" if args.quick else "1,16,64")
    rounds = args.rounds or (5 if args.quick else 15)
    try:
        import torch
    except ImportError:
        torch = None
    cases = [(f"1 x {m}M", [(m * 2**20,)]) for m in map(int, sizes.split(","))]
    cases.append(("100 x 0.16M", [(16 * 2**20 // 100,)] * 100))
    main_t = Table("main", "One Adam step, fp32 state everywhere: median ms/step (paused protocol)",
                   ["case", "threads", "ours", "numpy (1 thread)", "torch foreach", "torch fused", "torch.compile",
                    "ours / torch fused", "ours / torch.compile", "ours GB/s", "ours / bandwidth probe",
                    "ours fp16 m (tutorial)"],
                   notes=["ours / bandwidth probe: Adam's 28 B/param per step over the one-thread in-place-add "
                          "probe's GB/s, both timed in the same rounds (median of per-round ratios); above 1 "
                          "means more than one thread's bandwidth.",
                          "ours fp16 m: the tutorial's float16 first moment (less traffic; not like for like)."])
    b2b = Table("back_to_back", "The same variants timed back to back (no pause): median ms/step",
                ["case", "threads", "ours", "torch foreach", "torch fused", "torch.compile", "ours / torch fused"],
                notes=["What a loop that calls both meets: torch's OpenMP workers keep spinning after its "
                       "step and slow whatever runs next on the two cores."])
    comp = Table("compile", "torch.compile: first call (compile) time, s", ["case", "threads", "compile s"])
    for threads in map(int, args.threads.split(",")):
        if torch is not None:
            torch.set_num_threads(threads)
        for label, shapes in cases:
            r = run_case(label, shapes, threads, rounds, torch is not None, torch is not None and not args.no_compile)
            p, b = r["paused"], r["back to back"]
            main_t.add(**{"case": label, "threads": threads, "ours": p["ours fp32"], "numpy (1 thread)": p["numpy"],
                          "torch foreach": p.get("torch foreach"), "torch fused": p.get("torch fused"),
                          "torch.compile": p.get("torch.compile"),
                          "ours / torch fused": _ratio(p["ours fp32"], p.get("torch fused")),
                          "ours / torch.compile": _ratio(p["ours fp32"], p.get("torch.compile")),
                          "ours GB/s": p["ours GB/s"], "ours / bandwidth probe": p["ours / probe"],
                          "ours fp16 m (tutorial)": p["ours fp16 m"]})
            b2b.add(**{"case": label, "threads": threads, "ours": b["ours fp32"], "torch foreach": b.get("torch foreach"),
                       "torch fused": b.get("torch fused"), "torch.compile": b.get("torch.compile"),
                       "ours / torch fused": _ratio(b["ours fp32"], b.get("torch fused"))})
            if r["compile_s"] is not None:
                comp.add(case=label, threads=threads, **{"compile s": r["compile_s"]})
            print(f"{label}, {threads} thread(s): paused {_short(p)}; back to back {_short(b)}", flush=True)
    cmd = "python benchmarks/adam_step.py" + (" --quick" if args.quick else "") + (" --no-compile" if args.no_compile else "")
    path = write_result("adam_step", [main_t, b2b] + ([comp] if comp.rows else []), command=cmd,
                        settings={"sizes": sizes, "threads": args.threads, "rounds": rounds, "reps": 2,
                                  "pause_s": PAUSE_S, "probe_elements": PROBE_N},
                        notes=[f"{rounds} interleaved rounds per protocol, 2 steps per sample; torch at its defaults "
                               "apart from torch.set_num_threads(threads)."],
                        results_dir=args.results_dir)
    print(f"wrote {path}")
    return {"path": path, "rows": main_t.rows}


def _ratio(a: float, b: float | None) -> float | None:
    return None if b is None else a / b


def _short(d: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in d.items() if isinstance(v, float))


if __name__ == "__main__":
    main()
