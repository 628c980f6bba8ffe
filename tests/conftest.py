"""Shared test helpers. `assert_matches_reference` is the differential-testing backbone."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from session_helpers import (  # noqa: E402, F401  (re-exported for old imports)
    assert_close, assert_matches_reference, run_session, tolerance)


@pytest.fixture
def matches_reference():
    return assert_matches_reference



# a skip whose reason tests/skip_allowlist.txt does not list fails the session (tests/skip_policy.py)
from skip_policy import (  # noqa: E402, F401
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

# `pytest --optc-threads N`: every Session defaults to N threads (tests/thread_option.py); `pytest
# --target-cpu NAME`: every Session compiles for CPU NAME (tests/target_option.py)
import target_option  # noqa: E402
import thread_option  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    thread_option.pytest_addoption(parser)
    target_option.pytest_addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    thread_option.pytest_configure(config)
    target_option.pytest_configure(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [h for h in (thread_option.pytest_report_header(config), target_option.pytest_report_header(config)) if h]
