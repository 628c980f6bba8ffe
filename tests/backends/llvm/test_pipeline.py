"""The LLVM pipeline (CompileOptions.opt_level): by default ("auto") O3 for kernels under
SMALL_KERNEL_LINES lines of LLVM text and O2 for larger modules; 2 or 3 forces a level. Every choice
computes what the interpreter computes, a bad level is refused before anything is lowered, and the
choice is part of every cache key. The measurements behind it: docs/compile_time.md."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.backends.llvm import target
from compiler.driver import CompileOptions
from compiler.popxl import ops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from session_helpers import run_session  # noqa: E402
from llvmcheck import check  # noqa: E402


def _bias_grad_ir() -> popxl.Ir:
    """A column sum of an (8, 512) tensor: a small kernel with a reassociable sum."""
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.linspace(-1, 1, 8 * 512, dtype=np.float32).reshape(8, 512), name="x")
        o = popxl.variable(np.zeros(512, np.float32), name="o")
        ops.var_updates.copy_var_update_(o, ops.sum(x, axis=0))
    return ir


def _elementwise_ir() -> popxl.Ir:
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.linspace(-1, 1, 512, dtype=np.float32).reshape(8, 64), name="x")
        o = popxl.variable(np.zeros((8, 64), np.float32), name="o")
        ops.var_updates.copy_var_update_(o, ops.tanh(x * 3.0 + 1.0) * x)
    return ir


def test_auto_chooses_by_kernel_size():
    small, big = "x\n" * (target.SMALL_KERNEL_LINES - 1), "x\n" * target.SMALL_KERNEL_LINES
    assert CompileOptions().opt_level == "auto"
    assert (target.level_for(small), target.level_for(big)) == (3, 2)
    assert target.level_for(small + "%s = fadd reassoc float %a, %b\n") == 2
    assert (target.level_for(small, 2), target.level_for(big, 3)) == (2, 3)


def test_a_step_has_kernels_on_both_sides_of_the_threshold():
    """The MNIST step: its elementwise updates at O3; matmuls and reductions (reassociable sums) at O2."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
    import mnist_adam

    from compiler.backends.llvm.lower import lower as lower_module
    from compiler.backends.llvm.outline import KernelTable
    from compiler.driver import optimise

    table = KernelTable()
    lower_module(optimise(mnist_adam.train_ir(8)[0], CompileOptions()), "optc", kernels=table)
    levels = {sig[0]: set() for sig in table.by_signature}
    for sig, k in table.by_signature.items():
        levels[sig[0]].add(target.level_for(str(table.modules[k.fn.name])))
    assert levels["MatMulEpilogue"] == {2} and levels["ReduceSum"] == {2} and levels["FusedKernel"] == {3}, levels


@pytest.mark.parametrize("level", ["auto", 2, 3])
def test_every_level_computes_what_the_interpreter_does(level):
    for build in (_bias_grad_ir, _elementwise_ir):
        want, _ = run_session(build(), "interpreter")
        got, _ = run_session(build(), "cpu", options=CompileOptions(use_cache=False, opt_level=level))
        check(f"opt_level {level}", got["o"], want["o"])


@pytest.mark.parametrize("bad", [1, 0, "O3", None])
def test_a_bad_level_is_refused_before_lowering(bad):
    with pytest.raises(ValueError, match="opt_level"):
        popxl.Session(_bias_grad_ir(), "cpu", options=CompileOptions(use_cache=False, opt_level=bad))


def test_the_level_is_part_of_the_cache_keys():
    """A kernel or program compiled under one choice is never taken from the cache for another."""
    from compiler.backends.llvm.backend import cache_key, kernel_symbol

    sig = ("ReduceSum", (), (), 1, 1, (), (), (), (), None)
    assert len({kernel_symbol(sig, opt_level=lv) for lv in target.OPT_LEVELS}) == 3
    ir = _bias_grad_ir().core
    assert len({cache_key(ir, opt_level=lv) for lv in target.OPT_LEVELS}) == 3
