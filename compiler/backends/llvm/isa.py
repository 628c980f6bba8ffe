"""The one table of per-ISA code-generation parameters, and the CPUs we know how to target.

Every kernel choice that depends on the instruction set reads an `Isa` (never a constant of its own):
the float32 lanes of a vector register, how many registers there are, whether multiply-add is fused
in hardware, whether float16 <-> float32 conversions are instructions, and the register blocking of
the matmul micro-kernels, sized so that the accumulators, the loaded B vectors and the broadcast A
value fit the register file without spilling:

  ISA     bits regs  matmul (rows x vectors)          transposed-B dot blocks    elementwise loops
  avx512  512  32    4 x 4 (16 acc + 4 B + 1 A = 21)   4 x 4 (16 acc + 8 loads)   256-bit
  avx2    256  16    6 x 2 (12 acc + 2 B + 1 A = 15)   2 x 4 (8 acc + 6 loads)    256-bit
  sse4    128  16    6 x 2 (12 + 2 + 1)                2 x 4                      128-bit
  neon    128  32    8 x 3 (24 acc + 3 B + 1 A = 28)   4 x 4                      128-bit

Short or ragged products use mm_rows_short rows instead (mm_rows_for). Elementwise loops are
vectorised by LLVM at the width its tuning of the CPU prefers (256 bits on most AVX-512 Intel parts,
512 on Zen 4/5); `ew_bits` is the width expected on the row's typical CPU, for documentation only:
forcing it (`+prefer-256-bit`) cost this Zen 5 host 1.55x on the float16-moment Adam step.

A `Target` is a triple, an LLVM CPU name and the features the code may use; `required` lists the
ISA extensions (of CHECKED) a machine running it must have, recorded in the C header and in the
compile cache's manifest and checked before code is linked into a process (runtime/cpu_check.py).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

from llvmlite import ir


@dataclass(frozen=True)
class Isa:
    name: str
    vector_bits: int  # width of one SIMD register
    registers: int  # SIMD registers in the file
    fma: bool  # fused multiply-add instructions: polynomials use llvm.fma (one rounding per step)
    f16c: bool  # float16 <-> float32 conversion instructions (else an exact integer sequence)
    bf16: bool  # bfloat16 conversion instructions (recorded only: types.py says why they are not used)
    mm_rows: int  # rows of C a float32 micro-kernel holds in registers
    mm_vecs: int  # vectors of C per row
    nt_rows: int  # A rows of one block of dot products (B transposed)
    nt_cols: int  # B rows of one block
    ew_bits: int  # widest vectors the loop vectoriser prefers for elementwise loops
    mm_rows_short: int = 4  # rows of the micro-kernel for short matrices that mm_rows would leave ragged

    # below this depth mm_rows_short is used too: MNIST batch 8 on haswell, whose weight gradients have
    # k = 8, ran 1.17x faster with it (1255 vs 1072 steps/s, alternating rounds), batch 128 unchanged
    mm_short_k: int = 16

    def mm_rows_for(self, m: int, k: int) -> int:
        """Micro-kernel rows for an m x k by k x n product: mm_rows, unless that leaves more than a tenth of
        the rows to the scalar edge loop and mm_rows_short leaves fewer (batch 8 on AVX2: 6 + 2 ragged ->
        2 x 4), or k is so short that the accumulators' set-up and stores dominate."""
        rest, short_rest = m % self.mm_rows, m % self.mm_rows_short
        if k < self.mm_short_k:
            return self.mm_rows_short
        return self.mm_rows_short if rest * 10 > m and short_rest < rest else self.mm_rows

    @property
    def lanes(self) -> int:
        """float32 values in one vector register."""
        return self.vector_bits // 32

    @property
    def mm_cols(self) -> int:
        return self.lanes * self.mm_vecs


ISAS = {
    "avx512": Isa("avx512", 512, 32, fma=True, f16c=True, bf16=False, mm_rows=4, mm_vecs=4, nt_rows=4, nt_cols=4,
                     ew_bits=256),
    "avx2": Isa("avx2", 256, 16, fma=True, f16c=True, bf16=False, mm_rows=6, mm_vecs=2, nt_rows=2, nt_cols=4,
                 ew_bits=256),
    "sse4": Isa("sse4", 128, 16, fma=False, f16c=False, bf16=False, mm_rows=6, mm_vecs=2, nt_rows=2, nt_cols=4,
                 ew_bits=128),
    "neon": Isa("neon", 128, 32, fma=True, f16c=True, bf16=False, mm_rows=8, mm_vecs=3, nt_rows=4, nt_cols=4,
                 ew_bits=128),
}

# x86-64 micro-architecture levels (the psABI's), then named CPUs: the extensions code generation may
# use. Only these are checked at load time; a CPU name's other features (aes, rdrand, ...) are never
# emitted by our kernels.
_V2 = ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf", "crc32")
_V3 = _V2 + ("avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")
_V4 = _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
_ICX = _V4 + ("avx512vnni", "avx512vbmi", "avx512vbmi2", "avx512bitalg", "avx512vpopcntdq", "avx512ifma",
              "gfni", "vaes", "vpclmulqdq")
_ARM = ("neon", "fp-armv8")
_ARM82 = _ARM + ("crc", "lse", "rdm", "fullfp16")
CPUS: dict[str, dict[str, tuple[str, ...]]] = {
    "x86_64": {
        "x86-64": (), "x86-64-v2": _V2, "x86-64-v3": _V3, "x86-64-v4": _V4,
        "haswell": _V3, "broadwell": _V3, "skylake": _V3, "skylake-avx512": _V4, "icelake-server": _ICX,
        "sapphirerapids": _ICX + ("avx512bf16", "avx512fp16", "avxvnni", "amx-tile", "amx-int8", "amx-bf16"),
        "znver2": _V3, "znver3": _V3, "znver4": _ICX + ("avx512bf16",),
    },
    "aarch64": {
        "generic": _ARM, "cortex-a72": _ARM + ("crc",), "neoverse-n1": _ARM82 + ("dotprod", "rcpc"),
        "neoverse-v1": _ARM82 + ("dotprod", "rcpc", "bf16", "i8mm", "sve"),
        "apple-m1": _ARM82 + ("dotprod", "rcpc", "fp16fml"),
    },
}
CHECKED = frozenset(f for arch in CPUS.values() for feats in arch.values() for f in feats)
DEFAULT_TRIPLE = {"x86_64": "x86_64-unknown-linux-gnu", "aarch64": "aarch64-unknown-linux-gnu"}


def arch_of(triple: str) -> str:
    arch = triple.split("-", 1)[0]
    return "aarch64" if arch in ("aarch64", "arm64") else arch


def isa_for(arch: str, features: frozenset[str]) -> Isa:
    """The table row for a machine with these features."""
    if arch == "aarch64":
        return replace(ISAS["neon"], bf16="bf16" in features)
    if arch != "x86_64":
        raise ValueError(f"no kernel parameters for architecture {arch!r}; supported: x86_64, aarch64")
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= features:
        base = ISAS["avx512"]
    elif {"avx2", "fma"} <= features:
        base = ISAS["avx2"]
    else:
        base = ISAS["sse4"]
    return replace(base, fma="fma" in features, f16c="f16c" in features, bf16="avx512bf16" in features)


@dataclass(frozen=True)
class Target:
    triple: str
    cpu: str  # LLVM CPU name
    features: str  # LLVM feature string passed with it ("" = the CPU's own)
    required: tuple[str, ...]  # sorted extensions of CHECKED the code may use

    @property
    def arch(self) -> str:
        return arch_of(self.triple)

    @property
    def isa(self) -> Isa:
        return isa_for(self.arch, frozenset(self.required))

    def describe(self) -> str:
        return f"{self.cpu} ({self.triple})"

    def llvm_features(self) -> str:
        """The feature string for LLVM: the CPU's (or host's) own. The loop vectoriser's preferred width is
        left to LLVM's tuning of that CPU: forcing `+prefer-256-bit` on every AVX-512 machine made the
        tutorial Adam with a float16 first moment 1.55x slower on this Zen 5 host (whose tuning prefers
        512-bit vectors), measured against the build before the flag."""
        return self.features


def named_target(cpu: str, triple: str | None, host_triple: str) -> Target:
    """The Target for LLVM CPU name `cpu` (one of CPUS) on `triple` (default: the host's when the CPU is
    of the host's architecture, else that architecture's Linux triple)."""
    if triple is None:
        arch = arch_of(host_triple) if cpu in CPUS.get(arch_of(host_triple), {}) else next(
            (a for a, names in CPUS.items() if cpu in names), arch_of(host_triple))
        triple = host_triple if arch == arch_of(host_triple) else DEFAULT_TRIPLE[arch]
    arch = arch_of(triple)
    if arch not in CPUS:
        raise ValueError(f"target triple {triple!r}: architecture {arch!r} is not supported; use an x86_64 or "
                         "aarch64 triple (e.g. x86_64-linux-gnu, aarch64-linux-gnu)")
    if cpu not in CPUS[arch]:
        raise ValueError(f"unknown target CPU {cpu!r} for {arch}; known: {', '.join(CPUS[arch])} (or 'host')")
    return Target(triple, cpu, "", tuple(sorted(CPUS[arch][cpu])))


# The ISA each ir.Module is being lowered for: kernels reach it through their builder's module.
_BOUND: weakref.WeakKeyDictionary[ir.Module, Isa] = weakref.WeakKeyDictionary()


def bind(module: ir.Module, isa: Isa) -> None:
    _BOUND[module] = isa


def of(module: ir.Module) -> Isa:
    """The ISA `module` is lowered for (lower.py binds it before any kernel is emitted)."""
    try:
        return _BOUND[module]
    except KeyError:
        raise RuntimeError(f"LLVM module {module.name!r} has no target ISA bound (isa.bind); lowering must "
                           "start from lower.ModuleLowering") from None
