"""benchmarks.common.write_result -> benchmarks.report: the README's figures come from result files only."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from benchmarks import report
from benchmarks.common import Table, write_result


def _write(tmp_path, ours: float, when: dt.datetime):
    t = Table("main", "One step (ms)", ["case", "ours", "torch"], notes=["paused protocol"])
    t.add(case="1 x 16M", ours=ours, torch=11.1)
    return write_result("demo", [t], command="python benchmarks/demo.py --quick", settings={"threads": 2},
                        notes=["shared machine"], results_dir=tmp_path / "results", started=when)


def test_result_file_holds_rows_command_and_machine(tmp_path):
    path = _write(tmp_path, 9.654, dt.datetime(2026, 12, 4, 20, 0, tzinfo=dt.timezone.utc))
    data = json.loads(path.read_text())
    assert path.name == "20261204T200000Z.json" and path.parent.name == "demo"
    assert data["tables"][0]["rows"] == [{"case": "1 x 16M", "ours": 9.654, "torch": 11.1}]
    assert data["command"] == "python benchmarks/demo.py --quick"
    assert data["settings"] == {"threads": 2}
    assert data["machine"]["cpu_count"] >= 1 and "loadavg_1min" in data["machine"]


def test_table_refuses_unknown_columns():
    t = Table("main", "x", ["a"])
    with pytest.raises(ValueError, match=r"\['b'\]"):
        t.add(a=1, b=2)


def test_report_rewrites_block_from_newest_file_and_check_detects_stale(tmp_path):
    _write(tmp_path, 9.654, dt.datetime(2026, 12, 4, 20, 0, tzinfo=dt.timezone.utc))
    _write(tmp_path, 8.123, dt.datetime(2026, 12, 5, 9, 30, tzinfo=dt.timezone.utc))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:demo -->\nhand-typed 1.23\n<!-- /bench:demo -->\noutro\n")
    args = ["--readme", str(readme), "--results", str(tmp_path / "results")]
    assert report.main(args + ["--check"]) == 1
    assert report.main(args) == 0
    text = readme.read_text()
    assert "hand-typed" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| 1 x 16M | 8.12 | 11.1 |" in text          # the newest run, not the older 9.65
    assert "2026-12-05 09:30:00 UTC" in text and "- paused protocol" in text and "- shared machine" in text
    assert report.main(args + ["--check"]) == 0


def test_report_one_table_by_key_and_clear_errors(tmp_path, capsys):
    _write(tmp_path, 9.654, dt.datetime(2026, 12, 4, 20, 0, tzinfo=dt.timezone.utc))
    readme = tmp_path / "README.md"
    args = ["--readme", str(readme), "--results", str(tmp_path / "results")]
    readme.write_text("<!-- bench:demo:main -->\n<!-- /bench:demo:main -->\n")
    assert report.main(args) == 0 and "| 1 x 16M | 9.65 | 11.1 |" in readme.read_text()
    readme.write_text("<!-- bench:demo:nope -->\n<!-- /bench:demo:nope -->\n")
    assert report.main(args) == 2 and "has no table 'nope'" in capsys.readouterr().err
    readme.write_text("<!-- bench:absent -->\n<!-- /bench:absent -->\n")
    assert report.main(args) == 2 and "no results for benchmark 'absent'" in capsys.readouterr().err


@pytest.mark.parametrize("x, text", [(0.5724, "0.572"), (9.654, "9.65"), (57.84, "57.8"), (1234.5, "1,234"),
                                     (16777216, "16,777,216"), (None, "—"), ("1.60x", "1.60x")])
def test_number_format(x, text):
    assert report.fmt(x) == text


def test_readme_benchmark_tables_are_rendered_from_the_committed_results():
    """No hand-typed figures: every bench block of README.md is exactly what the newest result renders."""
    assert report.main(["--check"]) == 0, "run `python -m benchmarks.report` (after the benchmarks)"
    readme = report.README.read_text()
    assert {m.group("name") for m in report.BLOCK.finditer(readme)} >= {"adam_step", "torch_optim"}


def test_a_real_time_priority_run_says_so_in_its_header(tmp_path):
    path = _write(tmp_path, 9.654, dt.datetime(2026, 12, 4, 20, 0, tzinfo=dt.timezone.utc))
    data = json.loads(path.read_text())
    data["_file"] = "x.json"
    assert "other jobs shared the cores" in report.header(data) and "chrt" not in report.header(data)
    data["machine"]["realtime_priority"] = 20
    text = report.header(data)
    assert "real-time priority (`chrt -f 20`)" in text and "got no CPU while it ran" in text
