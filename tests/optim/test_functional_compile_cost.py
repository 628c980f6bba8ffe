"""The functional optimizer's compile work against parameter count, counted, never timed.

Its trace is one flat graph: every parameter's update reads the same single-element tensors (the
step, a learning-rate array). Elementwise fusion once followed those links and chained every
parameter's loop into one FusedKernel per shape, whose LLVM text (and LLVM's superlinear cost on it:
64 layers 3.9 s, 128 layers 34 s) grew with the model. Now each parameter's update is a loop of its
own, equal loops share one outlined kernel, and what LLVM is handed stays the same as layers are added.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
from session_helpers import ROOT

from compiler.backends.llvm.lower import lower as lower_module
from compiler.backends.llvm.outline import KernelTable
from compiler.driver import CompileOptions, optimise
from compiler.optim import SGD, Adam

sys.path.insert(0, str(ROOT / "examples"))
from functional_adam import MyAdam  # noqa: E402
from work_count import lines_executed  # noqa: E402


def _params(layers: int) -> tuple[dict, dict]:
    params = {}
    for i in range(layers):
        params[f"w{i}"] = np.full((16, 16), 0.5, np.float32)
        params[f"b{i}"] = np.zeros(16, np.float32)
    return params, {k: np.full_like(v, 1e-3) for k, v in params.items()}


def _work(make, layers: int) -> dict[str, int]:
    """Kernels LLVM would compile for the optimizer's step over `layers` layers, and the Python lines
    the passes and the lowering to LLVM text execute."""
    params, grads = _params(layers)
    opt = make()
    opt._trace(params, grads, None, {})  # creates the state
    trace = opt._trace(params, grads, None, {})  # the steady program, with state as buffers
    table = KernelTable()
    out: dict = {}

    def passes_and_lowering() -> None:
        out["ir"] = optimise(trace.ir, CompileOptions())
        lower_module(out["ir"], "optc", kernels=table)
    work = lines_executed(passes_and_lowering)
    texts = [str(m) for m in table.modules.values()]
    return {"kernels": len(texts), "kernel_lines": sum(t.count("\n") for t in texts),
            "largest_kernel_lines": max(t.count("\n") for t in texts), "calls": table.calls, "python_lines": work}


MAKERS = {"MyAdam (examples)": lambda: MyAdam(lr=1e-3), "Adam": lambda: Adam(lr=1e-3),
          "SGD nesterov": lambda: SGD(lr=1e-2, momentum=0.9, nesterov=True)}


@pytest.mark.parametrize("name", list(MAKERS))
def test_kernels_do_not_grow_with_layers(name):
    small, big = _work(MAKERS[name], 4), _work(MAKERS[name], 8)
    # the same kernels, whatever the layer count: LLVM's work does not grow with the model
    assert big["kernels"] == small["kernels"], (small, big)
    assert big["kernel_lines"] == small["kernel_lines"], (small, big)
    assert big["largest_kernel_lines"] == small["largest_kernel_lines"], (small, big)
    # calls grow with the parameters, and the Python work of passes + lowering ~linearly
    assert big["calls"] > small["calls"]
    assert big["python_lines"] <= 2.3 * small["python_lines"], (small, big)
