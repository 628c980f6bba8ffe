"""The compile cache: hits, corrupt entries rebuilt, two processes compiling the same graph at once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import custom_optimiser  # noqa: E402


def _session(cache_dir):
    ir, h = custom_optimiser.build_ir()
    s = popxl.Session(ir, "cpu", options=CompileOptions(cache_dir=str(cache_dir)))
    with s:
        s.run()
    return s, s.get_tensor_data(h["var"])


def test_hit_and_corrupt_entry(tmp_path):
    s1, v1 = _session(tmp_path)
    assert not s1._exe.cache_hit
    s2, v2 = _session(tmp_path)
    assert s2._exe.cache_hit
    np.testing.assert_array_equal(v1, v2)
    for obj in tmp_path.glob("*.o"):
        obj.write_bytes(obj.read_bytes()[:100])  # truncated: the hash check must notice
    s3, v3 = _session(tmp_path)
    assert not s3._exe.cache_hit
    np.testing.assert_array_equal(v1, v3)
    assert _session(tmp_path)[0]._exe.cache_hit  # rebuilt entry is good again


def test_no_cache_option(tmp_path):
    ir, _ = custom_optimiser.build_ir()
    popxl.Session(ir, "cpu", options=CompileOptions(cache_dir=str(tmp_path), use_cache=False))
    assert not list(tmp_path.iterdir())


def test_two_processes_compile_at_once(tmp_path):
    code = (
        "import sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
        "import custom_optimiser as co\n"
        "from compiler import popxl\nfrom compiler.driver import CompileOptions\n"
        "ir, h = co.build_ir()\n"
        "s = popxl.Session(ir, 'cpu', options=CompileOptions(cache_dir=%r))\n"
        "s.__enter__(); s.run(); print(float(s.get_tensor_data(h['var'])[0, 0]))\n"
    ) % (str(ROOT), str(ROOT / "examples"), str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert abs(float(out.strip()) - 0.998001) < 1e-6
    assert not list(tmp_path.glob("*.tmp"))
