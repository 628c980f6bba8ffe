"""What a generated C header says about the target, and the C check a caller (and lib<prefix>.so's
load-time constructor) runs so that a machine lacking a required ISA extension gets a clear message
instead of an illegal-instruction crash.

x86-64: CPUID bits (leaf, subleaf, register, bit) plus the OS's XSAVE state for AVX / AVX-512 / AMX
registers; aarch64: the kernel's HWCAP / HWCAP2 bits (getauxval). Every feature isa.CHECKED names has
an entry here (tests/backends/llvm/test_targets.py holds the two lists together).
"""
from __future__ import annotations

from .isa import Target

# LLVM feature -> (leaf, subleaf, register, bit)
CPUID: dict[str, tuple[int, int, str, int]] = {
    "sse3": (1, 0, "c", 0), "ssse3": (1, 0, "c", 9), "fma": (1, 0, "c", 12), "cx16": (1, 0, "c", 13),
    "sse4.1": (1, 0, "c", 19), "sse4.2": (1, 0, "c", 20), "crc32": (1, 0, "c", 20), "movbe": (1, 0, "c", 22),
    "popcnt": (1, 0, "c", 23), "xsave": (1, 0, "c", 26), "avx": (1, 0, "c", 28), "f16c": (1, 0, "c", 29),
    "bmi": (7, 0, "b", 3), "avx2": (7, 0, "b", 5), "bmi2": (7, 0, "b", 8), "avx512f": (7, 0, "b", 16),
    "avx512dq": (7, 0, "b", 17), "avx512ifma": (7, 0, "b", 21), "avx512cd": (7, 0, "b", 28),
    "avx512bw": (7, 0, "b", 30), "avx512vl": (7, 0, "b", 31), "avx512vbmi": (7, 0, "c", 1),
    "avx512vbmi2": (7, 0, "c", 6), "gfni": (7, 0, "c", 8), "vaes": (7, 0, "c", 9), "vpclmulqdq": (7, 0, "c", 10),
    "avx512vnni": (7, 0, "c", 11), "avx512bitalg": (7, 0, "c", 12), "avx512vpopcntdq": (7, 0, "c", 14),
    "amx-bf16": (7, 0, "d", 22), "avx512fp16": (7, 0, "d", 23), "amx-tile": (7, 0, "d", 24),
    "amx-int8": (7, 0, "d", 25), "avxvnni": (7, 1, "a", 4), "avx512bf16": (7, 1, "a", 5),
    "sahf": (0x80000001, 0, "c", 0), "lzcnt": (0x80000001, 0, "c", 5),
}
# register state the OS must save (XCR0 bits) before the instructions may run
XSTATE = {"avx": 0x6, "avx512": 0xE6, "amx": 0x60000}
# LLVM feature -> (auxv word, bit)
HWCAP: dict[str, tuple[str, int]] = {
    "fp-armv8": ("AT_HWCAP", 0), "neon": ("AT_HWCAP", 1), "crc": ("AT_HWCAP", 7), "lse": ("AT_HWCAP", 8),
    "fullfp16": ("AT_HWCAP", 10), "rdm": ("AT_HWCAP", 12), "rcpc": ("AT_HWCAP", 15), "dotprod": ("AT_HWCAP", 20),
    "sve": ("AT_HWCAP", 22), "fp16fml": ("AT_HWCAP", 23), "i8mm": ("AT_HWCAP2", 13), "bf16": ("AT_HWCAP2", 14),
}


def _xstate(feature: str) -> int:
    if feature.startswith("amx"):
        return XSTATE["amx"]
    if feature.startswith("avx512"):
        return XSTATE["avx512"]
    if feature.startswith("avx") or feature in ("fma", "f16c", "vaes", "vpclmulqdq"):
        return XSTATE["avx"]
    return 0


def _x86_check(p: str, required: tuple[str, ...]) -> list[str]:
    lines = [
        "#if defined(__x86_64__) || defined(__i386__)",
        "#include <cpuid.h>",
        f"static inline int {p}_cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit) {{",
        "    unsigned r[4] = {0, 0, 0, 0};",
        "    if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) return 0;",
        "    return (r[reg] >> bit) & 1;",
        "}",
        f"static inline unsigned long long {p}_xcr0(void) {{",
        f"    unsigned lo, hi; if (!{p}_cpuid_bit(1, 0, 2, 27)) return 0;  /* OSXSAVE */",
        '    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));',
        "    return ((unsigned long long)hi << 32) | lo;",
        "}",
        f"static inline const char *{p}_missing_cpu_feature(void) {{",
    ]
    if any(_xstate(f) for f in required):
        lines.append(f"    unsigned long long xcr0 = {p}_xcr0();")
    for f in required:
        leaf, sub, reg, bit = CPUID[f]
        cond = f"!{p}_cpuid_bit({leaf:#x}u, {sub}, {'abcd'.index(reg)}, {bit})"
        if _xstate(f):
            cond += f" || (xcr0 & {_xstate(f):#x}ull) != {_xstate(f):#x}ull"
        lines.append(f'    if ({cond}) return "{f}";')
    lines += ["    return 0;", "}", "#else", f'static inline const char *{p}_missing_cpu_feature(void) '
              '{ return "architecture x86_64"; }', "#endif"]
    return lines


def _arm_check(p: str, required: tuple[str, ...]) -> list[str]:
    lines = ["#if defined(__aarch64__)", "#include <sys/auxv.h>",
             f"static inline const char *{p}_missing_cpu_feature(void) {{",
             "    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);", "    (void)hw; (void)hw2;"]
    for f in required:
        word, bit = HWCAP[f]
        lines.append(f'    if (!(({"hw" if word == "AT_HWCAP" else "hw2"} >> {bit}) & 1)) return "{f}";')
    lines += ["    return 0;", "}", "#else", f'static inline const char *{p}_missing_cpu_feature(void) '
              '{ return "architecture aarch64"; }', "#endif"]
    return lines


def target_lines(p: str, t: Target) -> list[str]:
    """The header's target section: macros naming the target and `<p>_missing_cpu_feature()`."""
    P = p.upper()
    required = ",".join(t.required)
    check = _arm_check(p, t.required) if t.arch == "aarch64" else _x86_check(p, t.required)
    return [
        f"/* Compiled for CPU {t.cpu!r}, {t.triple}; it uses these ISA extensions, which the CPU running it must",
        f" * have: {required or '(none beyond the base architecture)'}.",
        f" * {p}_missing_cpu_feature() returns NULL on a CPU that has them all, else the first one missing",
        f" * (lib{p}.so runs it when loaded and stops the process with a message instead of crashing). */",
        f'#define {P}_TARGET_CPU "{t.cpu}"',
        f'#define {P}_TARGET_TRIPLE "{t.triple}"',
        f'#define {P}_REQUIRED_FEATURES "{required}"',
        *check,
    ]


def constructor_source(p: str, header_name: str) -> str:
    """C for lib<p>.so: check the CPU when the library is loaded, before any of its code can run."""
    return "\n".join([
        "#include <stdio.h>", "#include <stdlib.h>", f'#include "{header_name}"',
        f"__attribute__((constructor)) static void {p}_check_cpu(void) {{",
        f"    const char *missing = {p}_missing_cpu_feature();",
        "    if (!missing) return;",
        f'    fprintf(stderr, "lib{p}.so was compiled for CPU %s (%s) and needs %s, which this CPU lacks "',
        '            "(%s); rebuild it with tools.compile --target-cpu naming this CPU (or x86-64-v2 / generic)\\n",',
        f"            {p.upper()}_TARGET_CPU, {p.upper()}_TARGET_TRIPLE, {p.upper()}_REQUIRED_FEATURES, missing);",
        "    abort();",
        "}", "",
    ])
