"""Hand-edited saved IRs that parse but break what native code relies on: Ir.load refuses each with an
IRFormatError naming the file and the problem, and `tools.compile --emit so` refuses to build a library
from it. Every case runs in a child process (before these checks, several crashed it)."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops

from .conftest import ROOT, run_cases
from .test_malformed_ir import PRELUDE


def _program() -> popxl.Ir:
    """Streams both ways, an in-place update, a subgraph with a by-ref input, a constant, attributes."""
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.h2d_stream((4,), popxl.float32, name="x")
        y = popxl.d2h_stream((4,), popxl.float32, name="y")
        w = popxl.variable(np.ones(4, np.float32), name="w")
        c = popxl.constant(np.full(4, 0.5, np.float32), name="c")
        t = ops.host_load(x, "t")
        ops.var_updates.accumulate_(w, t, f=0.9)
        ops.host_store(y, ops.mul(w, c))
    return ir


def _op(d: dict, kind: str) -> dict:
    return next(o for g in d["graphs"] for o in g["ops"] if o["kind"] == kind)


def _value(d: dict, vid: int) -> dict:
    return next(v for g in d["graphs"] for v in g["values"] if v["id"] == vid)


def _stream(d: dict, name: str) -> dict:
    return next(s for s in d["streams"] if s["name"] == name)


def _edits() -> dict[str, tuple[str, callable]]:
    """case -> (words the error must contain, edit of the saved JSON)."""
    def d2h_shape(d):
        _stream(d, "y")["shape"] = [100000]

    def h2d_shrunk(d):
        _stream(d, "x")["shape"] = [1]

    def stream_dtype(d):
        _stream(d, "x")["dtype"] = "float64"

    def unknown_stream(d):
        _op(d, "HostStore")["attrs"]["stream"] = "nowhere"

    def direction(d):
        _stream(d, "y")["direction"] = "h2d"

    def two_stores(d):
        g = d["graphs"][0]
        st = copy.deepcopy(_op(d, "HostStore"))
        st["id"] = 999
        g["ops"].append(st)

    def var_data(d):
        body = next(iter(d["variables"].values()))
        body["shape"], body["data"] = [2], [1.0, 2.0]

    def const_dtype(d):
        body = next(iter(d["constants"].values()))
        body["dtype"] = "float64"

    def attr_null(d):
        _op(d, "Accumulate")["attrs"]["f"] = None

    def modifies_removed(d):
        op = _op(d, "Accumulate")
        op["modifies"], op["aliases"] = [], {}

    def shared_storage(d):
        mul = _op(d, "Mul")
        _value(d, mul["outputs"][0])["storage"] = _value(d, mul["inputs"][0])["storage"]

    def constant_written(d):
        op = _op(d, "Accumulate")
        c = next(v for v in d["graphs"][0]["values"] if v["kind"] == "constant")
        out = _value(d, op["outputs"][0])
        op["inputs"][0] = c["id"]
        out["storage"], out["version"] = c["storage"], 1

    def nht0(d):
        d["num_host_transfers"] = 0

    def huge(d):
        _stream(d, "x")["shape"] = [2 ** 32, 2 ** 32]

    def stream_a_number(d):
        d["streams"][0] = 5

    # found by tools.fuzz_files: each loaded, then failed late in the interpreter (KeyError, ScheduleError,
    # AssertionError, IndexError) or escaped Ir.load as OverflowError
    def attr_removed(d):
        del _op(d, "Accumulate")["attrs"]["f"]

    def constraint_to_itself(d):
        i = _op(d, "Mul")["id"]
        d["graphs"][0]["constraints"].append([i, i])

    def call_without_graph(d):  # a Call whose "called" was set to null: its type rule still reads out_specs
        op = _op(d, "Mul")
        op["kind"], op["attrs"] = "Call", {"out_specs": [[[4], {"$dtype": "float32"}]]}

    def store_without_input(d):
        op = _op(d, "HostStore")
        op["inputs"], op["roles"] = [], []

    def data_null(d):
        next(iter(d["variables"].values()))["data"][0] = None

    def data_overflows(d):
        next(iter(d["variables"].values()))["data"][0] = 1e39

    def int_data_overflows(d):
        body = next(iter(d["variables"].values()))
        body["dtype"], body["data"] = "int32", [2 ** 40] * len(body["data"])

    return {
        "an attribute the op reads removed": ("cannot read its attrs", attr_removed),
        "an op ordered before itself": ("before itself", constraint_to_itself),
        "a Call that calls no graph": ("calls no graph", call_without_graph),
        "a host_store that stores nothing": ("HostStore reads one", store_without_input),
        "null in variable data": ("a list of numbers", data_null),
        "variable data beyond float32": ("not a finite float32", data_overflows),
        "variable data beyond int32": ("does not fit int32", int_data_overflows),
        "a stream entry that is a number": ("expected an object", stream_a_number),
        "d2h stream shape edited": ("same shape and dtype", d2h_shape),
        "h2d stream shrunk": ("same shape and dtype", h2d_shrunk),
        "stream dtype edited": ("same shape and dtype", stream_dtype),
        "host_store to an unknown stream": ("does not declare", unknown_stream),
        "stream direction swapped": ("needs a d2h stream", direction),
        "two host_stores to one stream as one transfer": ("numbered as host transfers [0, 0]", two_stores),
        "variable data of another shape": ("its data is", var_data),
        "constant data of another dtype": ("its data is", const_dtype),
        "attribute set to null": ("must be a number", attr_null),
        "modifies removed": ("Accumulate modifies [0]", modifies_removed),
        "two values share a storage": ("share storage", shared_storage),
        "constant updated in place": ("constant", constant_written),
        "num_host_transfers 0": ("num_host_transfers must be an integer >= 1", nht0),
        "2**64-element stream": ("more than any host can address", huge),
    }


EDITS = _edits()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("edited")
    _program().core.save(tmp / "good.json")
    good = json.loads((tmp / "good.json").read_text())
    out = {"unedited": tmp / "good.json"}
    for k, (case, (_, edit)) in enumerate(EDITS.items()):
        d = copy.deepcopy(good)
        edit(d)
        out[case] = tmp / f"edit{k}.json"
        out[case].write_text(json.dumps(d))
    return out


@pytest.fixture(scope="module")
def outcomes(files, tmp_path_factory) -> dict:
    cache = str(tmp_path_factory.mktemp("cache"))
    return run_cases(PRELUDE, {n: f"check_file({str(p)!r}, {cache!r})" for n, p in files.items()})


def test_the_unedited_file_loads_and_runs_on_both_devices(outcomes):
    assert (outcomes["unedited"].exc, outcomes["unedited"].msg) == ("Loaded", "interpreter: ran; cpu: ran")


@pytest.mark.parametrize("case", list(EDITS))
def test_an_edit_that_breaks_an_invariant_is_refused_at_load(case, outcomes, files):
    got = outcomes[case]
    assert got.status == "raised" and got.exc == "IRFormatError", f"{case}: {got}"
    assert files[case].name in got.msg and EDITS[case][0] in got.msg, got.msg


@pytest.mark.parametrize("case", ["d2h stream shape edited", "h2d stream shrunk", "modifies removed"])
def test_compile_emit_so_refuses_the_edited_file(case, files, tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.compile", str(files[case]), "--emit", "so", "-o",
                        str(tmp_path / "lib.so")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert files[case].name in r.stderr and not (tmp_path / "lib.so").exists()
