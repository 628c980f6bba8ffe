"""Bad input through the public API gives a Python exception with a clear message, never a dead process."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops
from runtime.interpreter_exec import NonFiniteError

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = f"""
import sys, numpy as np
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'examples')!r})
from compiler import popxl
from compiler.popxl import ops
def prog():
    ir = popxl.Ir()
    with ir.main_graph:
        h = popxl.h2d_stream((4,), popxl.float32, name="x")
        v = popxl.variable(np.zeros(4, np.float32), name="v")
        ops.var_updates.accumulate_(v, ops.host_load(h, "x"))
    return ir, h, v
ir, h, v = prog()
s = popxl.Session(ir, "cpu")
exe = s._exe
"""

CASES = {
    "wrong shape": ("with s: s.run({h: np.zeros(5, np.float32)})", "ValueError", "needs an array of shape"),
    "wrong dtype": ("with s: s.run({h: np.zeros(4, np.int32)})", "TypeError", "needs dtype float32"),
    "missing input": ("with s: s.run({})", "ValueError", "no data given"),
    "extra input": ("h2 = None\nwith s: s.run({h: np.zeros(4, np.float32), 'y': np.zeros(4)})", "TypeError",
                    "keys must be host-to-device streams"),
    "not attached": ("s.run({h: np.zeros(4, np.float32)})", "ValueError", "Must be attached"),
    "executable: wrong variable buffer": ("exe.run({ir.variables.__iter__().__next__(): np.zeros(3, np.float32)}, "
                                          "{'x': np.zeros((1, 4), np.float32)}, 1)", "ValueError", "expected float32"),
    "executable: read-only variable": ("a = np.zeros(4, np.float32); a.setflags(write=False)\n"
                                       "exe.run({list(ir.variables)[0]: a}, {'x': np.zeros((1, 4), np.float32)}, 1)",
                                       "ValueError", "read-only"),
    "executable: strided variable": ("a = np.zeros(8, np.float32)[::2]\n"
                                     "exe.run({list(ir.variables)[0]: a}, {'x': np.zeros((1, 4), np.float32)}, 1)",
                                     "ValueError", "C-contiguous"),
    "executable: missing stream": ("exe.run({list(ir.variables)[0]: np.zeros(4, np.float32)}, {}, 1)", "ValueError",
                                   "no data given for host stream"),
    "executable: zero iterations": ("exe.run({}, {}, 0)", "ValueError", "iterations must be >= 1"),
    "malformed saved IR": ("open('/tmp/_bad_ir.json','w').write('{\"format\": 1')\n"
                           "from compiler.ir import Ir; Ir.load('/tmp/_bad_ir.json')", "IRFormatError", "malformed JSON"),
    "ipu device": ("popxl.Session(prog()[0], 'ipu_hw')", "ValueError", "not available here"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_in_python(case):
    code, exc, msg = CASES[case]
    script = PRELUDE + f"""
try:
{chr(10).join('    ' + line for line in code.splitlines())}
except Exception as e:
    print("RAISED", type(e).__name__, str(e).replace(chr(10), " "))
else:
    print("NO ERROR")
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"process died ({r.returncode}): {r.stderr[-2000:]}"
    line = [x for x in r.stdout.splitlines() if x.startswith(("RAISED", "NO ERROR"))][-1]
    assert line.startswith(f"RAISED {exc}") and msg in line, line


@pytest.mark.parametrize("device", ["interpreter", "cpu"])
def test_nan_propagates_and_opt_in_check_names_the_tensor(device):
    def prog():
        ir = popxl.Ir()
        with ir.main_graph:
            h = popxl.h2d_stream((3,), popxl.float32, name="x")
            v = popxl.variable(np.ones(3, np.float32), name="v")
            y = ops.log(ops.host_load(h, "x"))  # log of a negative number: NaN, as numpy
            ops.var_updates.accumulate_(v, y)
        return ir, h, v

    ir, h, v = prog()
    s = popxl.Session(ir, device)
    with s:
        s.run({h: np.array([1.0, -1.0, np.e], np.float32)})
    got = s.get_tensor_data(v)
    assert np.isnan(got[1]) and got[0] == 1.0 and abs(got[2] - 2.0) < 1e-6
    ir, h, v = prog()
    s = popxl.Session(ir, device, options=CompileOptions(check_finite=True))
    with s, pytest.raises(NonFiniteError, match=r"produced by Log\.\d+"):
        s.run({h: np.array([1.0, -1.0, np.e], np.float32)})


def test_sessions_in_threads():
    sys.path.insert(0, str(ROOT / "examples"))
    import custom_optimiser

    results, errors = [], []

    def work():
        try:
            ir, hd = custom_optimiser.build_ir()
            s = popxl.Session(ir, "cpu")
            with s:
                for _ in range(20):
                    s.run()
            results.append(s.get_tensor_data(hd["var"]).copy())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
