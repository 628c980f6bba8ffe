"""compile command line (LLVM, ONNX, Poplar through one TARGET convention) and the demo artefacts."""
from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

from compiler.ir import Ir, print_schedule
from tools.compile import main as optc
from tools.target import TargetError, load_target


@pytest.mark.parametrize("kind, marker, saved", [("header", "optc_", False), ("ll", "define ", True)],
                         ids=["header_from_python", "ll_from_saved_ir"])
def test_emit_llvm(cli, tmp_path, kind, marker, saved):
    target = "examples/custom_optimiser.py"
    if saved:
        load_target(target).save(tmp_path / "p.json")
        target = tmp_path / "p.json"
    out = tmp_path / f"p.{kind}"
    r = cli("tools.compile", target, "--emit", kind, "-o", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out}" and marker in out.read_text()


def test_onnx_target(cli, tmp_path):
    onnx = pytest.importorskip("onnx")
    r = cli("tools.compile", "examples/custom_optimiser.py", "--target", "onnx", "-o", tmp_path / "p.onnx")
    assert r.returncode == 0, r.stderr
    onnx.checker.check_model(onnx.load(str(tmp_path / "p.onnx")))


def test_poplar_target_writes_a_program(cli, tmp_path):
    r = cli("tools.compile", "examples/custom_optimiser.py", "--target", "poplar", "-o", tmp_path / "pop")
    assert r.returncode == 0, r.stderr
    assert {"program.cpp", "CMakeLists.txt", "manifest.json"} <= {p.name for p in (tmp_path / "pop").iterdir()}


def _unimportable(monkeypatch, name: str, *importers: str) -> None:
    """Make `import name` fail as if it were not installed (and forget the modules that imported it)."""
    for mod in [m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in (name, *importers))]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, name, None)


def test_missing_optional_package_is_a_clear_error(monkeypatch, tmp_path, capsys):
    _unimportable(monkeypatch, "onnx", "compiler.backends.onnx")
    assert optc(["examples/custom_optimiser.py", "--target", "onnx", "-o", str(tmp_path / "p.onnx")]) == 2
    assert "ONNX export needs the onnx package: pip install onnx" in capsys.readouterr().err


def test_a_broken_module_of_ours_fails_loudly(monkeypatch, tmp_path):
    _unimportable(monkeypatch, "compiler.backends.poplar")
    with pytest.raises(ModuleNotFoundError, match="compiler.backends.poplar"):
        optc(["examples/custom_optimiser.py", "--target", "poplar", "-o", str(tmp_path / "pop")])


@pytest.mark.parametrize("body, func, error", [
    ("def build_ir():\n    return make()[0]\n", None, None),
    ("def build_ir():\n    return make()\n", None, None),
    ("def other():\n    return make()\n", "other", None),
    ("def build_ir():\n    return 'x'\n", None, "returned str, not an Ir"),
    ("def builder():\n    return make()\n", None, "defines no build_ir()"),
])
def test_target_convention(tmp_path, body, func, error):
    (tmp_path / "prog.py").write_text(
        "from compiler.ir import Ir\n\n\ndef make():\n    return Ir(), {}\n\n\n" + body +
        "\n\nif __name__ == '__main__':\n    raise SystemExit('the main block must not run')\n")
    target = str(tmp_path / "prog.py") + (f":{func}" if func else "")
    if error:
        with pytest.raises(TargetError, match=error):
            load_target(target)
    else:
        assert type(load_target(target)) is Ir


def test_demo_artifacts(cli, tmp_path):
    r = cli("tools.demo_artifacts", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    assert str(out.resolve()) in r.stdout
    ext = "svg" if shutil.which("dot") else "dot"
    names = ["adam.json", "adam_before.txt", "adam_after.txt", "adam_diff.txt", f"adam_before.{ext}", f"adam_after.{ext}"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    built = Ir.load(out / "adam.json")
    assert (out / "adam_before.txt").read_text() == "\n".join(print_schedule(g) for g in built.graphs.values()) + "\n"
    after = (out / "adam_after.txt").read_text()
    assert "FusedKernel." in after and "Accumulate." not in after
    assert "-    Accumulate.100 " in (out / "adam_diff.txt").read_text()
    if ext == "svg":
        ET.parse(out / "adam_after.svg")  # well-formed
        assert "FusedKernel." in (out / "adam_after.svg").read_text()
