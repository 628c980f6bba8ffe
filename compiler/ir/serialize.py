"""Save and load an Ir as versioned, readable JSON that round-trips exactly.

    ir.save("prog.json")                 # one file, variable and constant data inline
    ir.save("prog.json", data="npz")     # data in prog.npz beside it (for big weights)
    ir = Ir.load("prog.json")

Layout (version 1), one record per line where it fits:

    {"format": "optgraph-ir", "version": 1, "replication_factor", "num_host_transfers",
     "counters": {"op", "value", "graph", "tensor"}, "streams": [{"name", "shape", "dtype", "direction"}],
     "graphs": [{"id", "inputs": [value ids], "input_names": {"value id": name}, "by_ref": [input indices],
                 "outputs", "values": [{"id", "name", "shape", "dtype", "kind", "storage", "version"}],
                 "ops": [{"id", "kind", "name", "inputs", "roles", "outputs", "attrs", and when not empty
                          "updates": {"input index": value id}, "modifies", "aliases": {"out": in},
                          "called", "handles", "source"}],
                 "constraints": [[before op id, after op id]], "unordered_groups", "info"}],
     "variables": {"value id": array}, "constants": {"value id": array}, "meta": {...}}

Attribute values use the tagged JSON of jsonvalues.py; arrays are {"dtype", "shape"} plus "data"
(a list), "b64" (raw little-endian bytes) or "npz" (a file name beside the JSON) and "key".
Loading a malformed or newer file raises IRFormatError naming the file, line and JSON path.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from .graph import Graph
from .ir import Ir, Stream
from .jsonvalues import (FormatError, decode, decode_array, decode_dtype, dumps, encode, encode_array, field, int_key,
                         line_of, only_keys, path_str)
from .jsonvalues import register_codec  # noqa: F401  (the hook packages above the IR use)
from .op import Op
from .spec import TensorSpec
from .value import Value

FORMAT = "optgraph-ir"
VERSION = 1
_GRAPH_KEYS = {"id", "inputs", "input_names", "by_ref", "outputs", "values", "ops", "constraints", "unordered_groups",
               "info"}
_OP_KEYS = {"id", "kind", "name", "inputs", "roles", "outputs", "attrs", "updates", "modifies", "aliases", "called",
            "handles", "source"}
_VALUE_KEYS = {"id", "name", "shape", "dtype", "kind", "storage", "version", "meta_shape"}


class IRFormatError(ValueError):
    """A saved IR that cannot be loaded; the message gives the file, line and JSON path."""


# ---------------------------------------------------------------------- save
def _value(v: Value) -> dict:
    d = {"id": v.id, "name": v.name, "shape": list(v.shape), "dtype": v.dtype.name, "kind": v.kind,
         "storage": v.storage, "version": v.version}
    if v.spec.meta_shape:
        d["meta_shape"] = list(v.spec.meta_shape)
    return d


def _op(op: Op) -> dict:
    d: dict[str, Any] = {"id": op.id, "kind": op.kind, "name": op.name, "inputs": [v.id for v in op.inputs],
                         "roles": list(op.roles), "outputs": [v.id for v in op.outputs],
                         "attrs": encode(op.attrs, where=f"{op.kind}.{op.id} attrs")}
    if op.updates:
        d["updates"] = {str(i): v.id for i, v in op.updates.items()}
    if op.modifies:
        d["modifies"] = list(op.modifies)
    if op.aliases:
        d["aliases"] = {str(o): i for o, i in op.aliases.items()}
    if op.called is not None:
        d["called"] = op.called.id
    if op.handles is not None:
        d["handles"] = [v.id for v in op.handles]
    if op.source is not None:
        d["source"] = op.source
    return d


def _graph(g: Graph) -> dict:
    return {"id": g.id, "inputs": [v.id for v in g.inputs], "input_names": {str(k): n for k, n in g.input_names.items()},
            "by_ref": sorted(g.by_ref), "outputs": [v.id for v in g.outputs],
            "values": [_value(v) for v in g.values.values()], "ops": [_op(op) for op in g.ops],
            "constraints": [[a.id, b.id] for a, b in g.constraints],
            "unordered_groups": [[o.id for o in grp] for grp in g.unordered_groups],
            "info": encode(g.info, where=f"graph {g.id!r} info")}


def to_json(ir: Ir, data: Callable[[str, np.ndarray], dict] = lambda key, a: encode_array(a)) -> dict:
    """The document for `ir`; `data(key, array)` writes one variable's or constant's data."""
    return {
        "format": FORMAT, "version": VERSION,
        "replication_factor": ir.replication_factor, "num_host_transfers": ir.num_host_transfers,
        "counters": {"op": ir._op_counter, "value": ir._value_counter, "graph": ir._graph_counter,
                     "tensor": ir._tensor_counter},
        "streams": [{"name": s.name, "shape": list(s.spec.shape), "dtype": s.spec.dtype.name, "direction": s.direction}
                    for s in ir.streams.values()],
        "graphs": [_graph(g) for g in ir.graphs.values()],
        "variables": {str(k): data(f"variable_{k}", a) for k, a in ir.variables.items()},
        "constants": {str(k): data(f"constant_{k}", a) for k, a in ir.constants.items()},
        "meta": encode(ir.meta, where="Ir.meta"),
    }


def save(ir: Ir, path: str | Path, data: Literal["inline", "npz"] = "inline") -> Path:
    """Write `ir` to `path`; data="npz" puts the arrays in `<path stem>.npz` beside it."""
    path = Path(path)
    if data not in ("inline", "npz"):
        raise ValueError(f"save(data={data!r}): use 'inline' or 'npz'")
    arrays: dict[str, np.ndarray] = {}

    def by_ref(key: str, a: np.ndarray) -> dict:
        body = encode_array(a)
        body.pop("data", None), body.pop("b64", None)
        stored = np.asarray(a)
        arrays[key] = stored.view(np.uint16) if stored.dtype.kind == "V" else stored  # bfloat16 as its bits
        return body | {"npz": path.with_suffix(".npz").name, "key": key}

    doc = to_json(ir, by_ref if data == "npz" else (lambda key, a: encode_array(a)))
    if arrays:
        np.savez(path.with_suffix(".npz"), **arrays)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(doc))
    os.replace(tmp, path)  # a reader never sees half a file
    return path


# ---------------------------------------------------------------------- load
class _Loader:
    def __init__(self, doc: Any, base: Path) -> None:
        self.doc, self.base = doc, base
        self.npz: dict[str, Any] = {}

    def ref(self, table: dict[int, Any], i: Any, at: tuple, what: str) -> Any:
        try:
            return table[i]
        except (KeyError, TypeError):
            raise FormatError(at, f"unknown {what} {i!r}") from None

    def array(self, body: Any, at: tuple) -> np.ndarray:
        if not (isinstance(body, dict) and "npz" in body):
            return decode_array(body, at)
        name, key = field(body, "npz", at, str), field(body, "key", at, str)
        if name not in self.npz:
            file = self.base / name
            if not file.exists():
                raise FormatError(at + ("npz",), f"the data file {file} is missing; keep it beside the JSON file")
            self.npz[name] = np.load(file)
        if key not in self.npz[name]:
            raise FormatError(at + ("key",), f"{name} has no array {key!r}")
        dt = decode_dtype(field(body, "dtype", at, str), at + ("dtype",))
        a = self.npz[name][key]
        a = a.view(dt.numpy) if a.dtype != dt.numpy else a
        if list(a.shape) != field(body, "shape", at, list):
            raise FormatError(at + ("shape",), f"{name}[{key!r}] has shape {a.shape}, the JSON says {body['shape']}")
        return np.array(a)

    def load(self) -> Ir:
        doc = self.doc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FormatError((), f'not a saved IR: the top level needs "format": "{FORMAT}"')
        ver = field(doc, "version", (), int)
        if ver > VERSION:
            raise FormatError(("version",), f"format version {ver} is newer than this compiler reads ({VERSION}); "
                              "load it with the compiler version that saved it, or upgrade")
        if ver < 1:
            raise FormatError(("version",), f"format version {ver} does not exist (versions start at 1)")
        only_keys(doc, {"format", "version", "replication_factor", "num_host_transfers", "counters", "streams", "graphs",
                    "variables", "constants", "meta"}, ())
        ir = Ir(field(doc, "replication_factor", (), int))
        ir.num_host_transfers = field(doc, "num_host_transfers", (), int)
        ir.graphs.clear()
        for k, s in enumerate(field(doc, "streams", (), list)):
            at = ("streams", k)
            only_keys(s, {"name", "shape", "dtype", "direction"}, at)
            name, direction = field(s, "name", at, str), field(s, "direction", at, str)
            if direction not in ("h2d", "d2h"):
                raise FormatError(at + ("direction",), f'direction is "h2d" or "d2h", got {direction!r}')
            dtype = decode_dtype(field(s, "dtype", at), at + ("dtype",))
            try:
                ir.streams[name] = Stream(name, TensorSpec(field(s, "shape", at, list), dtype), direction)
            except (TypeError, ValueError) as e:
                raise FormatError(at + ("shape",), str(e)) from None
        gdocs = field(doc, "graphs", (), list)
        for k, gd in enumerate(gdocs):
            gid = field(gd, "id", ("graphs", k), str)
            if gid in ir.graphs:
                raise FormatError(("graphs", k, "id"), f"graph {gid!r} appears twice")
            ir.graphs[gid] = ir.main if gid == "" else Graph(ir, gid)
        if "" not in ir.graphs:
            raise FormatError(("graphs",), 'no main graph (a graph with "id": "")')
        ops: dict[int, Op] = {}
        for k, gd in enumerate(gdocs):
            self.graph(ir, ir.graphs[gd["id"]], gd, ("graphs", k), ops)
        for sect, table in (("variables", ir.variables), ("constants", ir.constants)):
            for key, body in field(doc, sect, (), dict).items():
                vid = int_key(key, (sect,))
                try:
                    ir.value(vid)
                except KeyError:
                    raise FormatError((sect, key), f"no value with id {vid} in any graph") from None
                table[vid] = self.array(body, (sect, key))
        c = field(doc, "counters", (), dict)
        top_op = max(ops, default=99) + 1
        top_value = max((v for g in ir.graphs.values() for v in g.values), default=0)
        ir._op_counter = max(field(c, "op", ("counters",), int), top_op)
        ir._value_counter = max(field(c, "value", ("counters",), int), top_value)
        ir._graph_counter = field(c, "graph", ("counters",), int)
        ir._tensor_counter = field(c, "tensor", ("counters",), int)
        ir.meta = decode(field(doc, "meta", (), dict, {}), ("meta",), plain=False)
        return ir

    def graph(self, ir: Ir, g: Graph, gd: dict, at: tuple, ops: dict[int, Op]) -> None:
        only_keys(gd, _GRAPH_KEYS, at)
        for j, vd in enumerate(field(gd, "values", at, list)):
            w = at + ("values", j)
            vid = field(vd, "id", w, int)
            only_keys(vd, _VALUE_KEYS, w)
            if any(vid in h.values for h in ir.graphs.values()):
                raise FormatError(w + ("id",), f"value id {vid} is defined twice")
            dtype = decode_dtype(field(vd, "dtype", w), w + ("dtype",))
            shape, meta_shape = field(vd, "shape", w, list), field(vd, "meta_shape", w, list, [])
            try:
                spec = TensorSpec(shape, dtype, meta_shape)
            except (TypeError, ValueError) as e:
                raise FormatError(w + ("shape",), str(e)) from None
            kind = field(vd, "kind", w, str)
            if kind not in ("input", "op", "variable", "constant"):
                raise FormatError(w + ("kind",), f"kind is one of input, op, variable, constant; got {kind!r}")
            g.values[vid] = Value(vid, spec, field(vd, "name", w, str), g, kind, None,  # type: ignore[arg-type]
                                  field(vd, "storage", w, int), field(vd, "version", w, int))
        vals = g.values
        for j, od in enumerate(field(gd, "ops", at, list)):
            w = at + ("ops", j)
            field(od, "id", w, int)
            only_keys(od, _OP_KEYS, w)
            if od["id"] in ops:
                raise FormatError(w + ("id",), f"op id {od['id']} is used twice")
            ins = [self.ref(vals, i, w + ("inputs", n), "value id") for n, i in enumerate(field(od, "inputs", w, list))]
            roles = tuple(field(od, "roles", w, list))
            if len(roles) != len(ins):
                raise FormatError(w + ("roles",), f"{len(roles)} roles for {len(ins)} inputs")
            called = od.get("called")
            op = Op(od["id"], field(od, "kind", w, str), ins, roles,
                    decode(field(od, "attrs", w, dict), w + ("attrs",)), g, field(od, "name", w, str),
                    tuple(field(od, "modifies", w, list, [])),
                    {int_key(o, w + ("aliases",)): i for o, i in field(od, "aliases", w, dict, {}).items()},
                    None if called is None else self.ref(ir.graphs, called, w + ("called",), "graph"),
                    field(od, "source", w, (str, type(None)), None))
            op.outputs = [self.ref(vals, i, w + ("outputs", n), "value id") for n, i in enumerate(field(od, "outputs", w, list))]
            op.updates = {int_key(i, w + ("updates",)): self.ref(vals, v, w + ("updates", i), "value id")
                          for i, v in field(od, "updates", w, dict, {}).items()}
            hs = field(od, "handles", w, (list, type(None)), None)
            op.handles = None if hs is None else tuple(self.ref(vals, i, w + ("handles", n), "value id")
                                                       for n, i in enumerate(hs))
            for v in op.results:
                if v.producer is not None:
                    raise FormatError(w + ("outputs",), f"value {v.id} is already produced by op {v.producer.id}")
                v.producer = op
            g.ops.append(op)
            ops[op.id] = op
        g.inputs = [self.ref(vals, i, at + ("inputs", n), "value id") for n, i in enumerate(field(gd, "inputs", at, list))]
        g.input_names = {self.ref(vals, int_key(k, at + ("input_names",)), at + ("input_names", k), "value id").id: n
                         for k, n in field(gd, "input_names", at, dict).items()}
        g.by_ref = set(field(gd, "by_ref", at, list))
        g.outputs = [self.ref(vals, i, at + ("outputs", n), "value id") for n, i in enumerate(field(gd, "outputs", at, list))]
        mine = {op.id: op for op in g.ops}
        g.constraints = [(self.ref(mine, a, at + ("constraints", n, 0), "op id in this graph"),
                          self.ref(mine, b, at + ("constraints", n, 1), "op id in this graph"))
                         for n, (a, b) in enumerate(field(gd, "constraints", at, list))]
        g.unordered_groups = [[self.ref(mine, o, at + ("unordered_groups", n, m), "op id in this graph")
                               for m, o in enumerate(grp)] for n, grp in enumerate(field(gd, "unordered_groups", at, list))]
        g.info = decode(field(gd, "info", at, dict, {}), at + ("info",))


def from_json(doc: Any, base: str | Path = ".") -> Ir:
    """The Ir of a parsed document (`base`: the folder .npz data files are read from). Raises FormatError."""
    return _Loader(doc, Path(base)).load()


def load(path: str | Path) -> Ir:
    """Read an Ir written by `save`."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise IRFormatError(f"{path}: cannot read the file ({e})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise IRFormatError(f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    try:
        return from_json(doc, path.parent)
    except FormatError as e:
        line = line_of(text, e.path)
        raise IRFormatError(f"{path}:{line or 1}: at {path_str(e.path)}: {e.reason}") from None
