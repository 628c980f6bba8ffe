"""LLVM set-up: the target machine for a CompileOptions target (the host by default, or a named CPU and
triple from isa.CPUS for code shipped elsewhere) and the new-pass-manager pipeline (per kernel size by
default: CompileOptions.opt_level, `level_for`, docs/compile_time.md)."""
from __future__ import annotations

import functools

import llvmlite.binding as llvm

from runtime.loader import prepare_llvm

from .isa import CHECKED, Target, arch_of, named_target


def init() -> None:
    """Initialise LLVM's native target once (and make libm's symbols visible to the JIT)."""
    prepare_llvm()


@functools.cache
def _all_targets() -> None:
    llvm.initialize_all_targets()  # cross compilation (aarch64 from x86_64, ...)
    llvm.initialize_all_asmprinters()


@functools.cache
def host_cpu() -> tuple[str, str, str]:
    """(triple, cpu name, feature string) of this machine."""
    init()
    return llvm.get_process_triple(), llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


@functools.cache
def host_target() -> Target:
    """This machine: its own CPU name and every feature it has; it requires those of CHECKED it has."""
    triple, cpu, features = host_cpu()
    have = {name for name, on in llvm.get_host_cpu_features().items() if on}
    return Target(triple, cpu, features, tuple(sorted(have & CHECKED)))


def resolve(cpu: str | None = None, triple: str | None = None) -> Target:
    """The Target of CompileOptions(target_cpu=cpu, target_triple=triple): None or "host" is this machine."""
    host = host_target()
    if cpu in (None, "host"):
        if triple is not None and arch_of(triple) != host.arch:
            raise ValueError(f"target triple {triple!r} with the host CPU: name a CPU of {arch_of(triple)} "
                             "(target_cpu / --target-cpu), e.g. generic")
        return host
    return named_target(cpu, triple, host.triple)


def target_machine(t: Target | None = None, reloc: str = "pic") -> llvm.TargetMachine:
    """A target machine generating code for `t` (default: the host)."""
    t = t or host_target()
    init()
    if t.arch != host_target().arch:
        _all_targets()
    target = llvm.Target.from_triple(t.triple)
    return target.create_target_machine(cpu=t.cpu, features=t.llvm_features(), opt=3, reloc=reloc,
                                        codemodel="default")


OPT_LEVELS = ("auto", 2, 3)
# Under "auto", kernels under this many lines of LLVM text whose arithmetic allows no reassociation or
# contraction (the elementwise optimizer updates) get O3: they compile about as fast at O3 as at O2, and
# the tutorial Adam's update ran ~1.5% faster at O3. Everything else gets O2: the matmul kernels (O3 cost
# them ~1.7x O2's compile time for the same run time) and every kernel with reassociable sums (`reassoc`:
# matmuls, reductions, softmax), whatever its size, because O2 and O3 may order those sums differently
# and a small unfused matmul must give the bits of the same product inside a large fused epilogue
# kernel. Measured in benchmarks/compile_time.py (kernels, pipeline tables); docs/compile_time.md.
SMALL_KERNEL_LINES = 200


def level_for(text: str, opt_level: int | str = "auto") -> int:
    """The LLVM level (2 or 3) of a module whose LLVM text is `text`, for CompileOptions.opt_level."""
    if opt_level == "auto":
        exact = " reassoc " not in text and " contract " not in text  # IEEE results under any pipeline
        return 3 if text.count("\n") < SMALL_KERNEL_LINES and exact else 2
    if opt_level in (2, 3):
        return int(opt_level)
    raise ValueError(f"CompileOptions.opt_level={opt_level!r}: the LLVM pipeline is 'auto' (O3 for small kernels "
                     "without reassociable sums, O2 for the rest), 2 (O2) or 3 (O3)")


def optimise(mod: llvm.ModuleRef, tm: llvm.TargetMachine, speed_level: int = 3, unroll: bool = True) -> None:
    """Run the O`speed_level` pipeline with loop and SLP vectorisation on (loop unrolling off only for
    benchmarks/compile_time.py's measurement of it: it decides the order of reassociable sums)."""
    pto = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = unroll
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()
    mpm.run(mod, pb)
