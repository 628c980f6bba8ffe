"""What the optimised LLVM IR looks like: the fused Adam kernel is one vectorised loop, float32
exp/tanh loops vectorise (no libm calls), noalias parameters on kernels."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import custom_optimiser  # noqa: E402
from llvmcheck import lowered_modules  # noqa: E402

def _session(build, **kw) -> popxl.Session:
    return popxl.Session(build(), "cpu", options=CompileOptions(use_cache=False, **kw))


@pytest.mark.parametrize("first_order", [popxl.float16, popxl.float32])
def test_fused_adam_kernel_is_one_vectorised_loop(first_order):
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            w = popxl.variable(np.ones(4096, np.float32), name="w")
            g = popxl.variable(np.ones(4096, np.float32), name="g")
            facts, graph = custom_optimiser.Adam(cache=True).create_graph(w, w.spec, lr=1e-3,
                                                                           first_order_dtype=first_order)
            graph.bind(facts.init()).call(w, g)
        return ir
    sess = _session(build, threads=1)
    fused = [op for g in sess._exe.ir.graphs.values() for op in g.ops if op.kind == "FusedKernel"]
    assert len(fused) == 1
    text = sess._exe.llvm_ir  # kernels are inlined into the entry point
    assert re.search(r"fdiv <(8|16) x float>", text) and re.search(r"sqrt\.v(8|16)f32", text), \
        "no vector fdiv and sqrt: the Adam loop was not vectorised"
    if first_order is popxl.float16:
        assert re.search(r"<(8|16) x half>", text), "float16 state is not loaded as vectors"


def test_float32_exp_and_tanh_loops_vectorise():
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            x = popxl.variable(np.linspace(-3, 3, 4096).astype(np.float32), name="x")
            out = popxl.variable(np.zeros(4096, np.float32), name="out")
            ops.var_updates.copy_var_update_(out, ops.gelu(x) + ops.exp(x) + ops.softmax(x))
        return ir
    text = _session(build, threads=1)._exe.llvm_ir
    assert "@expf" not in text and "@tanhf" not in text
    assert re.search(r"fmul (fast |reassoc )*<(8|16) x float>", text)


@pytest.mark.parametrize("level", [0, 2])
def test_kernel_parameters_are_noalias(level):
    """Before LLVM inlines them, every elementwise loop takes one noalias pointer per distinct storage."""
    from compiler.driver import optimise

    modules = lowered_modules(optimise(custom_optimiser.build_ir()[0], CompileOptions(level=level)))
    loops = [line for m in modules for line in str(m).splitlines() if line.startswith("define") and ".body" in line]
    assert loops and all(line.count("noalias") == line.count("i8*") for line in loops)
