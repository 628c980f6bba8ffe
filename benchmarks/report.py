"""Render the README's benchmark tables from the committed result history.

    python -m benchmarks.report            # rewrite every bench block in README.md
    python -m benchmarks.report --check    # exit 1 if a block differs from its rendering
    python -m benchmarks.report --print    # print every benchmark's newest tables

A block in README.md is the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` (or
`<!-- bench:NAME:KEY -->` ... `<!-- /bench:NAME:KEY -->` for one table of that benchmark). Its
content is generated from the newest file in benchmarks/results/NAME/ and nothing else: figures in
those blocks are never typed by hand. A result file is what benchmarks.common.write_result wrote.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- bench:(?P<name>[\w.-]+)(?::(?P<key>[\w.-]+))? -->\n)(?P<body>.*?)"
                   r"(<!-- /bench:(?P=name)(?::(?P=key))? -->)", re.S)


class ReportError(Exception):
    pass


def newest(name: str, results: Path = RESULTS) -> dict:
    """The newest result file of one benchmark (file names are UTC times, so they sort)."""
    files = sorted((results / name).glob("*.json"))
    if not files:
        raise ReportError(f"no results for benchmark {name!r} in {results / name}: run the benchmark "
                          f"(see 'make bench') before rendering its README block")
    data = json.loads(files[-1].read_text())
    data["_file"] = files[-1].relative_to(ROOT).as_posix() if files[-1].is_relative_to(ROOT) else str(files[-1])
    return data


def fmt(x: object) -> str:
    """Numbers at about three significant figures; strings as they are; missing as a dash."""
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def render_table(table: dict) -> str:
    cols = table["columns"]
    lines = [f"**{table['title']}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table["rows"]:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in cols) + " |")
    if table.get("notes"):
        lines += [""] + [f"- {n}" for n in table["notes"]]
    return "\n".join(lines)


def header(data: dict) -> str:
    m = data["machine"]
    torch = f", torch {m['torch']}" if m.get("torch") else ""
    start = "not recorded" if m.get("loadavg_1min") is None else m["loadavg_1min"]
    if m.get("realtime_priority"):
        load = (f"run at real-time priority (`chrt -f {m['realtime_priority']}`): other jobs, counted in the load "
                f"average ({start} at start, {data['loadavg_end']} at end), got no CPU while it ran, apart from "
                "the 5% of each second the kernel keeps for them")
    else:
        load = (f"load average {start} at start, {data['loadavg_end']} at end "
                "(a load above the CPU count means other jobs shared the cores)")
    return (f"*{data['time'].replace('T', ' ').rstrip('Z')} UTC, commit `{data['commit']}`, "
            f"`{data['command']}` — {m['cpu']}, {m['cpu_count']} CPUs{torch}; {load}. "
            f"Source: `{data['_file']}`.*")


def render(name: str, key: str | None = None, results: Path = RESULTS) -> str:
    data = newest(name, results)
    tables = data["tables"]
    if key is not None:
        tables = [t for t in tables if t["key"] == key]
        if not tables:
            raise ReportError(f"benchmark {name!r} has no table {key!r} in {data['_file']}; "
                              f"it has {[t['key'] for t in data['tables']]}")
    parts = [header(data)]
    if key is None and data.get("notes"):
        parts.append("\n".join(f"- {n}" for n in data["notes"]))
    parts += [render_table(t) for t in tables]
    return "\n\n".join(parts) + "\n"


def rewrite(text: str, results: Path = RESULTS) -> str:
    def one(m: re.Match) -> str:
        return m.group(1) + render(m.group("name"), m.group("key"), results) + m.group(5)
    return BLOCK.sub(one, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--results", type=Path, default=RESULTS)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if README's blocks are not up to date")
    mode.add_argument("--print", action="store_true", help="print the newest tables of every benchmark")
    args = ap.parse_args(argv)
    try:
        if args.print:
            for folder in sorted(p for p in args.results.iterdir() if p.is_dir() and any(p.glob("*.json"))):
                print(f"## {folder.name}\n\n{render(folder.name, results=args.results)}")
            return 0
        old = args.readme.read_text()
        if not BLOCK.search(old):
            raise ReportError(f"{args.readme} has no <!-- bench:NAME --> blocks")
        new = rewrite(old, args.results)
    except ReportError as e:
        print(f"benchmarks.report: {e}", file=sys.stderr)
        return 2
    if args.check:
        if new != old:
            print(f"benchmarks.report: {args.readme} is out of date with {args.results}; "
                  f"run 'python -m benchmarks.report'", file=sys.stderr)
            return 1
        return 0
    if new != old:
        args.readme.write_text(new)
        print(f"updated {args.readme}")
    else:
        print(f"{args.readme} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
