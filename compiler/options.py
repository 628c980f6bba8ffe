"""CompileOptions: every compile-time choice in one dataclass (no environment variables).

The driver, the backends and the runtime all read this one type; the command-line tools map their
flags onto it. The compiled-code cache is configured here too (`cache_dir`, `use_cache`).
"""
from __future__ import annotations

from dataclasses import dataclass

DEVICES = ("cpu", "interpreter")


@dataclass
class CompileOptions:
    device: str = "cpu"  # "cpu": native code through LLVM; "interpreter": the numpy reference
    level: int = 2  # pipeline level 0-3 (0: no passes)
    skip: tuple[str, ...] = ()  # pass names to leave out
    verify_each: bool = False  # verify the IR after every pass
    cache_dir: str | None = None  # compiled-code cache; None = the user cache dir (runtime/cache.py)
    use_cache: bool = True
    # threads of parallel regions; a run-time setting (not in the compile cache key; docs/threads.md).
    # None = every CPU this process may run on (os.sched_getaffinity)
    threads: int | None = None
    check_finite: bool = False  # opt-in: name the first tensor that goes NaN/Inf
    prefix: str = "optc"  # symbol prefix of the native entry points (ahead-of-time output)
    # the CPU native code is generated for: an LLVM CPU name of compiler/backends/llvm/isa.py's CPUS
    # (x86-64-v2, haswell, neoverse-n1, ...), or None for this machine; target_triple for another
    # architecture (aarch64-linux-gnu). Code for a CPU this machine lacks features of is refused at load.
    target_cpu: str | None = None
    target_triple: str | None = None
    # who compiles kernels while the next ones are lowered: 0 the lowering thread itself, 1 one worker
    # thread (llvmlite serialises its calls, so more threads would gain nothing), N >= 2 N compile
    # processes (pays for many large kernels on idle cores; compiler/backends/llvm/jobs.py)
    compile_workers: int = 1
    # LLVM pipeline of the native code: "auto" (O3 for small elementwise kernels, O2 for matmuls, reductions
    # and large modules, which O3 compiled ~1.7x slower for the same run time), 2 (O2) or 3 (O3);
    # docs/compile_time.md
    opt_level: int | str = "auto"
    # under mpiexec: how long a collective or start-up check waits for the other processes before it
    # raises (a rank that died without a word); seconds
    collective_timeout_s: float = 300.0
    # with replication > 1: run the optimizer update on 1/N shards, optimizer state stored sharded (ZeRO-1;
    # passes/shard_weight_update.py, docs/sharding.md)
    shard_weight_update: bool = False
