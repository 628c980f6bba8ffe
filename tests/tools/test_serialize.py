"""IR save/load: exact round trips of the example programs and of every attribute kind, and clear errors."""
from __future__ import annotations

import json
import math
import re

import ml_dtypes
import numpy as np
import pytest

from compiler.driver import CompileOptions, compile
from compiler.ir import DType, Ir, TensorSpec, print_schedule
from compiler.ir.jsonvalues import dumps
from compiler.ir.serialize import IRFormatError
from compiler.ops import Expr
from passes.pipeline import run_pipeline
from tools.target import load_target


def fingerprint(ir: Ir) -> list:
    """Everything an Ir holds, with attribute values as repr (so 1 != 1.0 and (1,) != [1])."""
    out: list = [ir.replication_factor, ir.num_host_transfers, ir._op_counter, ir._value_counter,
                 ir._graph_counter, ir._tensor_counter, repr(ir.meta),
                 [(s.name, s.spec, s.direction) for s in ir.streams.values()]]
    for k, a in list(ir.variables.items()) + list(ir.constants.items()):
        out.append((k, a.dtype.str, a.shape, a.tobytes()))
    for g in ir.graphs.values():
        out.append((g.id, [v.id for v in g.inputs], g.input_names, sorted(g.by_ref), [v.id for v in g.outputs],
                    [(a.id, b.id) for a, b in g.constraints], [[o.id for o in x] for x in g.unordered_groups],
                    repr(g.info)))
        out += [(v.id, v.name, v.spec, v.kind, v.storage, v.version, v.producer and v.producer.id, v.graph.id)
                for v in g.values.values()]
        out += [(op.id, op.kind, op.name, op.roles, [v.id for v in op.inputs], [v.id for v in op.outputs],
                 {i: v.id for i, v in op.updates.items()}, op.modifies, op.aliases, op.called and op.called.id,
                 op.handles and [v.id for v in op.handles], op.source, repr(op.attrs)) for op in g.ops]
    return out


def run_interpreter(ir: Ir) -> tuple[dict, dict]:
    """Variables after one step and the host outputs, on the reference interpreter with seeded stream data."""
    rng = np.random.default_rng(0)
    streams = {}
    for s in ir.streams.values():
        if s.direction == "h2d":
            shape = (ir.num_host_transfers, *s.spec.shape)
            data = rng.integers(0, 2, shape) if not s.spec.dtype.is_float else rng.standard_normal(shape)
            streams[s.name] = data.astype(s.spec.dtype.numpy)
    variables = {k: np.array(a, copy=True) for k, a in ir.variables.items()}
    outs = compile(ir, CompileOptions(device="interpreter", level=0)).run(variables, streams, ir.num_host_transfers)
    return variables, outs


@pytest.mark.parametrize("optimised", [False, True], ids=["as_built", "after_pipeline"])
def test_examples_round_trip(tmp_path, build, example, optimised):
    ir = build(example)
    if optimised:
        run_pipeline(ir, level=3)  # every pass, MultiKernel too
    ir.save(tmp_path / "p.json")
    back = Ir.load(tmp_path / "p.json")
    assert fingerprint(back) == fingerprint(ir)
    assert [print_schedule(g) for g in back.graphs.values()] == [print_schedule(g) for g in ir.graphs.values()]
    back.save(tmp_path / "q.json")
    assert (tmp_path / "q.json").read_text() == (tmp_path / "p.json").read_text()
    (va, oa), (vb, ob) = run_interpreter(ir), run_interpreter(back)
    assert va.keys() == vb.keys() and oa.keys() == ob.keys()
    for k in va:
        np.testing.assert_array_equal(vb[k], va[k], err_msg=f"variable {k}")
    for k in oa:
        np.testing.assert_array_equal(ob[k], oa[k], err_msg=f"stream {k}")


def test_session_results_identical_after_reload(tmp_path):
    from session_helpers import run_session

    ir = load_target("examples/custom_optimiser.py")
    ir.save(tmp_path / "p.json")
    want, _ = run_session(load_target("examples/custom_optimiser.py"), "interpreter", runs=2)
    got, _ = run_session(Ir.load(tmp_path / "p.json"), "interpreter", runs=2)
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_npz_data_beside_the_file(tmp_path, build):
    ir = build("examples/mnist_adam.py")
    ir.save(tmp_path / "m.json", data="npz")
    assert (tmp_path / "m.npz").exists() and len((tmp_path / "m.json").read_text()) < 200_000
    assert fingerprint(Ir.load(tmp_path / "m.json")) == fingerprint(ir)


BF16 = ml_dtypes.bfloat16
ATTRS = {
    "nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0.0": -0.0, "tiny": 5e-324, "tenth": 0.1,
    "np_float32": np.float32(0.1), "np_float16": np.float16(-2.5), "np_bf16": BF16(3.0), "np_int64": np.int64(-7),
    "np_bool": np.bool_(True), "np_nan32": np.float32("nan"), "bool": True, "none": None, "big_int": 2**70,
    "nested_tuple": (1, (2.0, "x"), ()), "list": [1, [2, (3,)]], "dict": {"a": 1, "b": (2,)}, "int_keys": {1: "x", 2: None},
    "dollar_key": {"$x": 1, "y": 2}, "dtype": DType.bfloat16, "array": np.arange(20, dtype=np.int32).reshape(4, 5),
    "bf16_array": np.array([1.5, -0.0, np.inf], dtype=BF16), "nan_array": np.array([np.nan, 1.0], dtype=np.float16),
    "scalar_array": np.array(7.0, dtype=np.float64), "empty_array": np.zeros((0, 3), np.float32),
}


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, (np.generic, float)):
        return np.asarray(a).tobytes() == np.asarray(b).tobytes()
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("data", ["inline", "npz"])
@pytest.mark.parametrize("name", sorted(ATTRS))
def test_attribute_values_round_trip_exactly(tmp_path, name, data):
    ir = Ir()
    value = ATTRS[name]
    ir.main.make_op("Custom", [], [], attrs={"x": value})
    arr = value if isinstance(value, np.ndarray) else np.array([0.1, np.nan], dtype=np.float32)
    ir.add_variable(arr, "w")
    ir.save(tmp_path / "a.json", data=data)
    back = Ir.load(tmp_path / "a.json", check=False)  # "Custom" is no registered op kind
    assert _same(back.main.ops[0].attrs["x"], value), (back.main.ops[0].attrs["x"], value)
    assert _same(next(iter(back.variables.values())), arr)


def test_fused_kernel_expr_round_trips(tmp_path):
    e = Expr()
    x = e.input(0, DType.float32)
    y = e.mul(e.add(x, e.const(-0.0, DType.float32)), e.const(math.inf, DType.float32))
    e.outputs = [e.cast(e.mul(e.cast(y, DType.float16), e.const(0.1, DType.float16)), DType.float32)]
    ir = Ir()
    v = ir.main.add_input(TensorSpec((3,), DType.float32), "x")
    attrs = {"expr": e, "shape": (3,), "out_specs": (((3,), DType.float32),)}
    ir.main.make_op("FusedKernel", [v], [TensorSpec((3,), DType.float32)], attrs=attrs)
    ir.save(tmp_path / "f.json")
    assert '"$expr"' in (tmp_path / "f.json").read_text()
    back = Ir.load(tmp_path / "f.json").main.ops[0].attrs["expr"]
    assert type(back) is Expr and repr(back) == repr(e) and back == e  # repr tells -0.0 from 0.0


def test_unsaveable_attribute_names_the_op(tmp_path):
    ir = Ir()
    ir.main.make_op("Custom", [], [], attrs={"x": object()})
    with pytest.raises(TypeError, match=r"Custom\.100 attrs\.x of type object"):
        ir.save(tmp_path / "x.json")


def _saved(tmp_path) -> dict:
    load_target("examples/custom_optimiser.py").save(tmp_path / "p.json")
    return json.loads((tmp_path / "p.json").read_text())


def _op(doc: dict) -> dict:
    return doc["graphs"][1]["ops"][0]


BAD_DOCS = {  # name -> (edit of the saved document, JSON path in the message, reason pattern, a marker on the line)
    "future_version": (lambda d: d.update(version=99), r"version", r"format version 99 is newer than this compiler reads \(1\)",
                       '"version": 99'),
    "dangling_input": (lambda d: _op(d).update(inputs=[123456, 4]), r"graphs\[1\]\.ops\[0\]\.inputs\[0\]",
                       "unknown value id 123456", "123456"),
    "unknown_field": (lambda d: _op(d).update(bogus=1), r"graphs\[1\]\.ops\[0\]\.bogus", "unknown field 'bogus'", "bogus"),
    "unknown_dtype": (lambda d: d["graphs"][1]["values"][0].update(dtype="float17"),
                      r"graphs\[1\]\.values\[0\]\.dtype", "unknown dtype 'float17'", "float17"),
    "unknown_tag": (lambda d: _op(d)["attrs"].update(f={"$bogus": 1}), r"graphs\[1\]\.ops\[0\]\.attrs\.f\.\$bogus",
                    r"unknown tag '\$bogus'", "$bogus"),
    "short_array": (lambda d: d["variables"]["1"].update(data=[1.0]), r"variables\.1",
                    r"shape \(2, 2\) needs 4 elements, the data has 1", '"1": {'),
    "bad_constraint": (lambda d: d["graphs"][1]["constraints"].append([100, 999]), r"graphs\[1\]\.constraints\[\d+\]\[1\]",
                       "unknown op id in this graph 999", "999"),
    "missing_field": (lambda d: _op(d).pop("roles"), r"graphs\[1\]\.ops\[0\]", "missing field 'roles'", None),
    "not_an_ir": (lambda d: d.update(format="something-else"), r"<top level>", "not a saved IR", None),
    "one_op_constraint": (lambda d: d["graphs"][1]["constraints"].append([100]), r"graphs\[1\]\.constraints\[\d+\]",
                          r"a constraint is \[before op id, after op id\], got \[100\]", "[100]"),
    "by_ref_out_of_range": (lambda d: d["graphs"][1].update(by_ref=[0, 9]), r"graphs\[1\]\.by_ref",
                            r"by_ref holds indices into the 5 inputs, got \[0, 9\]", '"by_ref"'),
    # the checks compiler.ops registers: the kind exists, the type rule gives the outputs' types
    "unknown_op_kind": (lambda d: _op(d).update(kind="NoSuchOp"), r"graphs\[1\]\.ops\[0\]",
                        "NoSuchOp.100: unknown op kind 'NoSuchOp'; registered kinds: ", '"id": 100'),
    "role_renamed": (lambda d: _op(d).update(roles=["tx", "x"]), r"graphs\[1\]\.ops\[0\]",
                     r"Accumulate.100: the Accumulate type rule rejects inputs \['tx', 'x'\]", '"id": 100'),
    "output_type_changed": (lambda d: d["graphs"][1]["values"][3].update(dtype="float32"), r"graphs\[1\]\.ops\[0\]",
                            r"Accumulate.100: outputs are \[\(2, 2\) float32\] but the Accumulate type rule "
                            r"gives \[\(2, 2\) float16\]",
                            '"id": 100'),
    # and verify: here a reader of first_order v0 moved after the op that overwrites it
    "verify_fails": (lambda d: d["graphs"][1]["ops"].reverse(), r"<top level>",
                     r"the file reads but is not a valid IR \(load with check=False to inspect it\)", None),
}


@pytest.mark.parametrize("name", sorted(BAD_DOCS))
def test_malformed_file_error_names_line_and_path(tmp_path, name):
    edit, path, reason, marker = BAD_DOCS[name]
    doc = _saved(tmp_path)
    edit(doc)
    text = dumps(doc)
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(IRFormatError) as e:
        Ir.load(tmp_path / "bad.json")
    msg = str(e.value)
    assert re.search(rf"bad\.json:\d+: at {path}: {reason}", msg), msg
    if marker is not None:  # the line named is the one holding the bad value
        line = int(re.search(r"bad\.json:(\d+):", msg).group(1))
        assert marker in text.splitlines()[line - 1], (line, text.splitlines()[line - 1])


def test_malformed_json_names_line_and_column(tmp_path):
    (tmp_path / "bad.json").write_text('{"format": "optgraph-ir",\n "version": 1,\n "graphs": [}\n')
    with pytest.raises(IRFormatError, match=r"bad\.json:3:13: malformed JSON"):
        Ir.load(tmp_path / "bad.json")


def test_missing_npz_is_named(tmp_path):
    load_target("examples/custom_optimiser.py").save(tmp_path / "p.json", data="npz")
    (tmp_path / "p.npz").unlink()
    with pytest.raises(IRFormatError, match=r"p\.json:\d+: at variables\.1\.npz: the data file .*p\.npz is missing"):
        Ir.load(tmp_path / "p.json")


def test_check_false_loads_a_file_the_checks_reject(tmp_path):
    doc = _saved(tmp_path)
    _op(doc)["kind"] = "NoSuchOp"
    (tmp_path / "odd.json").write_text(dumps(doc))
    with pytest.raises(IRFormatError, match="unknown op kind 'NoSuchOp'"):
        Ir.load(tmp_path / "odd.json")
    assert Ir.load(tmp_path / "odd.json", check=False).graphs["Adam_subgraph(0)"].ops[0].kind == "NoSuchOp"
