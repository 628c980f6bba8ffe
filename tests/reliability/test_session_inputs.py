"""Session.run and the compiled executable's boundary: missing, extra, wrongly shaped, wrongly typed
inputs raise a clear Python exception; non-contiguous, read-only, misaligned, Fortran-ordered or
foreign-byte-order arrays either work exactly like ordinary ones or are refused. Never a dead process."""
from __future__ import annotations

import pytest

from .conftest import run_cases

PRELUDE = """
import numpy as np
from compiler import popxl
from compiler.popxl import ops
from compiler.driver import CompileOptions

def prog(nht=1):
    ir = popxl.Ir()
    ir.num_host_transfers = nht
    with ir.main_graph:
        h = popxl.h2d_stream((2, 3), popxl.float32, name="x")
        v = popxl.variable(np.zeros((2, 3), np.float32), name="v")
        ops.var_updates.accumulate_(v, ops.host_load(h, "x"))
        o = popxl.d2h_stream((2, 3), popxl.float32, name="o")
        ops.host_store(o, v * 2.0)
    return ir, h, v, o

ir, h, v, o = prog()
other_ir, other_h, _, _ = prog()
s = popxl.Session(ir, "cpu")
exe = s._exe
vid = list(ir.core.variables)[0]
X = np.arange(6, dtype=np.float32).reshape(2, 3)

def once(x, device="cpu"):
    ir, h, v, o = prog()
    sess = popxl.Session(ir, device)
    with sess:
        out = sess.run({h: x})[o]
    return out, sess.get_tensor_data(v)

WANT = once(X, "interpreter")

def same(x):
    got = once(x)
    assert all(np.array_equal(g, w) for g, w in zip(got, WANT)), (got, WANT)

def buffers():
    return {vid: np.zeros((2, 3), np.float32)}, {"x": X[None].copy()}
"""

BAD = {
    "wrong shape": ("with s: s.run({h: np.zeros((3, 2), np.float32)})", "ValueError", ["'x'", "(2, 3)", "(3, 2)"]),
    # (64-bit floats and Python lists of floats are accepted and downcast, as PopXL)
    "wrong dtype": ("with s: s.run({h: X.astype(np.int32)})", "TypeError", ["'x'", "float32", "int32"]),
    "python list of ints": ("with s: s.run({h: np.arange(6).reshape(2, 3).tolist()})", "TypeError",
                            ["'x'", "float32", "int32"]),
    "object array": ("with s: s.run({h: np.empty((2, 3), object)})", "TypeError", ["'x'", "object"]),
    "None as data": ("with s: s.run({h: None})", "ValueError", ["'x'", "(2, 3)"]),
    "missing input": ("with s: s.run({})", "ValueError", ["no data given", "'x'"]),
    "extra stream of another Ir": ("p, q, _, _ = prog(); r = popxl.h2d_stream\n"
                                   "ir3 = popxl.Ir()\nwith ir3.main_graph: y = popxl.h2d_stream((1,), popxl.float32, name='y')\n"
                                   "with s: s.run({h: X, y: np.zeros(1, np.float32)})", "ValueError",
                                   ["'y'", "not loaded by any host_load"]),
    "string key": ("with s: s.run({'x': X})", "TypeError", ["host-to-device streams", "'x'"]),
    "device-to-host stream as key": ("with s: s.run({o: X})", "TypeError", ["host-to-device streams"]),
    "not attached": ("s.run({h: X})", "ValueError", ["Must be attached", "with session"]),
    "num_host_transfers leading dim": ("ir2, h2, _, _ = prog(2); s2 = popxl.Session(ir2, 'cpu')\n"
                                       "with s2: s2.run({h2: X})", "ValueError", ["(2, 2, 3)", "num_host_transfers"]),
    "big-endian input": ("with s: s.run({h: X.astype('>f4')})", "TypeError", ["'x'", "float32", ">f4"]),
    "write_variable_data wrong shape": ("s.write_variable_data(v, np.zeros(6, np.float32))", "ValueError",
                                        ["'v'", "(2, 3)", "(6,)"]),
    "write_variable_data wrong dtype": ("s.write_variable_data(v, np.zeros((2, 3)))", "ValueError",
                                        ["'v'", "float32", "float64"]),
    "get_tensor_data of a non-variable": ("t = [op.outputs[0] for op in ir.core.main.ops if op.kind == 'Mul'][0]\n"
                                          "from compiler.popxl.tensor import wrap\ns.get_tensor_data(wrap(t))",
                                          "TypeError", ["not a variable"]),
    "unsupported device": ("popxl.Session(prog()[0], 'ipu_hw')", "ValueError", ["'ipu_hw'", "'cpu'", "'interpreter'"]),
    "pipeline level out of range": ("popxl.Session(prog()[0], 'cpu', options=CompileOptions(level=7))", "ValueError",
                                    ["level", "7"]),
    # the compiled executable checks every buffer at its boundary
    "exe: wrong variable shape": ("vs, st = buffers(); vs[vid] = np.zeros(3, np.float32); exe.run(vs, st, 1)",
                                  "ValueError", ["'v'", "(2, 3)", "(3,)"]),
    "exe: wrong variable dtype": ("vs, st = buffers(); vs[vid] = np.zeros((2, 3)); exe.run(vs, st, 1)",
                                  "ValueError", ["'v'", "float32", "float64"]),
    "exe: variable not an array": ("vs, st = buffers(); vs[vid] = [[0.0] * 3] * 2; exe.run(vs, st, 1)",
                                   "TypeError", ["'v'", "numpy array"]),
    "exe: read-only variable": ("vs, st = buffers(); vs[vid].setflags(write=False); exe.run(vs, st, 1)",
                                "ValueError", ["'v'", "read-only"]),
    "exe: strided variable": ("vs, st = buffers(); vs[vid] = np.zeros((2, 6), np.float32)[:, ::2]; exe.run(vs, st, 1)",
                              "ValueError", ["'v'", "C-contiguous"]),
    "exe: missing variable": ("vs, st = buffers(); exe.run({}, st, 1)", "ValueError", ["no buffer", "'v'"]),
    "exe: missing stream": ("vs, st = buffers(); exe.run(vs, {}, 1)", "ValueError", ["no data given", "'x'"]),
    "exe: stream rows != iterations": ("vs, st = buffers(); exe.run(vs, st, 5)", "ValueError", ["'x'", "(5, 2, 3)"]),
    "exe: stream not an array": ("vs, st = buffers(); exe.run(vs, {'x': X.tolist()}, 1)", "ValueError", ["'x'"]),
    "exe: zero iterations": ("vs, st = buffers(); exe.run(vs, st, 0)", "ValueError", ["iterations", ">= 1"]),
    "exe: negative iterations": ("vs, st = buffers(); exe.run(vs, st, -3)", "ValueError", ["iterations"]),
}
# odd but legal arrays: the result must equal the ordinary run's, bit for bit
GOOD = {
    "non-contiguous input": "same(np.ascontiguousarray(np.repeat(X, 2, axis=1))[:, ::2])",
    "Fortran-ordered input": "same(np.asfortranarray(X))",
    "read-only input": "x = X.copy(); x.setflags(write=False); same(x)",
    "misaligned input": "raw = np.zeros(X.nbytes + 1, np.uint8); x = np.ndarray(X.shape, np.float32, raw, 1); "
                        "x[...] = X; assert not x.flags.aligned; same(x)",
    "input changed after run": "x = X.copy(); ir2, h2, v2, o2 = prog(); s2 = popxl.Session(ir2, 'cpu')\n"
                               "with s2:\n    s2.run({h2: x}); x[...] = 99\nassert np.array_equal(s2.get_tensor_data(v2), X)",
    "exe: misaligned variable buffer": "vs, st = buffers(); raw = np.zeros(25, np.uint8)\n"
                                       "vs[vid] = np.ndarray((2, 3), np.float32, raw, 1); vs[vid][...] = 0\n"
                                       "exe.run(vs, st, 1); assert np.array_equal(vs[vid], X)",
    "exe: views into one big buffer": "big = np.zeros(100, np.float32); vs = {vid: big[7:13].reshape(2, 3)}\n"
                                      "exe.run(vs, {'x': X[None].copy()}, 1)\n"
                                      "assert np.array_equal(big[7:13], X.ravel()) and not big[:7].any() and not big[13:].any()",
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return run_cases(PRELUDE, {**{k: c for k, (c, _, _) in BAD.items()}, **GOOD})


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_a_clear_python_error(case, outcomes):
    _, exc, parts = BAD[case]
    got = outcomes[case]
    assert got.status == "raised" and got.exc == exc, f"{case}: {got}"
    missing = [p for p in parts if p not in got.msg]
    assert not missing, f"{case}: message lacks {missing}:\n{got.msg}"


@pytest.mark.parametrize("case", list(GOOD))
def test_odd_but_legal_arrays_work_exactly(case, outcomes):
    got = outcomes[case]
    assert got.status == "returned", f"{case}: {got}"
