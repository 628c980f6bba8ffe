"""`pytest --target-cpu NAME`: compile every Session that names no target for LLVM CPU NAME (isa.CPUS)
instead of this machine, so whole suites check code generated for another ISA (x86-64-v2, haswell) on
a machine that can run it (tests/backends/llvm/test_targets.py runs the op suites this way)."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--target-cpu", default=None, metavar="NAME",
                     help="LLVM CPU that compiled Sessions without a target_cpu generate code for (default: this machine)")


def pytest_configure(config: pytest.Config) -> None:
    cpu = config.getoption("--target-cpu")
    if not cpu:
        return
    from compiler.backends.llvm import target

    host_resolve = target.resolve
    try:
        host_resolve(cpu)  # an unknown name fails here, not in every test
    except ValueError as e:
        raise pytest.UsageError(f"--target-cpu: {e}") from None
    # the backend looks target.resolve up at call time: CompileOptions(target_cpu=None) now means `cpu`
    target.resolve = lambda c=None, t=None: host_resolve(cpu if c is None else c, t)


def pytest_report_header(config: pytest.Config) -> str | None:
    cpu = config.getoption("--target-cpu")
    return None if not cpu else f"compiled sessions generate code for CPU {cpu} (--target-cpu)"
