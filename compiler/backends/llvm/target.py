"""LLVM set-up: the host target machine (CPU name and features) and the O3 new-pass-manager pipeline."""
from __future__ import annotations

import functools

import llvmlite.binding as llvm

from runtime.loader import prepare_llvm


def init() -> None:
    """Initialise LLVM's native target once (and make libm's symbols visible to the JIT)."""
    prepare_llvm()


@functools.cache
def host_cpu() -> tuple[str, str, str]:
    """(triple, cpu name, feature string) of this machine."""
    init()
    return llvm.get_process_triple(), llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def target_machine(reloc: str = "pic", portable: bool = False) -> llvm.TargetMachine:
    """The host machine (or a generic x86-64 one when `portable`, for shipped binaries)."""
    triple, cpu, features = host_cpu()
    target = llvm.Target.from_triple(triple)
    if portable:
        cpu, features = "x86-64-v2" if "x86_64" in triple else "generic", ""
    return target.create_target_machine(cpu=cpu, features=features, opt=3, reloc=reloc, codemodel="default")


def optimise(mod: llvm.ModuleRef, tm: llvm.TargetMachine) -> None:
    """Run the O3 pipeline with loop and SLP vectorisation on."""
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()
    mpm.run(mod, pb)
