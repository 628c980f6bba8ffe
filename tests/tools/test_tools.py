"""IR save/load, print_schedule and viz command lines, and their error paths."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from compiler.ir import Ir, print_schedule
from compiler.ir.clone import clone
from compiler.ir.serialize import IRFormatError
from conftest import run_session
from passes.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_optimiser.py"
sys.path.insert(0, str(ROOT / "examples"))
import custom_optimiser  # noqa: E402

EXAMPLES = [lambda: custom_optimiser.build_ir()[0]]


def _cli(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


@pytest.mark.parametrize("optimised", [False, True])
@pytest.mark.parametrize("build", EXAMPLES)
def test_save_load_round_trip(tmp_path, build, optimised):
    ir = build()
    if optimised:
        ir = clone(ir)
        run_pipeline(ir)
    ir.save(tmp_path / "p.json")
    back = Ir.load(tmp_path / "p.json")
    assert [print_schedule(g) for g in back.graphs.values()] == [print_schedule(g) for g in ir.graphs.values()]
    a, _ = run_session(build(), "interpreter")
    b, _ = run_session(back, "interpreter")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    back.save(tmp_path / "q.json")
    assert (tmp_path / "p.json").read_text() == (tmp_path / "q.json").read_text()


def test_load_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "optgraph-ir",\n "version": 1,\n "graphs": [}')
    with pytest.raises(IRFormatError, match=r"bad.json:3:\d+: malformed JSON"):
        Ir.load(bad)
    ir = custom_optimiser.build_ir()[0]
    ir.save(tmp_path / "p.json")
    doc = json.loads((tmp_path / "p.json").read_text())
    doc["version"] = 99
    (tmp_path / "future.json").write_text(json.dumps(doc))
    with pytest.raises(IRFormatError, match="version 99 is newer"):
        Ir.load(tmp_path / "future.json")
    doc["version"] = 1
    doc["graphs"][1]["ops"][0]["inputs"] = [123456]
    (tmp_path / "dangling.json").write_text(json.dumps(doc))
    with pytest.raises(IRFormatError, match=r"graphs\[1\].*ops\[0\]"):
        Ir.load(tmp_path / "dangling.json")


def test_print_schedule_cli_equals_library():
    ir = custom_optimiser.build_ir()[0]
    want = "\n".join(print_schedule(g) for g in list(ir.graphs.values())[1:] + [ir.main])
    r = _cli("tools.print_schedule", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip("\n") == want
    r = _cli("tools.print_schedule", str(EXAMPLE), "--graph", "Adam_subgraph(1)", "--after", "fuse_elementwise")
    assert r.returncode == 0 and "FusedKernel" in r.stdout and "Neg" not in r.stdout
    assert "v0 = input 0() : float16" in r.stdout  # fused kernels list their primitive ops
    r = _cli("tools.print_schedule", str(EXAMPLE), "--diff")
    assert r.returncode == 0 and "-    Neg.107" in r.stdout and "+    FusedKernel" in r.stdout


def test_print_schedule_of_saved_ir(tmp_path):
    ir = custom_optimiser.build_ir()[0]
    ir.save(tmp_path / "p.json")
    r = _cli("tools.print_schedule", str(tmp_path / "p.json"), "--graph", "Adam_subgraph(0)")
    assert r.stdout.rstrip("\n") == print_schedule(ir.graphs["Adam_subgraph(0)"])


def test_cli_errors(tmp_path):
    r = _cli("tools.print_schedule", str(EXAMPLE), "--graph", "nope")
    assert r.returncode == 2 and "no graph named 'nope'" in r.stderr
    (tmp_path / "x.py").write_text("X = 1\n")
    r = _cli("tools.print_schedule", str(tmp_path / "x.py"))
    assert r.returncode == 2 and "build_ir()" in r.stderr
    r = _cli("tools.print_schedule", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_viz_svg_has_every_op(tmp_path):
    out = tmp_path / "ir.svg"
    r = _cli("tools.viz", str(EXAMPLE), "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = ET.tostring(ET.parse(out).getroot(), encoding="unicode")
    ir = custom_optimiser.build_ir()[0]
    for g in ir.graphs.values():
        for op in g.ops:
            assert f"{op.kind}.{op.id}" in text
    out2 = tmp_path / "fused.svg"
    assert _cli("tools.viz", str(EXAMPLE), "-o", str(out2), "--after", "fuse_elementwise").returncode == 0
    assert "FusedKernel." in out2.read_text()


def test_viz_without_dot_binary(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no `dot` on PATH
    r = _cli("tools.viz", str(EXAMPLE), "-o", str(tmp_path / "x.svg"), env=env)
    assert r.returncode == 2 and "apt-get install graphviz" in r.stderr
    r = _cli("tools.viz", str(EXAMPLE), "-o", str(tmp_path / "x.dot"), env=env)
    assert r.returncode == 0 and (tmp_path / "x.dot").read_text().startswith("digraph")


def test_repr_svg():
    ir = custom_optimiser.build_ir()[0]
    assert ir.graphs["Adam_subgraph(0)"]._repr_svg_().lstrip().startswith("<?xml")


def test_compile_cli(tmp_path):
    r = _cli("tools.compile", str(EXAMPLE), "--emit", "header", "-o", str(tmp_path / "p.h"))
    assert r.returncode == 0 and "optc_run" in (tmp_path / "p.h").read_text()


def test_demo_artifacts(tmp_path):
    r = _cli("tools.demo_artifacts", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "FusedKernel" in (tmp_path / "schedule_after.txt").read_text()
    assert "Accumulate.100" in (tmp_path / "schedule_before.txt").read_text()
    assert (tmp_path / "ir_after.svg").exists()
