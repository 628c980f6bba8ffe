"""The LLVM pipeline (CompileOptions.opt_level): O2 by default, O3 on request; both compute what the
interpreter computes, a bad level is refused before anything is lowered, and the level is part of
every cache key. Why O2, and what else was measured: docs/compile_time.md."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.popxl import ops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import run_session  # noqa: E402
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


def test_o2_is_the_default():
    assert CompileOptions().opt_level == 2


@pytest.mark.parametrize("level", [2, 3])
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
    """A kernel or program compiled at O2 is never taken from the cache for O3, or the other way round."""
    from compiler.backends.llvm.backend import cache_key, kernel_symbol

    sig = ("ReduceSum", (), (), 1, 1, (), (), (), (), None)
    assert kernel_symbol(sig, opt_level=2) != kernel_symbol(sig, opt_level=3)
    ir = _bias_grad_ir().core
    assert cache_key(ir, opt_level=2) != cache_key(ir, opt_level=3)
