"""MultiKernel (level 3) compiled, against the interpreter: the MNIST tutorial's eight Adam steps as one
launch (float16 state, the scalar step stored once per group), groups' element spaces cut into two
equal halves for two threads (a large group cut inside, many small groups), too little work for a
second thread, groups of equal size sharing a loop body, and one thread."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from compiler.driver import CompileOptions, optimise

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "examples"))
from llvmcheck import compare, lowered_modules, sgd_program  # noqa: E402
from tutorial_programs import MNIST_SHAPES as MNIST  # noqa: E402
from tutorial_programs import adam_per_variable  # noqa: E402


def _adam_per_variable(shapes):
    return lambda: adam_per_variable(shapes)


def _kinds(build) -> list[str]:
    return [op.kind for op in optimise(build(), CompileOptions(level=3)).main.ops]


@pytest.mark.parametrize("threads", [1, 2])
def test_mnist_adam_steps_as_one_launch(threads):
    build = _adam_per_variable(MNIST)
    assert _kinds(build) == ["MultiKernel"]
    compare(build, levels=(2, 3), runs=3, threads=threads)


@pytest.mark.parametrize("shapes", [
    [(1 << 19,), (3,), (1 << 19,)],  # the cut falls inside a large group
    [(100_003,), (1000, 7)],  # odd sizes, a 2-d group
    [(1000,)] * 40 + [(7,)] * 30,  # many small groups over two threads; equal sizes share a kernel
    [(5,), (5,)],  # too little work for a second thread
], ids=["big", "odd", "many-small", "tiny"])
def test_groups_on_two_threads_match_the_interpreter(shapes):
    build = sgd_program(shapes)
    assert _kinds(build) == ["MultiKernel"]
    compare(build, levels=(3,), runs=2, threads=2)


def test_groups_of_one_size_share_one_kernel_function():
    work = optimise(sgd_program([(1000,)] * 70 + [(7,)] * 10)(), CompileOptions(level=3))
    functions = [f for m in lowered_modules(work) for f in m.functions]
    bodies = [f.name for f in functions if f.name.endswith(".body")]
    assert len(bodies) == 2, bodies
    assert any(f.name.endswith(".groups.omp") for f in functions)  # 70,070 elements: a parallel region
