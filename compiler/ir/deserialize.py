"""Reading the saved IR of serialize.py back: every problem is a FormatError naming its JSON path.

Beyond the layout, a loaded Ir is checked (unless check=False): each op by the checks that packages
above the IR register with `register_op_check` (compiler.ops: the kind exists and its type rule
gives the outputs' types), then the whole Ir by `verify`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .graph import Graph
from .ir import Ir, Stream
from .jsonvalues import FormatError, decode, decode_array, decode_dtype, field, int_key, only_keys
from .op import Op
from .spec import TensorSpec
from .value import DEFINED_KINDS, Value
from .verify import VerificationError, verify
from .verify_program import attr_problems

FORMAT = "optgraph-ir"
VERSION = 1
TOP_KEYS = {"format", "version", "replication_factor", "num_host_transfers", "counters", "streams", "graphs",
            "variables", "constants", "meta", "merged_graphs", "externals"}
GRAPH_KEYS = {"id", "inputs", "input_names", "by_ref", "outputs", "values", "ops", "constraints", "unordered_groups",
              "info"}
OP_KEYS = {"id", "kind", "name", "inputs", "roles", "outputs", "attrs", "updates", "modifies", "aliases", "called",
           "handles", "source"}
VALUE_KEYS = {"id", "name", "shape", "dtype", "kind", "storage", "version", "meta_shape"}

OP_CHECKS: list[Callable[[Op], "str | None"]] = []


def register_op_check(check: Callable[[Op], "str | None"]) -> None:
    """Run `check(op)` on every loaded op; a returned string is reported as the problem at that op."""
    OP_CHECKS.append(check)


@contextmanager
def guard(at: tuple, what: str) -> Iterator[None]:
    """Turn a stray error while reading one record into a FormatError at that record."""
    try:
        yield
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise FormatError(at, f"malformed {what} ({type(e).__name__}: {e})") from None


def _spec(d: dict, at: tuple, meta: bool = False) -> TensorSpec:
    dtype = decode_dtype(field(d, "dtype", at), at + ("dtype",))
    shape = field(d, "shape", at, list)
    if not all(type(s) is int and s >= 0 for s in shape):
        raise FormatError(at + ("shape",), f"a shape is a list of non-negative ints, got {shape}")
    return TensorSpec(shape, dtype, field(d, "meta_shape", at, list, []) if meta else ())


class Reader:
    def __init__(self, doc: Any, base: Path) -> None:
        self.doc, self.base = doc, base
        self.npz: dict[str, Any] = {}
        self.op_at: dict[Op, tuple] = {}  # op -> its JSON path, for the checks' messages
        self.op_ids: set[int] = set()

    @staticmethod
    def ref(table: dict, i: Any, at: tuple, what: str) -> Any:
        try:
            return table[i]
        except (KeyError, TypeError):
            raise FormatError(at, f"unknown {what} {i!r}") from None

    def refs(self, table: dict, ids: Any, at: tuple, what: str) -> list:
        if not isinstance(ids, list):
            raise FormatError(at, f"expected a list of {what}s, got {type(ids).__name__}")
        return [self.ref(table, i, at + (n,), what) for n, i in enumerate(ids)]

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

    def load(self, check: bool = True) -> Ir:
        doc = self.doc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FormatError((), f'not a saved IR: the top level needs "format": "{FORMAT}"')
        ver = field(doc, "version", (), int)
        if ver > VERSION:
            raise FormatError(("version",), f"format version {ver} is newer than this compiler reads ({VERSION}); "
                              "load it with the compiler version that saved it, or upgrade")
        if ver < 1:
            raise FormatError(("version",), f"format version {ver} does not exist (versions start at 1)")
        only_keys(doc, TOP_KEYS, ())
        ir = Ir(field(doc, "replication_factor", (), int))
        ir.num_host_transfers = field(doc, "num_host_transfers", (), int)
        ir.graphs.clear()
        for k, s in enumerate(field(doc, "streams", (), list)):
            at = ("streams", k)
            only_keys(s, {"name", "shape", "dtype", "direction"}, at)
            name, direction = field(s, "name", at, str), field(s, "direction", at, str)
            if direction not in ("h2d", "d2h"):
                raise FormatError(at + ("direction",), f'direction is "h2d" or "d2h", got {direction!r}')
            ir.streams[name] = Stream(name, _spec(s, at), direction)  # type: ignore[arg-type]
        gdocs = field(doc, "graphs", (), list)
        for k, gd in enumerate(gdocs):
            gid = field(gd, "id", ("graphs", k), str)
            if gid in ir.graphs:
                raise FormatError(("graphs", k, "id"), f"graph {gid!r} appears twice")
            ir.graphs[gid] = ir.main if gid == "" else Graph(ir, gid)
        if "" not in ir.graphs:
            raise FormatError(("graphs",), 'no main graph (a graph with "id": "")')
        for k, gd in enumerate(gdocs):
            self.graph(ir, ir.graphs[gd["id"]], gd, ("graphs", k))
        for sect, table in (("variables", ir.variables), ("constants", ir.constants)):
            for key, body in field(doc, sect, (), dict).items():
                vid = int_key(key, (sect,))
                with guard((sect, key), "entry"):
                    ir.value(vid)
                table[vid] = self.array(body, (sect, key))
        for k, vid in enumerate(field(doc, "externals", (), list, [])):
            with guard(("externals", k), "entry"):
                ir.value(vid)
            ir.externals.append(vid)
        c = field(doc, "counters", (), dict)
        ir._op_counter = max(field(c, "op", ("counters",), int), max((op.id for op in self.op_at), default=99) + 1)
        ir._value_counter = max(field(c, "value", ("counters",), int), max((v for g in ir.graphs.values() for v in g.values),
                                                                          default=0))
        ir._graph_counter = field(c, "graph", ("counters",), int)
        ir._tensor_counter = field(c, "tensor", ("counters",), int)
        ir.meta = decode(field(doc, "meta", (), dict, {}), ("meta",))
        merged = field(doc, "merged_graphs", (), dict, {}) or ir.meta.pop("dedup", {})  # older files: in meta
        ir.merged_graphs = {str(k): str(v) for k, v in merged.items()}
        if check:
            self.check(ir)
        return ir

    def check(self, ir: Ir) -> None:
        for op, at in self.op_at.items():
            bad = attr_problems(op, "")  # before the type rules, which would trip over a wrong-typed attribute
            if bad:
                raise FormatError(at + ("attrs",), "; ".join(p.lstrip(": ") for p in bad))
            for chk in OP_CHECKS:
                problem = chk(op)
                if problem:
                    raise FormatError(at, f"{op.kind}.{op.id}: {problem}")
        try:
            verify(ir, "loaded")
        except VerificationError as e:
            raise FormatError((), f"the file reads but is not a valid IR (load with check=False to inspect it): {e}") from None

    def graph(self, ir: Ir, g: Graph, gd: dict, at: tuple) -> None:
        only_keys(gd, GRAPH_KEYS, at)
        for j, vd in enumerate(field(gd, "values", at, list)):
            w = at + ("values", j)
            vid = field(vd, "id", w, int)
            only_keys(vd, VALUE_KEYS, w)
            if any(vid in h.values for h in ir.graphs.values()):
                raise FormatError(w + ("id",), f"value id {vid} is defined twice")
            kind = field(vd, "kind", w, str)
            if kind not in ("input", "op", *DEFINED_KINDS):
                raise FormatError(w + ("kind",), f"kind is one of input, op, {', '.join(DEFINED_KINDS)}; got {kind!r}")
            g.values[vid] = Value(vid, _spec(vd, w, meta=True), field(vd, "name", w, str), g, kind,  # type: ignore[arg-type]
                                  None, field(vd, "storage", w, int), field(vd, "version", w, int))
        for j, od in enumerate(field(gd, "ops", at, list)):
            with guard(at + ("ops", j), "op"):
                self.op(ir, g, od, at + ("ops", j))
        with guard(at, "graph"):
            vals = g.values
            g.inputs = self.refs(vals, field(gd, "inputs", at, list), at + ("inputs",), "value id")
            g.input_names = {self.ref(vals, int_key(k, at + ("input_names",)), at + ("input_names", k), "value id").id:
                             field(gd["input_names"], k, at + ("input_names",), str) for k in field(gd, "input_names", at, dict)}
            g.by_ref = set(field(gd, "by_ref", at, list))
            if not all(type(i) is int and 0 <= i < len(g.inputs) for i in g.by_ref):
                raise FormatError(at + ("by_ref",), f"by_ref holds indices into the {len(g.inputs)} inputs, got {gd['by_ref']}")
            g.outputs = self.refs(vals, field(gd, "outputs", at, list), at + ("outputs",), "value id")
            mine = {op.id: op for op in g.ops}
            for n, pair in enumerate(field(gd, "constraints", at, list)):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise FormatError(at + ("constraints", n), f"a constraint is [before op id, after op id], got {pair!r}")
                g.constraints.append(tuple(self.refs(mine, pair, at + ("constraints", n), "op id in this graph")))
            g.unordered_groups = [self.refs(mine, grp, at + ("unordered_groups", n), "op id in this graph")
                                  for n, grp in enumerate(field(gd, "unordered_groups", at, list))]
            g.info = decode(field(gd, "info", at, dict, {}), at + ("info",))

    def op(self, ir: Ir, g: Graph, od: dict, w: tuple) -> None:
        oid = field(od, "id", w, int)
        only_keys(od, OP_KEYS, w)
        if oid in self.op_ids:
            raise FormatError(w + ("id",), f"op id {oid} is used twice")
        ins = self.refs(g.values, field(od, "inputs", w, list), w + ("inputs",), "value id")
        roles = tuple(field(od, "roles", w, list))
        if len(roles) != len(ins) or not all(isinstance(r, str) for r in roles):
            raise FormatError(w + ("roles",), f"one role name per input: {len(ins)} inputs, roles {list(roles)}")
        attrs = decode(field(od, "attrs", w, dict), w + ("attrs",))
        if not isinstance(attrs, dict):
            raise FormatError(w + ("attrs",), f"attrs is an object, got {type(attrs).__name__}")
        called = field(od, "called", w, (str, type(None)), None)
        op = Op(oid, field(od, "kind", w, str), ins, roles, attrs, g, field(od, "name", w, str),
                tuple(field(od, "modifies", w, list, [])),
                {int_key(o, w + ("aliases",)): i for o, i in field(od, "aliases", w, dict, {}).items()},
                None if called is None else self.ref(ir.graphs, called, w + ("called",), "graph"),
                field(od, "source", w, (str, type(None)), None))
        if not all(type(i) is int and 0 <= i < len(ins) for i in [*op.modifies, *op.aliases.values()]):
            raise FormatError(w, f"modifies {list(op.modifies)} / aliases {op.aliases} name inputs that do not exist")
        op.outputs = self.refs(g.values, field(od, "outputs", w, list), w + ("outputs",), "value id")
        op.updates = {int_key(i, w + ("updates",)): self.ref(g.values, v, w + ("updates", i), "value id")
                      for i, v in field(od, "updates", w, dict, {}).items()}
        hs = field(od, "handles", w, (list, type(None)), None)
        op.handles = None if hs is None else tuple(self.refs(g.values, hs, w + ("handles",), "value id"))
        for v in op.results:
            if v.producer is not None:
                raise FormatError(w + ("outputs",), f"value {v.id} is already produced by op {v.producer.id}")
            v.producer = op
        g.ops.append(op)
        self.op_at[op] = w
        self.op_ids.add(oid)
