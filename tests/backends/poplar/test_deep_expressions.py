"""The Poplar emitter on a deep expression tree (a long chain of fused elementwise ops) walks it
iteratively: under recursion limit 200 it writes the same program as with the default limit."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
from test_poplar import check_kernels, poplar_program  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.popxl import ops  # noqa: E402

LENGTH = 150  # elementwise ops in one chain: one fused kernel, one expression as deep as the chain

BUILD = """
def build(n):
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), name="x")
        t = x
        for k in range(n):
            t = ops.tanh(t) * 0.5 + x if k % 2 else ops.exp(t * -0.25) - 1.0
        ops.var_updates.copy_var_update_(x, t)
    return ir
"""
_ns: dict = {"popxl": popxl, "ops": ops, "np": np}
exec(BUILD, _ns)  # the same builder here and in the child
build = _ns["build"]

CHILD = """
import json, sys
sys.path[:0] = [{root!r}]
import numpy as np
from compiler import popxl, driver
from compiler.popxl import ops
import compiler.backends.poplar, passes.pipeline  # imports are not the program's depth
{build}
ir = build({n})
sys.setrecursionlimit(200)
em = driver.lower(ir, "poplar")
print(json.dumps({{"cpp": em.source, "kernels": len(em.kernels)}}))
"""


def test_a_deep_expression_emits_the_same_program_under_recursion_limit_200():
    code = CHILD.format(root=str(ROOT), build=BUILD, n=LENGTH)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    em = poplar_program(build(LENGTH))
    fused = [k for k in em.kernels if k.op is not None and k.op.kind == "FusedKernel"]
    assert fused and max(len(k.op.attrs["expr"].nodes) for k in fused) > LENGTH  # one deep expression
    assert got["cpp"] == em.source and got["kernels"] == len(em.kernels)
    assert check_kernels(em, np.random.default_rng(0)) == len(em.kernels)  # and its arithmetic is right

