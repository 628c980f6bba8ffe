"""viz command line and the DOT drawings: valid SVG naming every op, the drawing conventions, no-Graphviz paths."""
from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from compiler.ir import Ir
from compiler.ir.clone import clone
from compiler.ir.dot import to_dot
from passes.pipeline import run_pipeline
from tools.target import load_target

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make setup)")


def svg_text(svg: str) -> str:
    """The text an SVG shows (parsing it also proves it is well-formed XML)."""
    root = ET.fromstring(svg)
    return "\n".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


def op_labels(ir: Ir) -> list[str]:
    return [f"{op.kind}.{op.id}" for g in ir.graphs.values() for op in g.ops]


@needs_dot
@pytest.mark.parametrize("after", [None, "fuse_elementwise"])
def test_svg_names_every_op(cli, build, tmp_path, example, after):
    ir = build(example)
    flags = []
    if after:
        run_pipeline(ir, level=3, stop_after=after)
        flags = ["--after", after]
    r = cli("tools.viz", example, "-o", tmp_path / "ir.svg", *flags)
    assert r.returncode == 0, r.stderr
    text = svg_text((tmp_path / "ir.svg").read_text())
    shown = set(re.findall(r"\b[A-Za-z]+\.\d+\b", text))
    assert shown >= set(op_labels(ir)), set(op_labels(ir)) - shown
    for g in ir.graphs.values():
        assert f"Graph : {g.id or 'main'}" in text


def _no_dot_env(tmp_path) -> dict:
    empty = tmp_path / "bin"
    empty.mkdir()
    return dict(os.environ, PATH=str(empty))  # the tools run as sys.executable, so only `dot` goes missing


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_without_dot_binary_other_formats_say_how_to_install(cli, tmp_path, fmt):
    r = cli("tools.viz", "examples/custom_optimiser.py", "-o", tmp_path / f"x.{fmt}", env=_no_dot_env(tmp_path))
    assert r.returncode == 2 and not (tmp_path / f"x.{fmt}").exists()
    assert "apt-get install graphviz" in r.stderr and "-o out.dot" in r.stderr


def test_without_dot_binary_dot_output_works(cli, tmp_path):
    r = cli("tools.viz", "examples/custom_optimiser.py", "-o", tmp_path / "x.dot", env=_no_dot_env(tmp_path))
    assert r.returncode == 0, r.stderr
    source = (tmp_path / "x.dot").read_text()
    assert source.startswith("digraph ir {")
    for label in op_labels(load_target("examples/custom_optimiser.py")):
        assert f'label="{label}' in source


def test_repr_svg_is_none_without_dot_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    ir = load_target("examples/custom_optimiser.py")
    assert ir._repr_svg_() is None and ir.main._repr_svg_() is None


@needs_dot
def test_repr_svg_of_graph_and_ir():
    ir = load_target("examples/custom_optimiser.py")
    g = ir.graphs["Adam_subgraph(1)"]
    text = svg_text(g._repr_svg_())
    assert {f"{op.kind}.{op.id}" for op in g.ops} <= set(re.findall(r"\w+\.\d+", text))
    assert "Call.109" not in text and "Call.109" in svg_text(ir._repr_svg_())


def _lines(dot_source: str, pattern: str) -> list[str]:
    return [x for x in dot_source.splitlines() if re.search(pattern, x)]


def test_drawing_conventions():
    ir = clone(load_target("examples/custom_optimiser.py"))
    run_pipeline(ir, level=3, stop_after="fuse_elementwise")
    src = to_dot(ir).source
    graphs = list(ir.graphs.values())
    # in-place writes: one bold red edge per modified input
    assert len(_lines(src, r'label="in place"')) == sum(len(op.modifies) for g in graphs for op in g.ops)
    # by-ref inputs are double octagons, other inputs are not
    for g in graphs:
        for i, v in enumerate(g.inputs):
            node = _lines(src, rf"^\s*v{v.id} \[")[0]
            assert ("doubleoctagon" in node) == (i in g.by_ref), node
    # constraints are dashed edges that do not move the layout
    assert len(_lines(src, r"style=dashed.*constraint=false|constraint=false.*style=dashed")) == sum(
        len(g.constraints) for g in graphs)
    # each call points at the cluster of the graph it calls
    calls = [op for g in graphs for op in g.ops if op.called is not None]
    assert len(_lines(src, r"lhead=cluster_g\d+")) == len(calls)
    # fused kernels are clusters holding one node per primitive
    for op in (op for g in graphs for op in g.ops if op.kind == "FusedKernel"):
        assert f"subgraph cluster_op{op.id} {{" in src and f'label="FusedKernel.{op.id}' in src
        assert len(_lines(src, rf"^\s*op{op.id}_n\d+ \[")) == len(op.attrs["expr"].nodes)


def test_alias_groups_share_a_colour():
    ir = load_target("examples/custom_optimiser.py")
    g = ir.graphs["Adam_subgraph(0)"]
    src = to_dot(ir, [g]).source
    colour = {}
    for v in g.values.values():
        node = _lines(src, rf"^\s*v{v.id} \[")
        if node:
            colour[v.id] = re.search(r'color="?([#\w]+)', node[0]).group(1)
    by_storage: dict[int, set[str]] = {}
    for vid, c in colour.items():
        by_storage.setdefault(g.values[vid].storage, set()).add(c)
    multi = {s: cs for s, cs in by_storage.items() if sum(v.storage == s for v in g.values.values()) > 1}
    assert multi and all(len(cs) == 1 for cs in multi.values())  # one colour per storage
    assert len({next(iter(cs)) for cs in multi.values()}) == len(multi)  # different storages differ


@pytest.mark.parametrize("out, fmt", [("x.txt", None), ("x.svg", "jpeg")])
def test_unknown_format_is_an_error(cli, tmp_path, out, fmt):
    r = cli("tools.viz", "examples/custom_optimiser.py", "-o", tmp_path / out, *(["--format", fmt] if fmt else []))
    assert r.returncode == 2 and ("cannot tell the format" in r.stderr or "invalid choice: 'jpeg'" in r.stderr)


def test_unknown_graph_is_an_error(cli, tmp_path):
    r = cli("tools.viz", "examples/custom_optimiser.py", "-o", tmp_path / "x.dot", "--graph", "nope")
    assert r.returncode == 2 and "no graph named 'nope'" in r.stderr and not (tmp_path / "x.dot").exists()
