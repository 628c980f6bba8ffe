"""The README is the front door: its PopXL example runs as printed, and every tool command it shows
names a module that exists and flags that module accepts."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands() -> list[tuple[str, list[str]]]:
    """(module, its --flags) for every `.venv/bin/python -m MODULE ...` line of the bash blocks."""
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(".venv/bin/python -m "):
                words = shlex.split(line)
                out.append((words[2], [w.split("=")[0] for w in words[3:] if w.startswith("--")]))
    return out


def test_the_readme_has_no_repeated_section():
    heads = re.findall(r"^#{2,3} .+$", README, flags=re.M)
    assert len(heads) == len(set(heads)), [h for h in heads if heads.count(h) > 1]


def test_the_popxl_example_runs_as_printed():
    code = next(b for b in _blocks("python") if "class Adam(addons.Module)" in b)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Graph : Adam_subgraph(0)" in r.stdout and "0.9990005" in r.stdout


@pytest.mark.parametrize("module,flags", _commands(), ids=lambda x: x if isinstance(x, str) else " ".join(x))
def test_tool_commands_use_real_flags(module, flags):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"python -m {module} --help failed: {r.stderr[-500:]}"
    missing = [f for f in flags if f not in r.stdout]
    assert not missing, f"README uses {missing} with python -m {module}, which does not accept them"
