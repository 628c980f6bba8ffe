"""print_schedule command line: its output is the library's print_schedule, for Python and saved TARGETs."""
from __future__ import annotations

import importlib.util
import os

import pytest

from compiler.ir import print_schedule
from compiler.ir.clone import clone
from passes.pipeline import run_pipeline
from tools.print_schedule import main
from tools.target import load_target


def _schedules(graphs) -> str:
    return "\n".join(print_schedule(g) for g in graphs)


def test_default_output_is_what_the_tutorial_prints(cli):
    spec = importlib.util.spec_from_file_location("co", "examples/custom_optimiser.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _, h = mod.build_ir()
    tutorial = h["adam"].print_schedule() + "\n" + h["adam_lr"].print_schedule()
    r = cli("tools.print_schedule", "examples/custom_optimiser.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout == tutorial + "\n"
    assert "Neg.107 (%3 [() float32]) -> (%10 [() float32])" in r.stdout  # PopXL's verified line


def test_cli_equals_library(cli, build, example):
    ir = build(example)
    subgraphs = [g for g in ir.graphs.values() if g is not ir.main]
    r = cli("tools.print_schedule", example)
    assert r.returncode == 0, r.stderr
    assert r.stdout == _schedules(subgraphs or [ir.main]) + "\n"


@pytest.mark.parametrize("flags", [["--all-graphs"], ["--graph", "main"], ["--graph", "Adam_subgraph(1)"]])
def test_graph_selection(capsys, build, flags):
    ir = build("examples/custom_optimiser.py")
    want = {"--all-graphs": list(ir.graphs.values()), "main": [ir.main], "Adam_subgraph(1)": [ir.graphs["Adam_subgraph(1)"]]}
    assert main(["examples/custom_optimiser.py", *flags]) == 0
    assert capsys.readouterr().out == _schedules(want[flags[-1]]) + "\n"


def test_saved_ir_target_prints_the_same(cli, build, tmp_path, example):
    ir = build(example)
    ir.save(tmp_path / "p.json")
    r = cli("tools.print_schedule", tmp_path / "p.json", "--all-graphs")
    assert r.returncode == 0, r.stderr
    assert r.stdout == _schedules(ir.graphs.values()) + "\n"


def test_after_pass_equals_the_pipeline_stopped_there(cli):
    ir = clone(load_target("examples/custom_optimiser.py"))
    run_pipeline(ir, level=3, stop_after="fuse_elementwise")
    r = cli("tools.print_schedule", "examples/custom_optimiser.py", "--all-graphs", "--after", "fuse_elementwise")
    assert r.returncode == 0, r.stderr
    assert r.stdout == _schedules(ir.graphs.values()) + "\n"
    assert "FusedKernel." in r.stdout and "Neg." not in r.stdout


def test_diff_lists_the_changed_lines(cli):
    ir = load_target("examples/custom_optimiser.py")
    before = _schedules(g for g in ir.graphs.values() if g is not ir.main).splitlines()
    work = clone(ir)
    run_pipeline(work, level=2)
    after = _schedules(g for g in work.graphs.values() if g is not work.main).splitlines()
    r = cli("tools.print_schedule", "examples/custom_optimiser.py", "--diff")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["--- as built", "+++ after the level-2 pipeline"]
    removed = [x[1:] for x in lines[2:] if x.startswith("-")]
    added = [x[1:] for x in lines[2:] if x.startswith("+")]
    assert set(removed) == set(before) - set(after) and set(added) == set(after) - set(before)
    assert "    Neg.107 (%3 [() float32]) -> (%10 [() float32])" in removed


def test_graph_merged_by_dedup_is_shown_with_a_note(cli, tmp_path):
    (tmp_path / "twin.py").write_text(
        "import numpy as np\nfrom custom_optimiser import Adam\nfrom compiler import popxl\n\n\n"
        "def build_ir():\n    ir = popxl.Ir()\n    with ir.main_graph:\n        for _ in range(2):\n"
        "            var = popxl.variable(np.ones((2, 2)), popxl.float32)\n"
        "            facts, adam = Adam().create_graph(var, var.spec, lr=1e-3)\n"
        "            adam.bind(facts.init()).call(var, var)\n    return ir\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(["examples", os.environ.get("PYTHONPATH", "")]))
    r = cli("tools.print_schedule", tmp_path / "twin.py", "--graph", "Adam_subgraph(1)", "--after", "dedup_subgraphs",
            env=env)
    assert r.returncode == 0, r.stderr
    assert "merged into 'Adam_subgraph(0)'" in r.stderr and r.stdout.startswith("Graph : Adam_subgraph(0)\n")


@pytest.mark.parametrize("case", ["unknown_graph", "no_build_ir", "missing_file", "unknown_pass", "not_an_ir",
                                  "malformed_saved_ir"])
def test_errors_say_what_to_do(cli, tmp_path, case):
    (tmp_path / "x.py").write_text("X = 1\n")
    (tmp_path / "y.py").write_text("def build_ir():\n    return 42\n")
    (tmp_path / "bad.json").write_text('{"format": "optgraph-ir",\n "version": 1,\n "graphs": [}\n')
    args, want = {
        "unknown_graph": (["examples/custom_optimiser.py", "--graph", "nope"],
                          "no graph named 'nope'; this IR has: 'main', 'Adam_subgraph(0)', 'Adam_subgraph(1)'"),
        "no_build_ir": ([tmp_path / "x.py"], "defines no build_ir(); add `def build_ir():`"),
        "missing_file": ([tmp_path / "missing.json"], "no such file"),
        "unknown_pass": (["examples/custom_optimiser.py", "--after", "nope"], "unknown pass 'nope'; --after takes one of"),
        "not_an_ir": ([tmp_path / "y.py"], "build_ir() returned int, not an Ir"),
        "malformed_saved_ir": ([tmp_path / "bad.json"], "bad.json:3:13: malformed JSON"),
    }[case]
    r = cli("tools.print_schedule", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("print-schedule: error: ") and want in r.stderr, r.stderr
