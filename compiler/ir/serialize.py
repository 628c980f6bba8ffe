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
     "variables": {"value id": array}, "constants": {"value id": array}, "meta": {...},
     "externals": [value ids of caller-owned buffers: kind "external", no data; only when there are some]}

Attribute values use the tagged JSON of jsonvalues.py; arrays are {"dtype", "shape"} plus "data"
(a list), "b64" (raw little-endian bytes) or "npz" (a file name beside the JSON) and "key".
Loading a malformed or newer file raises IRFormatError naming the file, line and JSON path; so does
a file that reads but fails the registered op checks or `verify` (deserialize.py).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from .deserialize import FORMAT, VERSION, Reader
from .deserialize import register_op_check  # noqa: F401  (hooks for the packages above the IR)
from .graph import Graph
from .ir import Ir
from .jsonvalues import FormatError, dumps, encode, encode_array, line_of, path_str
from .jsonvalues import register_codec  # noqa: F401
from .op import Op
from .value import Value


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
    doc = {
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
        "merged_graphs": dict(ir.merged_graphs),
    }
    if ir.externals:  # caller-owned buffers have a spec (their value record) and no data
        doc["externals"] = list(ir.externals)
    return doc


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
def from_json(doc: Any, base: str | Path = ".", check: bool = True) -> Ir:
    """The Ir of a parsed document (`base`: the folder .npz data files are read from). Raises FormatError."""
    return Reader(doc, Path(base)).load(check)


def load(path: str | Path, check: bool = True) -> Ir:
    """Read an Ir written by `save`; check=False skips the op checks and `verify` (to inspect a broken IR)."""
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
        return from_json(doc, path.parent, check)
    except FormatError as e:
        line = line_of(text, e.path)
        raise IRFormatError(f"{path}:{line or 1}: at {path_str(e.path)}: {e.reason}") from None
