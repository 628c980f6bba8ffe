"""Run snippets of user code in a child process: misuse must raise a Python exception there, never kill it.

`run_cases(prelude, cases)` runs every case (a code snippet) after `prelude` in ONE child interpreter,
each in its own try/except, and returns {case: Outcome}. A case that kills the child (a crash in
native code) shows up as Outcome("died", ...) for it, naming the signal, and every later case is
re-run in a fresh child.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRIVER = r'''
import builtins, json, sys
CASES = json.loads(sys.stdin.read())
def report(name, status, exc="", msg=""):
    print("@@" + json.dumps({"case": name, "status": status, "exc": exc, "msg": msg}), flush=True)
for name, code in CASES:
    print("@@" + json.dumps({"case": name, "status": "started"}), flush=True)
    try:
        exec(builtins.compile(code, f"<case {name}>", "exec"), dict(globals()))
    except BaseException as e:
        report(name, "raised", type(e).__name__, str(e))
    else:
        report(name, "returned")
'''


@dataclass
class Outcome:
    status: str  # "raised" | "returned" | "died"
    exc: str = ""
    msg: str = ""

    def __str__(self) -> str:
        return f"{self.status} {self.exc}: {self.msg}"


def run_cases(prelude: str, cases: dict[str, str], timeout: float = 300) -> dict[str, Outcome]:
    todo = list(cases.items())
    out: dict[str, Outcome] = {}
    script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(prelude) + DRIVER
    while todo:
        r = subprocess.run([sys.executable, "-c", script], input=json.dumps(todo), capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT)
        current = None
        for line in r.stdout.splitlines():
            if not line.startswith("@@"):
                continue
            d = json.loads(line[2:])
            if d["status"] == "started":
                current = d["case"]
            else:
                out[d["case"]] = Outcome(d["status"], d["exc"], d["msg"])
                current = None
        if current is None:
            if r.returncode != 0:  # the prelude itself failed
                raise RuntimeError(f"child process failed before any case ran ({r.returncode}):\n{r.stderr[-3000:]}")
            break
        out[current] = Outcome("died", f"exit status {r.returncode}", r.stderr[-2000:])
        todo = [(n, c) for n, c in todo if n not in out]
    return out
