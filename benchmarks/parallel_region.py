"""What a parallel region costs, and where splitting work starts to pay.

Run: python benchmarks/parallel_region.py [--rounds 15] [--quick]

1. One empty parallel region (compiler/backends/llvm/parallel.py: GOMP_parallel, libgomp's workers
   kept between regions) in a compiled loop of 2000 regions, at 1 thread (a direct call), 2 threads
   and every CPU; next to it the old way, one pthread_create + pthread_join per region.
2. Crossovers that set compiler/backends/llvm/thresholds.py: the compiled Adam step (elementwise,
   28 bytes per element) and a float32 matmul, each at sizes around the thresholds, 1 vs 2 threads.
Variants are interleaved round by round in one process; medians are printed. Timing on a shared
machine drifts: only ratios from one run mean anything.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from common import Table, interleaved_ms, write_result  # noqa: E402

import llvmlite.binding as llvm  # noqa: E402
from llvmlite import ir  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.backends.llvm import target  # noqa: E402
from compiler.backends.llvm.loops import for_range  # noqa: E402
from compiler.backends.llvm.parallel import parallel  # noqa: E402
from compiler.backends.llvm.types import I32, I64, PTR  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402
from compiler.popxl.ops._emit import emit_op, out  # noqa: E402
from runtime.loader import load_object  # noqa: E402

REGIONS = 2000


def region_loops():
    """Compiled `regions(n, threads)`: n empty parallel regions; `spawns(n)`: n pthread create/joins."""
    m = ir.Module("bench")
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64, I32]), "regions")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    sink = b.alloca(I64)  # the work stores its thread number: an empty region the optimiser keeps
    with for_range(b, fn.args[0]) as _:
        parallel(m, b, fn.args[1], [sink], lambda wb, cap, tid, nt: wb.store(tid, wb.bitcast(cap[0], I64.as_pointer())),
                 "empty")
    b.ret_void()
    thunk = ir.Function(m, ir.FunctionType(PTR, [PTR]), "nothing")
    ir.IRBuilder(thunk.append_basic_block("entry")).ret(ir.Constant(PTR, None))
    sp = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64]), "spawns")
    b = ir.IRBuilder(sp.append_basic_block("entry"))
    create = ir.Function(m, ir.FunctionType(I32, [I64.as_pointer(), PTR, thunk.type, PTR]), "pthread_create")
    join = ir.Function(m, ir.FunctionType(I32, [I64, PTR.as_pointer()]), "pthread_join")
    tid = b.alloca(I64)
    with for_range(b, sp.args[0]) as _:
        b.call(create, [tid, ir.Constant(PTR, None), thunk, ir.Constant(PTR, None)])
        b.call(join, [b.load(tid), ir.Constant(PTR.as_pointer(), None)])
    b.ret_void()
    target.init()
    tm = target.target_machine()
    mod = llvm.parse_assembly(str(m))
    mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
    target.optimise(mod, tm)
    obj = tm.emit_object(mod)
    addr, engine = load_object(obj, "regions")
    regions = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int32)(addr)
    spawns = ctypes.CFUNCTYPE(None, ctypes.c_int64)(engine.get_function_address("spawns"))
    return regions, spawns, engine


def adam_session(n: int, threads: int):
    from custom_optimiser import Adam

    irx = popxl.Ir()
    rng = np.random.default_rng(0)
    with irx.main_graph:
        w = popxl.variable(rng.standard_normal(n).astype(np.float32), name="w")
        g = popxl.variable(rng.standard_normal(n).astype(np.float32), name="g")
        facts, graph = Adam(cache=True).create_graph(w, w.spec, lr=1e-3)
        graph.bind(facts.init()).call(w, g)
    sess = popxl.Session(irx, "cpu", options=CompileOptions(threads=threads))
    sess.__enter__()
    return sess


def matmul_session(m: int, k: int, n: int, threads: int):
    rng = np.random.default_rng(0)
    irx = popxl.Ir()
    with irx.main_graph:
        a = popxl.variable(rng.standard_normal((m, k)).astype(np.float32), name="a")
        b = popxl.variable(rng.standard_normal((k, n)).astype(np.float32), name="b")
        y = popxl.variable(np.zeros((m, n), np.float32), name="y")
        popxl.ops.var_updates.copy_var_update_(y, out(emit_op("MatMul", {"a": a, "b": b}, {})))
    sess = popxl.Session(irx, "cpu", options=CompileOptions(threads=threads))
    sess.__enter__()
    return sess


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="fewer sizes and rounds")
    args = ap.parse_args(argv)
    rounds = 5 if args.quick else args.rounds
    cpus = len(os.sched_getaffinity(0))
    regions, spawns, _engine = region_loops()
    fns = {"1 thread (direct call)": lambda: regions(REGIONS, 1), "2 threads": lambda: regions(REGIONS, 2),
           f"{cpus} threads (every CPU)": lambda: regions(REGIONS, cpus),
           "pthread create+join (before)": lambda: spawns(REGIONS)}
    overhead = Table("region", "one empty parallel region, us", ["variant", "us per region"])
    for k, ms in interleaved_ms(fns, rounds, reps=1).items():
        overhead.add(**{"variant": k, "us per region": round(ms * 1e3 / REGIONS, 2)})
    print("\n".join(f"{r['variant']:32s} {r['us per region']:8.2f} us" for r in overhead.rows), flush=True)

    sizes = [1 << 13, 1 << 15, 1 << 16, 1 << 18] if args.quick else [1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16,
                                                                         1 << 17, 1 << 18, 1 << 20]
    elem = Table("adam", "compiled Adam step: 1 vs 2 threads", ["elements", "1 thread us", "2 threads us", "speed-up"])
    for n in sizes:
        ss = {t: adam_session(n, t) for t in (1, 2)}
        res = interleaved_ms({t: (lambda s=s: s.run({})) for t, s in ss.items()}, rounds, reps=20)
        elem.add(elements=n, **{"1 thread us": round(res[1] * 1e3, 1), "2 threads us": round(res[2] * 1e3, 1),
                                "speed-up": round(res[1] / res[2], 2)})
        print(elem.rows[-1], flush=True)
    shapes = [(16, 64, 64), (32, 128, 64), (64, 128, 128), (128, 256, 128)]
    if not args.quick:
        shapes += [(8, 784, 128), (128, 256, 256)]
    mm = Table("matmul", "float32 matmul (m, k, n): 1 vs 2 threads", ["m,k,n", "MACs", "1 thread us", "2 threads us",
                                                                      "speed-up"])
    for m, k, n in shapes:
        ss = {t: matmul_session(m, k, n, t) for t in (1, 2)}
        res = interleaved_ms({t: (lambda s=s: s.run({})) for t, s in ss.items()}, rounds, reps=20)
        mm.add(**{"m,k,n": f"{m},{k},{n}", "MACs": m * k * n, "1 thread us": round(res[1] * 1e3, 1),
                  "2 threads us": round(res[2] * 1e3, 1), "speed-up": round(res[1] / res[2], 2)})
        print(mm.rows[-1], flush=True)
    path = write_result("parallel_region", [overhead, elem, mm], command="python benchmarks/parallel_region.py"
                        + (" --quick" if args.quick else ""), settings={"rounds": rounds, "regions": REGIONS},
                        notes=["variants interleaved round by round, back to back; a Session run adds ~5-10 us of "
                               "Python call overhead to every row of the Adam and matmul tables"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
