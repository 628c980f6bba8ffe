"""README claims that nothing else checks: the examples it names run and do what it says, the console
scripts exist, `--emit all` writes every artefact, the real Fashion-MNIST files load, the
`tools.report` table is what the command prints, and `make demo` works end to end (slow)."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _run(*args: str | Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_functional_adam_example_fits_with_one_compiled_kernel():
    r = _run(sys.executable, "examples/functional_adam.py")
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"final mse (\S+); (\d+) compiled kernel, t = (\d+)", r.stdout)
    assert m, r.stdout
    assert float(m[1]) < 1e-6 and m[2] == "1" and m[3] == "300", r.stdout


@pytest.mark.slow  # 500 training steps of a torch model (about 40 s on an idle machine)
def test_torch_dropin_example_trains_with_one_compiled_kernel():
    pytest.importorskip("torch")
    r = _run(sys.executable, "examples/torch_dropin.py")
    assert r.returncode == 0, r.stderr[-3000:]
    losses = [float(x) for x in re.findall(r"^\d+ (\S+)$", r.stdout, flags=re.M)]
    assert len(losses) == 5 and losses[-1] < 0.05 * losses[0], r.stdout
    assert "compiled kernels: 1 (lr changes never recompile)" in r.stdout


@pytest.mark.parametrize("script, module", [("print-schedule", "tools.print_schedule"), ("ir-viz", "tools.viz"),
                                            ("optc", "tools.compile")])
def test_console_scripts_are_the_tools(script, module, tmp_path):
    exe = BIN / script
    assert exe.exists(), f"{exe} missing: the console scripts come from `pip install -e .` (pyproject [project.scripts])"
    via_script = _run(exe, "examples/custom_optimiser.py", *(["-o", tmp_path / "a.dot"] if script != "print-schedule" else []),
                      *(["--emit", "header"] if script == "optc" else []))
    via_module = _run(sys.executable, "-m", module, "examples/custom_optimiser.py",
                      *(["-o", tmp_path / "b.dot"] if script != "print-schedule" else []),
                      *(["--emit", "header"] if script == "optc" else []))
    assert via_script.returncode == 0 == via_module.returncode, via_script.stderr + via_module.stderr
    if script == "print-schedule":
        assert via_script.stdout == via_module.stdout and "Graph : Adam_subgraph(0)" in via_script.stdout
    else:
        assert (tmp_path / "a.dot").read_text() == (tmp_path / "b.dot").read_text()


def test_emit_all_writes_every_artefact(tmp_path):
    out = tmp_path / "aot"
    r = _run(BIN / "optc", "examples/custom_optimiser.py", "--emit", "all", "-o", out)
    assert r.returncode == 0, r.stderr
    names = {p.suffix for p in out.iterdir()}
    assert {".ll", ".s", ".o", ".so", ".h"} <= names, sorted(p.name for p in out.iterdir())
    lib = ctypes.CDLL(str(next(out.glob("*.so"))))
    assert lib.optc_run  # the C ABI's entry point (README: "The C ABI of emitted programs")
    assert "optc_run" in next(out.glob("*.h")).read_text()


def test_the_real_fashion_mnist_files_load():
    sys.path.insert(0, str(ROOT / "examples"))
    import mnist_adam

    train, test = mnist_adam.load_data(mnist_adam.DEFAULT_DATA)
    (xtr, ytr), (xte, yte) = (train.images, train.labels), (test.images, test.labels)
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert ytr.shape == (60000,) and yte.shape == (10000,)
    assert np.bincount(ytr).tolist() == [6000] * 10 and np.bincount(yte).tolist() == [1000] * 10
    assert xtr.dtype == np.uint8 and xtr.max() == 255 and 60 < xtr.mean() < 80  # Fashion-MNIST's mean pixel ~72.9


def _readme_tables_after(anchor: str) -> dict[str, tuple[int, ...]]:
    """The README table right after `anchor`: first cell -> every `a -> b` number pair in the row."""
    rows = {}
    for line in README.split(anchor, 1)[1].split("\n\n", 2)[1].splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        nums = [int(x.replace(",", "")) for c in cells[1:] for x in re.findall(r"[\d,]+(?= ->)|(?<=-> )[\d,]+", c)]
        rows[cells[0]] = tuple(nums)
    return rows


def test_the_passes_report_tables_are_what_the_command_prints():
    r = _run(sys.executable, "-m", "tools.report")
    assert r.returncode == 0, r.stderr
    pipeline, sharded = {}, {}
    for block in re.split(r"\n(?=\S)", r.stdout.strip()):
        head = block.splitlines()[0].rstrip(":")
        nums = re.findall(r"(\d+) ->\s+(\d+)", block)
        if "shard_weight_update" in head:  # "<program> (<file>), N replicas, shard_weight_update"
            sharded[re.search(r"(\d+) replicas", head).group(0)] = tuple(int(x) for x in nums[0])
        else:
            pipeline[head.split(" (")[0]] = tuple(int(x) for pair in nums[:4] for x in pair)
    table = _readme_tables_after("`python -m tools.report` (this machine):")
    assert table == pipeline, f"README table {table} != `python -m tools.report` {pipeline}"
    table = _readme_tables_after("`python -m tools.report` with `shard_weight_update` (this machine):")
    assert table == sharded, f"README table {table} != `python -m tools.report` {sharded}"


@pytest.mark.slow
def test_make_demo_end_to_end():
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    r = _run("make", "demo", timeout=3600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "Graph : Adam_subgraph(0)" in r.stdout
    acc = re.search(r"Accuracy on test set: ([\d.]+)%", r.stdout)
    assert acc and float(acc[1]) > 80.0, r.stdout[-2000:]
