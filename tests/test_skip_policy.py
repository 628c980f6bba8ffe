"""The skip policy (tests/skip_policy.py): a skip whose reason is not allowlisted fails the session."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skip_policy import load_allowlist, parse_allowlist, skip_reason, unallowed

TESTS = Path(__file__).resolve().parent


def test_allowlist_entries_need_a_reason():
    entries = parse_allowlist("# comment\n\n^needs x$ :: x is optional because y\n")
    assert [(e.pattern.pattern, e.why) for e in entries] == [("^needs x$", "x is optional because y")]
    with pytest.raises(ValueError, match=r"allow:1: expected '<regex> :: <why"):
        parse_allowlist("needs torch\n", "allow")
    with pytest.raises(ValueError, match="allow:1: expected"):
        parse_allowlist("needs torch ::  \n", "allow")
    with pytest.raises(ValueError, match="bad regular expression"):
        parse_allowlist("needs ( :: because\n", "allow")


def test_the_committed_allowlist_parses_and_does_not_excuse_missing_dependencies():
    entries = load_allowlist()
    for reason in ("could not import 'torch': No module named 'torch'", "needs gcc", "needs g++",
                   "could not import 'onnxruntime': No module named 'onnxruntime'",
                   "Graphviz's dot is not installed (make setup)", "mpiexec not found"):
        assert unallowed([("t", reason)], entries) == [("t", reason)], reason
    assert unallowed([("t", "one large size per storage width is enough")], entries) == []


def test_skip_reason_from_a_report():
    assert skip_reason(("f.py", 3, "Skipped: needs gcc")) == "needs gcc"


CONFTEST = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
import skip_policy
skip_policy.ALLOWLIST = Path(__file__).parent / "allow.txt"
from skip_policy import pytest_collectreport, pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary
"""
TESTFILE = """
import pytest
def test_ok():
    pass
def test_pruned():
    pytest.skip("pruned on purpose")
def test_needs_frob():
    pytest.skip("needs frobnicator")
"""


@pytest.mark.parametrize("xdist", [False, True])
def test_session_fails_on_an_unlisted_skip_and_passes_when_listed(tmp_path, xdist):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_x.py").write_text(TESTFILE)
    (tmp_path / "test_mod.py").write_text("import pytest\npytest.importorskip('no_such_module_xyz')\n")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)] + (["-n", "2"] if xdist else [])
    (tmp_path / "allow.txt").write_text("^pruned on purpose$ :: parametrisation pruning\n")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "test_x.py::test_needs_frob: needs frobnicator" in r.stdout, r.stdout
    assert "no_such_module_xyz" in r.stdout and "test_pruned" not in r.stdout.split("skips not in")[1]
    (tmp_path / "allow.txt").write_text("^pruned on purpose$ :: pruning\nfrobnicator|no_such_module :: optional\n")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
