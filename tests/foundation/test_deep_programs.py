"""Deep programs: no part of the compiler recurses to a depth that grows with the program."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from session_helpers import ROOT

from compiler import popxl
from compiler.ir import verify
from compiler.ir.clone import clone
from compiler.ir.hashing import graph_key
from compiler.ir.printer import print_schedule

sys.path.insert(0, str(ROOT / "examples"))
import deep_mlp  # noqa: E402

# Everything a compile touches, in a child whose recursion limit is 200: built, verified, cloned,
# hashed, saved and loaded, optimised and run. It prints what the parent compares.
CHILD = """
import hashlib, json, sys, tempfile, os
sys.path[:0] = [{root!r}, {examples!r}]
import numpy as np
import deep_mlp
from compiler import popxl
from compiler.driver import CompileOptions, optimise
from compiler.ir import Ir, verify
from compiler.ir.clone import clone
from compiler.ir.hashing import graph_key
from compiler.ir.printer import print_schedule
import compiler.backends.llvm.backend, runtime, passes.pipeline  # imports are not the program's depth
sys.setrecursionlimit(200)
ir, streams, _, loss = deep_mlp.train_ir({layers})
verify(ir.core, "deep")
work = clone(ir.core)
keys = [hash(graph_key(work, g)) for g in work.graphs.values()]
path = os.path.join(tempfile.mkdtemp(), "deep.json")
ir.core.save(path)
back = Ir.load(path)
optimised = optimise(ir, CompileOptions())
x, y = deep_mlp.batch(64)
out = dict(losses=[])
with popxl.Session(ir, {device!r}) as s:
    for _ in range(2):
        out["losses"].append(float(s.run(dict(zip(streams, [x, y])))[loss]))
text = "\\n".join(print_schedule(g) for g in optimised.graphs.values())
out["schedule"] = hashlib.sha256(text.encode()).hexdigest()
out["loaded_ops"] = sum(len(g.ops) for g in back.graphs.values())
print(json.dumps(out))
"""


def _child(layers: int, device: str, child: str = CHILD) -> dict:
    code = child.format(root=str(ROOT), examples=str(ROOT / "examples"), layers=layers, device=device)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _schedule_digest(ir) -> str:
    import hashlib

    from compiler.driver import CompileOptions, optimise

    text = "\n".join(print_schedule(g) for g in optimise(ir, CompileOptions()).graphs.values())
    return hashlib.sha256(text.encode()).hexdigest()


def test_recursion_limit_200_changes_nothing():
    layers = 64  # a recursive deepcopy of the IR died at 32 layers with the default limit
    got = _child(layers, "interpreter")
    ir, streams, _, loss = deep_mlp.train_ir(layers)
    x, y = deep_mlp.batch(64)
    with popxl.Session(ir, "interpreter") as s:
        want = [float(s.run(dict(zip(streams, [x, y])))[loss]) for _ in range(2)]
    assert got["losses"] == want
    assert got["schedule"] == _schedule_digest(ir)
    assert got["loaded_ops"] == sum(len(g.ops) for g in ir.core.graphs.values())


# 1,000 layers (about 9,000 ops): built, compiled for the CPU and run, under recursion limit 200
THOUSAND = """
import json, sys
sys.path[:0] = [{root!r}, {examples!r}]
import deep_mlp
from compiler import popxl
import compiler.backends.llvm.backend, runtime, passes.pipeline
sys.setrecursionlimit(200)
ir, streams, _, loss = deep_mlp.train_ir({layers})
x, y = deep_mlp.batch(64)
with popxl.Session(ir, {device!r}) as s:
    print(json.dumps(dict(losses=[float(s.run(dict(zip(streams, [x, y])))[loss]) for _ in range(3)])))
"""


@pytest.mark.slow
def test_a_thousand_layer_program_builds_compiles_and_runs():
    losses = _child(1000, "cpu", THOUSAND)["losses"]
    # 1,000 gelu layers with small weights pass almost nothing on: the first loss is ln(10), and the
    # head's update still lowers it
    assert abs(losses[0] - np.log(10)) < 1e-3
    assert losses[2] < losses[1] < losses[0]


def test_clone_of_a_deep_program_is_independent_and_equal():
    ir = deep_mlp.train_ir(40)[0].core
    work = clone(ir)
    verify(work, "clone")
    assert [print_schedule(g) for g in work.graphs.values()] == [
        print_schedule(g) for g in ir.graphs.values()]
    assert [graph_key(work, g) for g in work.graphs.values()] == [graph_key(ir, g) for g in ir.graphs.values()]
    # the copy shares no graph, op or value with the original; array data is shared on purpose
    for g, h in zip(ir.graphs.values(), work.graphs.values()):
        assert g is not h and h.ir is work
        assert all(a is not b and b.graph is h for a, b in zip(g.ops, h.ops))
        assert all(v is not w and w.graph is h for v, w in zip(g.values.values(), h.values.values()))
    assert all(work.variables[k] is ir.variables[k] for k in ir.variables)
    n_ops = len(ir.main.ops)
    work.main.erase(work.main.ops[-1])
    assert len(ir.main.ops) == n_ops


def test_deep_mlp_trains_on_cpu_like_the_interpreter():
    ir, streams, _, loss = deep_mlp.train_ir(6)
    x, y = deep_mlp.batch(64)
    got = {}
    for device in ("cpu", "interpreter"):
        with popxl.Session(ir, device) as s:
            got[device] = [float(s.run(dict(zip(streams, [x, y])))[loss]) for _ in range(3)]
    np.testing.assert_allclose(got["cpu"], got["interpreter"], rtol=1e-4)
    assert got["cpu"][-1] < got["cpu"][0]



def _lowered(layers: int):
    from compiler.backends.llvm.lower import ModuleLowering
    from compiler.driver import CompileOptions, optimise

    ir, *_ = deep_mlp.train_ir(layers)
    m = ModuleLowering(optimise(ir, CompileOptions()), "optc")
    return m, str(m.build())


def test_each_distinct_kernel_is_lowered_once():
    small, small_text = _lowered(3)
    big, big_text = _lowered(9)
    # the same kernel shapes: six more layers add calls, not kernels
    assert big.kernels.distinct == small.kernels.distinct == len(big.kernels.modules)
    assert big.kernels.calls >= small.kernels.calls + 6 * 4  # >= 4 calls per layer (matmul epilogues fused)
    # the graphs' module declares the kernels; each kernel is defined once, in a module of its own
    declared = [ln for ln in big_text.splitlines() if ln.startswith("declare") and "optk_" in ln]
    assert len(declared) == big.kernels.distinct
    assert not [ln for ln in big_text.splitlines() if ln.startswith("define") and "optk_" in ln]
    for sym, km in big.kernels.modules.items():
        defined = [ln for ln in str(km).splitlines() if ln.startswith("define") and sym in ln]
        assert len(defined) == 1 and "noinline" in defined[0]
