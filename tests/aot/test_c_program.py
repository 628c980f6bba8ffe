"""A C program links the emitted shared library through the header and reproduces the Python run."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import emit
from session_helpers import run_session

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import custom_optimiser  # noqa: E402

C_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "optc.h"
/* argv: dir, thread count ("null": no optc_runtime; "badabi": a wrong abi_version), then per variable its
 * byte size; reads dir/var<k>.bin, runs once, writes dir/out<k>.bin */
int main(int argc, char **argv) {
    int n = OPTC_NUM_VARIABLES;
    void *vars[OPTC_NUM_VARIABLES > 0 ? OPTC_NUM_VARIABLES : 1];
    char path[4096];
    for (int k = 0; k < n; k++) {
        long bytes = atol(argv[3 + k]);
        vars[k] = aligned_alloc(64, (bytes + 63) / 64 * 64);
        snprintf(path, sizeof path, "%s/var%d.bin", argv[1], k);
        FILE *f = fopen(path, "rb");
        if (!f || fread(vars[k], 1, bytes, f) != (size_t)bytes) { fprintf(stderr, "read %s\n", path); return 2; }
        fclose(f);
    }
    void *ws = aligned_alloc(64, OPTC_WORKSPACE_BYTES > 0 ? OPTC_WORKSPACE_BYTES : 64);
    optc_runtime rt = {OPTC_ABI_VERSION, atoi(argv[2]), NULL, NULL};
    if (!strcmp(argv[2], "badabi")) rt.abi_version = OPTC_ABI_VERSION + 1;
    int rc = optc_run(vars, NULL, NULL, ws, 1, strcmp(argv[2], "null") ? &rt : NULL);
    for (int k = 0; k < n; k++) {
        snprintf(path, sizeof path, "%s/out%d.bin", argv[1], k);
        FILE *f = fopen(path, "wb");
        fwrite(vars[k], 1, atol(argv[3 + k]), f);
        fclose(f);
    }
    return rc < 0 ? 100 - rc : rc;
}
"""


def _big_ir():
    ir = popxl.Ir()
    rng = np.random.default_rng(3)
    with ir.main_graph:
        w = popxl.variable(rng.standard_normal(1 << 20).astype(np.float32), name="w")
        g = popxl.variable(rng.standard_normal(1 << 20).astype(np.float32), name="g")
        facts, graph = custom_optimiser.Adam(cache=True).create_graph(w, w.spec, lr=1e-3)
        graph.bind(facts.init()).call(w, g)
    return ir


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("which", ["tutorial", "1M"])
def test_c_program_matches_python(tmp_path, which):
    build = (lambda: custom_optimiser.build_ir()[0]) if which == "tutorial" else _big_ir
    ir = build()
    emit(ir, "so", tmp_path / "liboptc.so")
    emit(ir, "header", tmp_path / "optc.h")
    header = (tmp_path / "optc.h").read_text()
    assert "int32_t optc_run(void **vars" in header and "const optc_runtime *rt" in header
    assert "updated in place" in header and "link with -lgomp" in header
    (tmp_path / "main.c").write_text(C_MAIN)
    exe = tmp_path / "main"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(tmp_path / "main.c"), f"-I{tmp_path}", f"-L{tmp_path}",
                    "-loptc", "-lgomp", f"-Wl,-rpath,{tmp_path}"], check=True)
    vids = list(ir.core.variables)
    for k, vid in enumerate(vids):
        np.ascontiguousarray(ir.core.variables[vid]).tofile(tmp_path / f"var{k}.bin")
    sizes = [str(ir.core.variables[vid].nbytes) for vid in vids]
    want, _ = run_session(build(), "cpu")
    names = [ir.core.main.values[vid].name for vid in vids]
    for threads in ("null", "0", "1", "3"):  # one library, any thread count at run time
        subprocess.run([str(exe), str(tmp_path), threads, *sizes], check=True)
        for k, (vid, name) in enumerate(zip(vids, names)):
            got = np.fromfile(tmp_path / f"out{k}.bin", dtype=ir.core.variables[vid].dtype).reshape(ir.core.variables[vid].shape)
            np.testing.assert_array_equal(got, want[name], err_msg=f"{name}, threads {threads}")
    # a runtime struct from another ABI version is refused (-1) before anything runs
    assert subprocess.run([str(exe), str(tmp_path), "badabi", *sizes]).returncode == 101
    if which == "tutorial":
        assert any(np.allclose(d, 0.998001, rtol=1e-6) for d in want.values() if d.shape == (2, 2))


def test_emit_kinds(tmp_path):
    ir, _ = custom_optimiser.build_ir()
    assert "define" in emit(ir, "ll", tmp_path / "p.ll").read_text()
    assert "optc_run" in emit(ir, "asm", tmp_path / "p.s").read_text()
    assert emit(ir, "obj", tmp_path / "p.o").read_bytes()[:4] == b"\x7fELF"
    with pytest.raises(ValueError, match="unknown output kind"):
        emit(ir, "exe", tmp_path / "p")
