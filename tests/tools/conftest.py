"""Fixtures for the tools tests: the example programs and a command-line runner."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from compiler.ir import Ir
from compiler.ir.clone import clone
from tools.target import load_target

ROOT = Path(__file__).resolve().parents[2]
# every example that follows the TARGET convention (tools/target.py)
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if "\ndef build_ir(" in p.read_text())


@pytest.fixture(params=EXAMPLES, ids=[p.stem for p in EXAMPLES])
def example(request: pytest.FixtureRequest) -> Path:
    return request.param


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """cli("tools.viz", arg, ..., env=None): run a tool as `python -m` in a subprocess from the repository root."""

    def run(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=300)

    return run


_BUILT: dict[str, Ir] = {}


@pytest.fixture
def build() -> Callable[[str | Path], Ir]:
    """build(TARGET): a fresh copy of the Ir that TARGET builds (each program is built once per session)."""

    def get(target: str | Path) -> Ir:
        key = str(Path(target).resolve())
        if key not in _BUILT:
            _BUILT[key] = load_target(key)
        return clone(_BUILT[key])

    return get
