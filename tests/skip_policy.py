"""A skipped test is a failed test unless its reason is allowlisted (tests/skip_allowlist.txt).

A skip that hides a missing dependency (torch, onnx, gcc, dot, ...) would let CI pass without ever
running those tests; so tests/conftest.py collects every skip and fails the session when one's
reason matches no allowlist entry. The allowlist has one entry per line:

    <regular expression matched against the skip reason> :: <why this skip is legitimate>
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).resolve().parent / "skip_allowlist.txt"


@dataclass(frozen=True)
class Entry:
    pattern: re.Pattern
    why: str


def parse_allowlist(text: str, source: str = "skip_allowlist.txt") -> list[Entry]:
    entries = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, sep, why = line.partition(" :: ")
        if not sep or not why.strip() or not pattern.strip():
            raise ValueError(f"{source}:{no}: expected '<regex> :: <why the skip is legitimate>', got {line!r}")
        try:
            entries.append(Entry(re.compile(pattern.strip()), why.strip()))
        except re.error as e:
            raise ValueError(f"{source}:{no}: bad regular expression {pattern.strip()!r}: {e}") from None
    return entries


def load_allowlist(path: Path | None = None) -> list[Entry]:
    path = path or ALLOWLIST
    return parse_allowlist(path.read_text(), str(path))


def skip_reason(longrepr: object) -> str:
    """The reason of a skip report (pytest stores (file, line, 'Skipped: reason'))."""
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def unallowed(skips: list[tuple[str, str]], entries: list[Entry]) -> list[tuple[str, str]]:
    """The (test id, reason) pairs whose reason no entry matches."""
    return [(nodeid, reason) for nodeid, reason in skips if not any(e.pattern.search(reason) for e in entries)]


# --- pytest hooks (imported by tests/conftest.py) ---
_skips: list[tuple[str, str]] = []
_unallowed: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid, skip_reason(report.longrepr)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _skips.append((report.nodeid, skip_reason(report.longrepr)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: its reports reach the controller
        return
    _unallowed[:] = unallowed(_skips, load_allowlist())
    if _unallowed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: object) -> None:
    if _unallowed:
        tr = terminalreporter
        tr.section("skips not in tests/skip_allowlist.txt (they fail the session)", red=True)
        for nodeid, reason in _unallowed:
            tr.line(f"{nodeid}: {reason}")
        tr.line("Install what is missing (make setup), fix the test, or add the reason with a "
                "justification to tests/skip_allowlist.txt.")
