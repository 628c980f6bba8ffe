"""The command-line tools on hand-edited files and the output forms users type: a clear `error:` line and
exit status 2, never a traceback; `--target onnx -o DIR` and `--emit so,header` do what they say."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

EXAMPLE = "examples/custom_optimiser.py"


def _cli(module: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """A saved IR whose Accumulate lost its modifies (used to reach a KeyError inside tools.viz)."""
    tmp = tmp_path_factory.mktemp("cli")
    r = _cli("tools.compile", EXAMPLE, "--emit", "ll", "-o", tmp / "x.ll")  # warm the import caches
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(ROOT / "examples"))
    import custom_optimiser

    ir, _ = custom_optimiser.build_ir()
    ir.core.save(tmp / "p.json")
    d = json.loads((tmp / "p.json").read_text())
    op = next(o for g in d["graphs"] for o in g["ops"] if o["kind"] == "Accumulate")
    op["modifies"], op["aliases"], op["updates"] = [1] * 1, {}, {}
    (tmp / "edited.json").write_text(json.dumps(d))
    return tmp / "edited.json"


@pytest.mark.parametrize("tool,extra", [("tools.print_schedule", []), ("tools.viz", ["-o", "out.svg"]),
                                        ("tools.compile", ["--emit", "so", "-o", "lib.so"])])
def test_a_hand_edited_file_gives_a_clear_error(tool, extra, edited):
    r = _cli(tool, edited, *[str(edited.parent / a) if "." in a else a for a in extra])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "edited.json" in r.stderr and "error" in r.stderr


def test_onnx_into_a_folder_writes_name_dot_onnx(tmp_path):
    pytest.importorskip("onnx")
    r = _cli("tools.compile", EXAMPLE, "--target", "onnx", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "custom_optimiser.onnx").stat().st_size > 0


def test_emit_takes_a_comma_separated_list(tmp_path):
    r = _cli("tools.compile", EXAMPLE, "--emit", "so,header", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["liboptc.so", "optc.h"]
    r = _cli("tools.compile", EXAMPLE, "--emit", "so,hdr", "-o", tmp_path)
    assert r.returncode == 2 and "unknown kind(s) ['hdr']" in r.stderr
