"""Saving and loading an Ir as versioned, readable JSON that round-trips exactly.

Attribute values are tagged where JSON has no type for them ({"$dtype": ...}, {"$tuple": [...]},
{"$float": "inf"}, {"$array": ...}); richer attribute types (the fused kernels' primitive
expressions) register a codec here from the package that defines them.
"""
from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .dtypes import DType
from .graph import Graph
from .ir import Ir, Stream
from .op import Op
from .spec import TensorSpec
from .value import Value

FORMAT = "optgraph-ir"
VERSION = 1


class IRFormatError(ValueError):
    """A saved IR that cannot be loaded; the message gives the file and the position."""


# tag -> (type, encode, decode)
CODECS: dict[str, tuple[type, Callable[[Any], Any], Callable[[Any], Any]]] = {}


def register_codec(tag: str, typ: type, encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
    CODECS[tag] = (typ, encode, decode)


def _array(a: np.ndarray) -> dict:
    a = np.asarray(a, order="C")  # (ascontiguousarray would turn 0-d arrays into 1-d)
    return {"$array": {"dtype": DType.from_numpy(a.dtype).name, "shape": list(a.shape),
                       "b64": base64.b64encode(a.tobytes()).decode()}}


def encode(x: Any) -> Any:
    if isinstance(x, DType):
        return {"$dtype": x.name}
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else {"$float": repr(x)}
    if isinstance(x, tuple):
        return {"$tuple": [encode(i) for i in x]}
    if isinstance(x, list):
        return [encode(i) for i in x]
    if isinstance(x, dict):
        return {"$dict": [[encode(k), encode(v)] for k, v in x.items()]}
    if isinstance(x, np.ndarray):
        return _array(x)
    if isinstance(x, np.generic):
        return encode(x.item())
    for tag, (typ, enc, _) in CODECS.items():
        if isinstance(x, typ):
            return {f"${tag}": enc(x)}
    raise TypeError(f"cannot save an attribute of type {type(x).__name__}: {x!r}")


def decode(x: Any, where: str) -> Any:
    if isinstance(x, list):
        return [decode(i, f"{where}[{k}]") for k, i in enumerate(x)]
    if not isinstance(x, dict):
        return x
    if len(x) != 1:
        raise IRFormatError(f"{where}: expected a tagged value like {{'$tuple': [...]}}, got keys {sorted(x)}")
    (tag, body), = x.items()
    if tag == "$dtype":
        try:
            return DType[body]
        except KeyError:
            raise IRFormatError(f"{where}: unknown dtype {body!r}") from None
    if tag == "$float":
        return float(body)
    if tag == "$tuple":
        return tuple(decode(i, f"{where}[{k}]") for k, i in enumerate(body))
    if tag == "$dict":
        return {decode(k, where): decode(v, f"{where}.{k}") for k, v in body}
    if tag == "$array":
        try:
            dt = DType[body["dtype"]].numpy
            return np.frombuffer(base64.b64decode(body["b64"]), dtype=dt).reshape(tuple(body["shape"])).copy()
        except (KeyError, ValueError, TypeError) as e:
            raise IRFormatError(f"{where}: malformed array ({e})") from None
    codec = CODECS.get(tag[1:])
    if codec is None:
        raise IRFormatError(f"{where}: unknown tag {tag!r} (import the package that defines it, e.g. compiler.ops)")
    return codec[2](body)


# ---------------------------------------------------------------------- save
def to_json(ir: Ir) -> dict:
    graphs = []
    for gid, g in ir.graphs.items():
        vals = [{"id": v.id, "name": v.name, "shape": list(v.shape), "dtype": v.dtype.name, "kind": v.kind,
                 "storage": v.storage, "version": v.version, "producer": v.producer.id if v.producer else None}
                for v in g.values.values()]
        ops = [{"id": op.id, "kind": op.kind, "name": op.name, "roles": list(op.roles),
                "inputs": [v.id for v in op.inputs], "outputs": [v.id for v in op.outputs],
                "updates": [[i, v.id] for i, v in sorted(op.updates.items())], "attrs": encode(op.attrs),
                "modifies": list(op.modifies), "aliases": [[o, i] for o, i in sorted(op.aliases.items())],
                "called": op.called.id if op.called is not None else None,
                "handles": [v.id for v in op.handles] if op.handles is not None else None, "source": op.source}
               for op in g.ops]
        graphs.append({"id": gid, "values": vals, "inputs": [v.id for v in g.inputs],
                       "input_names": [[k, n] for k, n in g.input_names.items()], "by_ref": sorted(g.by_ref),
                       "outputs": [v.id for v in g.outputs], "ops": ops,
                       "constraints": [[a.id, b.id] for a, b in g.constraints],
                       "unordered_groups": [[o.id for o in grp] for grp in g.unordered_groups]})
    return {
        "format": FORMAT, "version": VERSION,
        "replication_factor": ir.replication_factor, "num_host_transfers": ir.num_host_transfers,
        "counters": [ir._op_counter, ir._value_counter, ir._graph_counter, ir._tensor_counter],
        "streams": [[s.name, list(s.spec.shape), s.spec.dtype.name, s.direction] for s in ir.streams.values()],
        "graphs": graphs,
        "variables": [[vid, _array(a)] for vid, a in ir.variables.items()],
        "constants": [[vid, _array(a)] for vid, a in ir.constants.items()],
    }


def save(ir: Ir, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(ir), indent=1))


# ---------------------------------------------------------------------- load
def _need(d: dict, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise IRFormatError(f"{where}: missing field {key!r}")
    return d[key]


def from_json(doc: Any, source: str = "<ir>") -> Ir:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IRFormatError(f"{source}: not a saved optgraph IR (no \"format\": {FORMAT!r} at the top level)")
    ver = doc.get("version")
    if not isinstance(ver, int) or ver > VERSION:
        raise IRFormatError(f"{source}: IR format version {ver!r} is newer than this compiler reads ({VERSION}); "
                            "upgrade the compiler or save the IR with the version that reads it")
    ir = Ir(int(_need(doc, "replication_factor", source)))
    ir.num_host_transfers = int(_need(doc, "num_host_transfers", source))
    ir.graphs.clear()
    for name, shape, dt, direction in _need(doc, "streams", source):
        ir.streams[name] = Stream(name, TensorSpec(shape, DType[dt]), direction)
    graphs_doc = _need(doc, "graphs", source)
    for k, gd in enumerate(graphs_doc):
        gid = _need(gd, "id", f"{source}: graphs[{k}]")
        g = ir.main if gid == "" else Graph(ir, gid)
        ir.graphs[gid] = g
    ops_by_id: dict[int, Op] = {}
    for k, gd in enumerate(graphs_doc):
        where = f"{source}: graphs[{k}] ({gd['id']!r})"
        g = ir.graphs[gd["id"]]
        for j, vd in enumerate(_need(gd, "values", where)):
            w = f"{where}.values[{j}]"
            try:
                v = Value(vd["id"], TensorSpec(vd["shape"], DType[vd["dtype"]]), vd["name"], g, vd["kind"],
                          None, vd["storage"], vd["version"])
            except (KeyError, TypeError, ValueError) as e:
                raise IRFormatError(f"{w}: malformed value ({e!r})") from None
            g.values[v.id] = v
        for j, od in enumerate(_need(gd, "ops", where)):
            w = f"{where}.ops[{j}]"
            try:
                called = ir.graphs[od["called"]] if od["called"] is not None else None
                op = Op(od["id"], od["kind"], [g.values[i] for i in od["inputs"]], tuple(od["roles"]),
                        decode(od["attrs"], f"{w}.attrs"), g, od["name"], tuple(od["modifies"]),
                        {o: i for o, i in od["aliases"]}, called, od.get("source"))
                op.outputs = [g.values[i] for i in od["outputs"]]
                op.updates = {i: g.values[v] for i, v in od["updates"]}
                op.handles = tuple(g.values[i] for i in od["handles"]) if od["handles"] is not None else None
            except KeyError as e:
                raise IRFormatError(f"{w}: refers to unknown value, graph or field {e}") from None
            for v in op.results:
                v.producer = op
            g.ops.append(op)
            ops_by_id[op.id] = op
        try:
            g.inputs = [g.values[i] for i in gd["inputs"]]
            g.input_names = {int(i): n for i, n in gd["input_names"]}
            g.by_ref = set(gd["by_ref"])
            g.outputs = [g.values[i] for i in gd["outputs"]]
            g.constraints = [(ops_by_id[a], ops_by_id[b]) for a, b in gd["constraints"]]
            g.unordered_groups = [[ops_by_id[o] for o in grp] for grp in gd["unordered_groups"]]
        except KeyError as e:
            raise IRFormatError(f"{where}: refers to unknown value or op {e}") from None
    for vid, a in _need(doc, "variables", source):
        ir.variables[int(vid)] = decode(a, f"{source}: variables[{vid}]")
    for vid, a in _need(doc, "constants", source):
        ir.constants[int(vid)] = decode(a, f"{source}: constants[{vid}]")
    ir._op_counter, ir._value_counter, ir._graph_counter, ir._tensor_counter = _need(doc, "counters", source)
    if "" not in ir.graphs:
        raise IRFormatError(f"{source}: no main graph (a graph with id \"\")")
    return ir


def load(path: str | Path) -> Ir:
    text = Path(path).read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise IRFormatError(f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    return from_json(doc, str(path))
