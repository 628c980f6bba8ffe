"""Code generated for other CPUs than this one (CompileOptions.target_cpu, isa.py's table): compiled for
x86-64-v2 (SSE4.2, no FMA, no F16C), haswell (AVX2) and the host, results equal the interpreter; code
for a CPU with features this machine lacks is refused with a clear error, in Python and in C.

The full op suites and the MNIST step run for each target in the slow tests below (pytest
--target-cpu, tests/conftest.py); the fast tests here cover each kernel family the table changes."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.backends.llvm import cpu_header, isa, target
from compiler.backends.llvm.backend import cache_key
from compiler.driver import CompileOptions, emit, optimise
from compiler.popxl import ops
from compiler.popxl.ops._emit import emit_op, out
from session_helpers import assert_matches_reference, run_session
from runtime.cpu_check import UnsupportedCpu, host, missing

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests" / "mnist"))
from llvmcheck import program  # noqa: E402

TARGETS = [None, "haswell", "x86-64-v2"]  # None: this machine
IDS = ["host", "haswell", "x86-64-v2"]
on_x86 = pytest.mark.skipif(host()[0] != "x86_64", reason="x86-64 targets run natively on an x86-64 host only")


def _opts(cpu: str | None, **kw) -> CompileOptions:
    return CompileOptions(target_cpu=cpu, use_cache=False, **kw)


# ------------------------------------------------------------------ the table
def test_the_table_fits_each_register_file():
    for p in isa.ISAS.values():
        assert p.mm_rows * p.mm_vecs + p.mm_vecs + 1 <= p.registers, p.name  # accumulators, B vectors, A
        assert p.nt_rows * p.nt_cols + p.nt_rows + p.nt_cols <= p.registers, p.name


def test_cpu_names_choose_their_table_rows():
    rows = {cpu: target.resolve(cpu).isa for cpu in ("x86-64-v2", "haswell", "znver3", "skylake-avx512")}
    assert [rows[c].name for c in rows] == ["sse4", "avx2", "avx2", "avx512"]
    assert not rows["x86-64-v2"].fma and not rows["x86-64-v2"].f16c and rows["haswell"].fma
    assert (rows["haswell"].mm_rows, rows["haswell"].mm_cols) == (6, 16)
    # batch 8 (6 + 2 ragged rows) and k = 8 (weight gradients at batch 8) take 4-row blocks; batch 128 six
    assert [rows["haswell"].mm_rows_for(m, k) for m, k in ((8, 784), (784, 8), (128, 784))] == [4, 4, 6]
    arm = target.resolve("neoverse-n1", "aarch64-linux-gnu")
    assert arm.isa.name == "neon" and (arm.isa.mm_rows, arm.isa.mm_cols) == (8, 12)
    assert target.resolve("apple-m1").triple.startswith("aarch64")  # an ARM name picks the ARM triple
    with pytest.raises(ValueError, match="unknown target CPU 'pentium9'.*known: x86-64,"):
        target.resolve("pentium9")
    with pytest.raises(ValueError, match="architecture 'riscv64' is not supported"):
        target.resolve("generic", "riscv64-linux-gnu")


def test_every_checked_feature_has_a_c_check():
    x86 = {f for f in isa.CPUS["x86_64"].values() for f in f}
    arm = {f for f in isa.CPUS["aarch64"].values() for f in f}
    assert x86 <= set(cpu_header.CPUID) and arm <= set(cpu_header.HWCAP)


def test_the_target_is_part_of_the_compile_cache_key():
    ir = optimise(program({"x": np.ones(4, np.float32)}, lambda t: {"y": t["x"] * 2.0})(), CompileOptions())
    keys = {cache_key(ir, "optc", target.resolve(c)) for c in ("x86-64-v2", "haswell", "skylake-avx512")}
    assert len(keys | {cache_key(ir, "optc")}) == 4


# ------------------------------------------------------------------ refusing code this CPU cannot run
def _tiny() -> popxl.Ir:
    return program({"x": np.arange(8, dtype=np.float32)}, lambda t: {"y": t["x"] * 3.0})()


def test_code_for_a_missing_feature_is_refused_before_it_runs(monkeypatch):
    from compiler.backends.llvm import backend

    real = backend.mark_target

    def with_made_up_requirement(layout, tgt):
        real(layout, tgt)
        layout.requires = layout.requires + ("avx1024",)  # no machine has it
    monkeypatch.setattr(backend, "mark_target", with_made_up_requirement)
    with pytest.raises(UnsupportedCpu, match=r"compiled for CPU .* needs avx1024, which this machine .* lacks"):
        run_session(_tiny(), "cpu", options=_opts(None))


@on_x86
def test_code_for_a_richer_cpu_is_refused_or_runs():
    """sapphirerapids needs AMX and AVX512-FP16: refused on a machine without them, run where they are."""
    layout = type("L", (), {"triple": "x86_64-unknown-linux-gnu",
                            "requires": target.resolve("sapphirerapids").required})()
    lacking = missing(layout)
    if lacking:
        with pytest.raises(UnsupportedCpu, match=lacking[0]):
            run_session(_tiny(), "cpu", options=_opts("sapphirerapids"))
    else:
        assert_matches_reference(_tiny, options=_opts("sapphirerapids"))


def test_code_for_another_architecture_is_refused():
    other = "neoverse-n1" if host()[0] == "x86_64" else "haswell"
    with pytest.raises(UnsupportedCpu, match="needs architecture"):
        run_session(_tiny(), "cpu", options=_opts(other))


@on_x86
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("cpu", ["x86-64-v2", "sapphirerapids"])
def test_shared_library_checks_the_cpu_when_loaded(tmp_path, cpu):
    ir = _tiny()
    emit(ir, "so", tmp_path / "liboptc.so", _opts(cpu))
    emit(ir, "header", tmp_path / "optc.h", _opts(cpu))
    (tmp_path / "main.c").write_text('#include <stdio.h>\n#include "optc.h"\nint main(int argc, char **argv) {\n'
                                     '  const char *m = optc_missing_cpu_feature();\n'
                                     '  if (argc > 9) optc_run(0, 0, 0, 0, 0, 0);  /* links the library */\n'
                                     '  printf("%s\\n", m ? m : "ok"); return 0;\n}\n')
    exe = tmp_path / "main"
    subprocess.run(["gcc", "-o", str(exe), str(tmp_path / "main.c"), f"-I{tmp_path}", f"-L{tmp_path}", "-loptc",
                    "-lgomp", "-Wl,-rpath,$ORIGIN"], check=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    layout = type("L", (), {"triple": "x86_64-unknown-linux-gnu", "requires": target.resolve(cpu).required})()
    lacking = missing(layout)
    if not lacking:
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    else:  # the library's constructor stops the process before main, naming the target
        assert r.returncode == -signal.SIGABRT, (r.returncode, r.stderr)
        assert f"liboptc.so was compiled for CPU {cpu}" in r.stderr and lacking[0] in r.stderr


# ------------------------------------------------------------------ every kernel family per target
def _normal(shape, dt=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


MM = [((4, 64), (64, 64), False), ((13, 37), (37, 50), False), ((130, 70), (70, 150), False), ((30, 8), (8, 40), False),
      ((9, 40), (33, 40), True), ((37, 67), (70, 67), True)]


@on_x86
@pytest.mark.parametrize("cpu", TARGETS, ids=IDS)
@pytest.mark.parametrize("sa,sb,tb", MM, ids=[f"{a}x{b}{'T' if t else ''}" for a, b, t in MM])
def test_matmul_blocking_per_target(cpu, sa, sb, tb):
    a, b = _normal(sa, seed=1), _normal(sb, seed=2)
    body = lambda t: {"y": out(emit_op("MatMul", {"a": t["a"], "b": t["b"]}, {"transpose_b": tb}))}  # noqa: E731
    build = program({"a": a, "b": b}, body)
    ref, _ = run_session(build(), "interpreter", options=CompileOptions(level=0))
    for threads in (1, 3):  # bit-identical for every thread count (tiles fall on the ISA's grid)
        got, _ = run_session(build(), "cpu", options=_opts(cpu, threads=threads))
        if threads == 1:
            first = got["out_y"]
        np.testing.assert_array_equal(got["out_y"], first)
    bound = 4 * sa[-1] * 2**-23 * (np.abs(a).astype(np.float64) @ np.abs(b.T if tb else b).astype(np.float64))
    assert (np.abs(first.astype(np.float64) - ref["out_y"]) <= bound + 1e-30).all()


def _cast_program(x: np.ndarray, to):
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream(x.shape, _pdt(x.dtype), "x")
        d = popxl.d2h_stream(x.shape, to, "y")
        ops.host_store(d, ops.cast(ops.host_load(h), to))
    return ir, h, d


def _pdt(dt):
    return {np.dtype(np.float16): popxl.float16, np.dtype(np.float32): popxl.float32}[np.dtype(dt)]


def _run_cast(x: np.ndarray, to, cpu) -> np.ndarray:
    ir, h, d = _cast_program(x, to)
    s = popxl.Session(ir, "cpu", options=_opts(cpu))
    with s:
        return s.run({h: x})[d]


@on_x86
@pytest.mark.parametrize("cpu", TARGETS, ids=IDS)
def test_float16_conversions_are_exact(cpu):
    """Every float16 value to float32, and float32 values around every float16 rounding boundary, ties,
    subnormals, overflow, inf and NaN back to float16: as numpy, bit for bit."""
    every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    got = _run_cast(every, popxl.float32, cpu)
    want = every.astype(np.float32)
    assert np.array_equal(got.view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
    assert np.isnan(got[np.isnan(want)]).all()
    with np.errstate(invalid="ignore"):  # the inf / NaN neighbours
        mids = (every[:-1].astype(np.float64) + every[1:].astype(np.float64)) / 2  # the ties
    x = np.concatenate([want, mids.astype(np.float32), np.nextafter(mids.astype(np.float32), np.float32(np.inf)),
                        np.nextafter(mids.astype(np.float32), np.float32(-np.inf)),
                        np.float32([65504, 65519.99, 65520, 1e6, -1e6, 2.0**-25, 2.0**-25 * 1.0001, 2.0**-26, 1e-30]),
                        _normal(100_000) * 1e3])
    with np.errstate(all="ignore"):
        want16 = x.astype(np.float16)
    got16 = _run_cast(x, popxl.float16, cpu)
    nan = np.isnan(want16)
    assert np.isnan(got16[nan]).all()
    bad = got16.view(np.uint16)[~nan] != want16.view(np.uint16)[~nan]
    assert not bad.any(), f"{bad.sum()} wrong, e.g. {x[~nan][bad][:4]} -> {got16[~nan][bad][:4]}"


@on_x86
@pytest.mark.parametrize("cpu", TARGETS, ids=IDS)
def test_mnist_step_per_target(cpu):
    """The tutorial MNIST step (float16 Adam state, exp in softmax, matmuls both ways) against the
    interpreter, float32 state for the dtype tolerances of the other tests."""
    import mnist_adam

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, (2, 8)).astype(np.int32)

    def build():
        np.random.seed(5)
        ir = mnist_adam.train_ir(8, first_order_dtype=popxl.float32)[0]
        ir.num_host_transfers = 2
        return ir
    assert_matches_reference(build, lambda ir: {ir.stream_handles["image"]: x, ir.stream_handles["labels"]: y},
                             runs=2, options=_opts(cpu))


# ------------------------------------------------------------------ whole suites per target (CI's slow run)
SUITES = ["tests/backends/llvm/test_ops.py", "tests/backends/llvm/test_primitives.py",
          "tests/backends/llvm/test_transcendental_ulp.py", "tests/mnist/test_training.py"]


@on_x86
@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["haswell", "x86-64-v2"])
def test_op_suites_and_mnist_per_target(cpu):
    r = subprocess.run([sys.executable, "-m", "pytest", *SUITES, "-q", "-n", "0", "-p", "no:cacheprovider",
                        "--target-cpu", cpu], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


# ------------------------------------------------------------------ the command line
def test_compile_tool_targets_another_cpu(tmp_path, capsys):
    from tools.compile import main as optc

    out = tmp_path / "arm"
    assert optc(["examples/custom_optimiser.py", "--emit", "obj,header", "-o", str(out), "--target-cpu", "neoverse-n1",
                 "--triple", "aarch64-linux-gnu"]) == 0
    assert (out / "optc.o").read_bytes()[18:20] == b"\xb7\x00"  # ELF machine: AArch64
    header = (out / "optc.h").read_text()
    assert '#define OPTC_TARGET_TRIPLE "aarch64-linux-gnu"' in header and "dotprod" in header
    assert optc(["examples/custom_optimiser.py", "--emit", "obj", "-o", str(tmp_path / "x.o"),
                 "--target-cpu", "haswell"]) == 0
    assert (tmp_path / "x.o").read_bytes()[18:20] == b"\x3e\x00"  # x86-64
    assert optc(["examples/custom_optimiser.py", "--emit", "obj", "-o", str(tmp_path / "y.o"),
                 "--target-cpu", "pentium9"]) == 2
    assert "unknown target CPU 'pentium9' for x86_64; known: x86-64, x86-64-v2" in capsys.readouterr().err
