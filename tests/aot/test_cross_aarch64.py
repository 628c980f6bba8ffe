"""Cross compilation: aarch64 objects of the tutorial Adam and a 1M-parameter Adam, linked by
aarch64-linux-gnu-gcc with a C driver and run under qemu-aarch64, are bit for bit the interpreter's
result; a CPU lacking a feature the code needs is refused with a message (header check and the
shared library's load-time constructor), not an illegal instruction."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops
from compiler.driver import CompileOptions, emit, emit_all
from session_helpers import assert_close, run_session

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import custom_optimiser  # noqa: E402

CC, QEMU = "aarch64-linux-gnu-gcc", "qemu-aarch64"
SYSROOT = "/usr/aarch64-linux-gnu"  # Debian's cross libc, libgomp (libgomp1-arm64-cross)
pytestmark = pytest.mark.skipif(shutil.which(CC) is None or shutil.which(QEMU) is None,
                                reason="cross toolchain absent: needs aarch64-linux-gnu-gcc and qemu-aarch64 "
                                       "(make system-deps installs gcc-aarch64-linux-gnu qemu-user as root)")

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "optc.h"
/* argv: dir, thread count, then per variable its byte size; reads dir/var<k>.bin, runs once, writes
 * dir/out<k>.bin. Exit 64 when this CPU lacks a feature the code needs. */
int main(int argc, char **argv) {
    const char *missing = optc_missing_cpu_feature();
    if (missing) { fprintf(stderr, "this CPU lacks %s (needs %s)\n", missing, OPTC_REQUIRED_FEATURES); return 64; }
    void *vars[OPTC_NUM_VARIABLES];
    char path[4096];
    for (int k = 0; k < OPTC_NUM_VARIABLES; k++) {
        long bytes = atol(argv[3 + k]);
        vars[k] = aligned_alloc(64, (bytes + 63) / 64 * 64);
        snprintf(path, sizeof path, "%s/var%d.bin", argv[1], k);
        FILE *f = fopen(path, "rb");
        if (!f || fread(vars[k], 1, bytes, f) != (size_t)bytes) { fprintf(stderr, "read %s\n", path); return 2; }
        fclose(f);
    }
    void *ws = aligned_alloc(64, OPTC_WORKSPACE_BYTES > 0 ? OPTC_WORKSPACE_BYTES : 64);
    optc_runtime rt = {OPTC_ABI_VERSION, atoi(argv[2]), NULL, NULL};
    int rc = optc_run(vars, NULL, NULL, ws, 1, &rt);
    for (int k = 0; k < OPTC_NUM_VARIABLES; k++) {
        snprintf(path, sizeof path, "%s/out%d.bin", argv[1], k);
        FILE *f = fopen(path, "wb");
        fwrite(vars[k], 1, atol(argv[3 + k]), f);
        fclose(f);
    }
    return rc;
}
"""


def _adam_1m() -> popxl.Ir:
    ir = popxl.Ir()
    rng = np.random.default_rng(5)
    with ir.main_graph:
        w = popxl.variable(rng.standard_normal(1 << 20).astype(np.float32), name="w")
        g = popxl.variable(rng.standard_normal(1 << 20).astype(np.float32), name="g")
        facts, graph = custom_optimiser.Adam(cache=True).create_graph(w, w.spec, lr=1e-3)
        graph.bind(facts.init()).call(w, g)
    return ir


BUILDS = {"tutorial": lambda: custom_optimiser.build_ir()[0], "adam_1M": _adam_1m}


def _qemu(exe: Path, *args: str, cpu: str | None = None) -> subprocess.CompletedProcess:
    cmd = [QEMU, "-L", SYSROOT] + (["-cpu", cpu] if cpu else []) + [str(exe), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _inputs(ir: popxl.Ir, d: Path) -> list[str]:
    for k, vid in enumerate(ir.core.variables):
        np.ascontiguousarray(ir.core.variables[vid]).tofile(d / f"var{k}.bin")
    return [str(ir.core.variables[vid].nbytes) for vid in ir.core.variables]


@pytest.mark.parametrize("which", sorted(BUILDS))
def test_aarch64_object_under_qemu_is_bit_identical_to_the_interpreter(tmp_path, which):
    build = BUILDS[which]
    ir = build()
    opts = CompileOptions(target_cpu="neoverse-n1", target_triple="aarch64-linux-gnu")
    emit_all(ir, tmp_path, opts, ("obj", "header"))
    assert b"\xb7\x00" == (tmp_path / "optc.o").read_bytes()[18:20]  # ELF e_machine 183: AArch64
    header = (tmp_path / "optc.h").read_text()
    assert '#define OPTC_TARGET_CPU "neoverse-n1"' in header and "fullfp16" in header
    (tmp_path / "main.c").write_text(DRIVER)
    exe = tmp_path / "main"
    subprocess.run([CC, "-O1", "-o", str(exe), str(tmp_path / "main.c"), str(tmp_path / "optc.o"), f"-I{tmp_path}",
                    "-lgomp", "-lm"], check=True)
    sizes = _inputs(ir, tmp_path)
    want, _ = run_session(build(), "interpreter")
    names = [ir.core.main.values[vid].name for vid in ir.core.variables]
    for threads in ("1", "3"):
        r = _qemu(exe, str(tmp_path), threads, *sizes)
        assert r.returncode == 0, r.stderr
        for k, (vid, name) in enumerate(zip(ir.core.variables, names)):
            spec = ir.core.variables[vid]
            got = np.fromfile(tmp_path / f"out{k}.bin", dtype=spec.dtype).reshape(spec.shape)
            np.testing.assert_array_equal(got, want[name], err_msg=f"{which}: {name}, {threads} threads")
    # the same binary on an ARMv8.0 core without fp16 arithmetic or dot products: refused by the header check
    r = _qemu(exe, str(tmp_path), "1", *sizes, cpu="cortex-a53")
    assert r.returncode == 64 and "this CPU lacks" in r.stderr, r.stderr


def _kernels() -> popxl.Ir:
    """The NEON table row's kernels: 8 x 12 matmul blocks (with ragged edges), 4-row blocks for a short k,
    transposed-B dot blocks, exp / tanh polynomials with FMA, float16 conversions."""
    from compiler.popxl.ops._emit import emit_op, out

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "llvm"))
    from llvmcheck import program

    rng = np.random.default_rng(7)
    arrays = {"a": rng.standard_normal((19, 70)).astype(np.float32),
              "b": rng.standard_normal((70, 53)).astype(np.float32),
              "bt": rng.standard_normal((29, 70)).astype(np.float32),
              "c": rng.standard_normal((30, 8)).astype(np.float32), "d": rng.standard_normal((8, 40)).astype(np.float32),
              "h": (rng.standard_normal(1000) * 3).astype(np.float16)}

    def body(t):
        return {"nn": t["a"] @ t["b"], "short_k": t["c"] @ t["d"],
                "nt": out(emit_op("MatMul", {"a": t["a"], "b": t["bt"]}, {"transpose_b": True})),
                "tanh": ops.tanh(t["a"]), "exp": ops.exp(t["b"]), "h": ops.cast(ops.exp(t["h"]), popxl.float16)}
    return program(arrays, body)()


def test_aarch64_kernels_under_qemu_match_the_interpreter(tmp_path):
    ir = _kernels()
    emit_all(ir, tmp_path, CompileOptions(target_cpu="apple-m1"), ("obj", "header"))
    (tmp_path / "main.c").write_text(DRIVER)
    exe = tmp_path / "main"
    subprocess.run([CC, "-O1", "-o", str(exe), str(tmp_path / "main.c"), str(tmp_path / "optc.o"), f"-I{tmp_path}",
                    "-lgomp", "-lm"], check=True)
    sizes = _inputs(ir, tmp_path)
    r = _qemu(exe, str(tmp_path), "2", *sizes)
    assert r.returncode == 0, r.stderr
    want, _ = run_session(_kernels(), "interpreter")
    for k, vid in enumerate(ir.core.variables):
        spec, name = ir.core.variables[vid], ir.core.main.values[vid].name
        got = np.fromfile(tmp_path / f"out{k}.bin", dtype=spec.dtype).reshape(spec.shape)
        assert_close(name, got, want[name])


def test_aarch64_shared_library_refuses_a_cpu_without_its_features(tmp_path):
    ir = custom_optimiser.build_ir()[0]
    opts = CompileOptions(target_cpu="neoverse-n1", target_triple="aarch64-linux-gnu")
    emit(ir, "so", tmp_path / "liboptc.so", opts)
    emit(ir, "header", tmp_path / "optc.h", opts)
    (tmp_path / "main.c").write_text(DRIVER.replace("const char *missing = optc_missing_cpu_feature();",
                                                    "const char *missing = 0;"))  # only the library checks
    exe = tmp_path / "main"
    subprocess.run([CC, "-O1", "-o", str(exe), str(tmp_path / "main.c"), f"-I{tmp_path}", f"-L{tmp_path}", "-loptc",
                    "-lgomp", "-Wl,-rpath,$ORIGIN"], check=True)
    sizes = _inputs(ir, tmp_path)
    assert _qemu(exe, str(tmp_path), "1", *sizes).returncode == 0
    r = _qemu(exe, str(tmp_path), "1", *sizes, cpu="cortex-a53")
    assert r.returncode != 0 and "liboptc.so was compiled for CPU neoverse-n1" in r.stderr, r.stderr
    assert "rebuild it with tools.compile --target-cpu" in r.stderr
