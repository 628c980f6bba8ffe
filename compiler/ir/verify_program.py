"""Program-level invariants the backends and the runtime rely on, beyond the graphs' SSA structure.

Native code trusts these facts without checking them again, so an Ir that breaks one (a hand-edited
saved file, a buggy pass) must be refused before any code is generated:

- every HostLoad / HostStore names a stream of the right direction whose shape and dtype are exactly
  its tensor's (the compiled loops copy `stream.nbytes` per step), only in the main graph, and at most
  one HostStore per stream (one step writes one batch);
- every variable and constant has data of exactly its value's shape and dtype;
- values share a storage only as versions of one in-place chain (the interpreter and the memory
  planner key buffers by storage);
- every modified input has exactly one next version, which the op produces;
- attributes have the types the op rules read (a `null` learning rate must not become NaN weights);
- `num_host_transfers` and `replication_factor` are integers >= 1; no tensor is too large to address.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .dtypes import DType
from .graph import Graph
from .op import Op

# far beyond any host's memory; larger sizes would overflow 64-bit byte offsets in the loops
MAX_BYTES = 2 ** 48


def _number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _ints(x: Any, minimum: int | None = None) -> bool:
    return isinstance(x, tuple) and all(type(i) is int and (minimum is None or i >= minimum) for i in x)


# attribute name -> (what it must be, test); names are shared by every op kind that uses them
ATTR_TYPES: dict[str, tuple[str, Any]] = {
    **{k: ("a number", _number) for k in ("a", "b", "b1", "b2", "eps", "f", "lr", "max", "min", "mwn", "wd",
                                          "loss_grad", "scale")},
    **{k: ("true or false", lambda x: isinstance(x, bool)) for k in ("keepdims", "transpose_a", "transpose_b",
                                                                      "negate_b", "detach")},
    **{k: ("a string", lambda x: isinstance(x, str)) for k in ("stream", "init_type", "mode", "type", "reduction")},
    **{k: ("a dtype", lambda x: isinstance(x, DType)) for k in ("dtype", "to")},
    "axis": ("an integer", lambda x: type(x) is int),
    "ignore_index": ("an integer or null", lambda x: x is None or type(x) is int),
    "shape": ("a tuple of integers >= -1", lambda x: _ints(x, -1)),
    "perm": ("a tuple of integers", lambda x: x is None or _ints(x)),
    "axes": ("a tuple of integers or null", lambda x: x is None or _ints(x)),
    "out_specs": ("a tuple of (shape, dtype) pairs",
                  lambda x: isinstance(x, tuple) and all(isinstance(p, tuple) and len(p) == 2 and _ints(p[0], 0)
                                                         and isinstance(p[1], DType) for p in x)),
}


def attr_problems(op: Op, where: str) -> list[str]:
    out = []
    for k, v in op.attrs.items():
        rule = ATTR_TYPES.get(k)
        if rule is not None and not rule[1](v):
            out.append(f"{where}: {op.label} attribute {k!r} must be {rule[0]}, got {v!r}")
    return out


def stream_problems(ir: Any) -> list[str]:
    out = []
    stores: dict[tuple[str, str], list[Any]] = {}
    for g in ir.graphs.values():
        where = f"graph {g.id!r}" if g.id else "main graph"
        for op in g.ops:
            if op.kind not in ("HostLoad", "HostStore"):
                continue
            name = op.attrs.get("stream")
            want = "h2d" if op.kind == "HostLoad" else "d2h"
            if op.kind == "HostLoad" and len(op.results) != 1 or op.kind == "HostStore" and (
                    len(op.inputs), len(op.results)) != (1, 0):
                out.append(f"{where}: {op.label} reads {len(op.inputs)} values and defines {len(op.results)}; a "
                           + ("HostLoad defines one value" if want == "h2d" else "HostStore reads one and defines none"))
                continue
            s = ir.streams.get(name) if isinstance(name, str) else None
            if s is None:
                out.append(f"{where}: {op.label} uses stream {name!r}, which the Ir does not declare")
                continue
            if g is not ir.main:
                out.append(f"{where}: {op.label} uses stream {name!r} outside the main graph; host transfers "
                           "happen once per step, in the main graph")
            if s.direction != want:
                out.append(f"{where}: {op.label} uses {s.direction} stream {name!r}; it needs a {want} stream")
            for v in (*op.inputs, *op.outputs):
                if v.spec.shape != s.spec.shape or v.spec.dtype != s.spec.dtype:
                    out.append(f"{where}: {op.label} moves {v.name!r} {v.spec} through stream {name!r} "
                               f"{s.spec}; they must have the same shape and dtype")
            stores.setdefault((op.kind, name), []).append(op)
    # the k-th load / store of a stream in one execution moves that execution's k-th host transfer
    # (attr `transfer`, default 0): the ops of one stream must number the transfers 0 .. k-1 once each
    for (kind, name), ops in stores.items():
        got = sorted(op.attrs.get("transfer", 0) for op in ops)
        if got != list(range(len(ops))):
            out.append(f"stream {name!r} is used by {len(ops)} {kind} ops ({', '.join(op.label for op in ops)}) "
                       f"numbered as host transfers {got}; they must be 0 .. {len(ops) - 1}, each once (build them "
                       "with popxl.ops.host_load / host_store, which number them in program order)")
    return out


def _data_problem(what: str, a: Any, spec: Any) -> str | None:
    if not isinstance(a, np.ndarray):
        return f"{what} has data of type {type(a).__name__}, not an array"
    if a.shape != spec.shape or a.dtype != spec.dtype.numpy:
        return f"{what} is {spec} but its data is {a.dtype}{a.shape}"
    return None


def data_problems(ir: Any) -> list[str]:
    out = []
    for table, kind in ((ir.variables, "variable"), (ir.constants, "constant")):
        for vid, a in table.items():
            v = next((g.values[vid] for g in ir.graphs.values() if vid in g.values), None)
            if v is None:
                out.append(f"{kind} %{vid} has data but no value in any graph")
                continue
            if v.kind != kind:
                out.append(f"%{vid} ({v.name!r}) has {kind} data but is a value of kind {v.kind!r}")
            p = _data_problem(f"{kind} {v.name!r} (%{vid})", a, v.spec)
            if p:
                out.append(p)
    externals = ir.externals
    for vid in {vid for vid in externals if externals.count(vid) > 1}:
        out.append(f"caller-owned buffer %{vid} is listed twice in the Ir's externals")
    for g in ir.graphs.values():
        for v in g.values.values():
            if v.kind == "variable" and (g is not ir.main or v.id not in ir.variables):
                out.append(f"variable {v.name!r} (%{v.id}) has no data in the Ir's variables")
            elif v.kind == "external" and (g is not ir.main or v.id not in externals):
                out.append(f"caller-owned buffer {v.name!r} (%{v.id}) is not a main-graph value listed in the "
                           "Ir's externals")
            elif v.kind != "external" and v.id in externals:
                out.append(f"%{v.id} ({v.name!r}) is listed as a caller-owned buffer but is a value of kind "
                           f"{v.kind!r}; create it with Ir.add_external")
            elif v.kind == "constant" and v.id not in ir.constants:
                out.append(f"constant {v.name!r} (%{v.id}) has no data in the Ir's constants")
    return out


def storage_problems(g: Graph) -> list[str]:
    """Values share a storage only as versions of one chain: a root (version 0, not an in-place result)
    and then each next version produced by the op that modifies the previous one."""
    where = f"graph {g.id!r}" if g.id else "main graph"
    out = []
    new_versions: set[int] = set()
    for op in g.ops:
        for i in op.modifies:
            if not 0 <= i < len(op.inputs):
                continue  # verify.graph_problems reports it
            nxt = [op.outputs[o] for o, j in op.aliases.items() if j == i and o < len(op.outputs)]
            nxt += [op.updates[i]] if i in op.updates else []
            src = op.inputs[i]
            if len(nxt) != 1:
                out.append(f"{where}: {op.label} modifies input {i} ({src.name!r}) but produces "
                           f"{len(nxt)} new versions of it; it needs exactly one")
                continue
            v = nxt[0]
            new_versions.add(v.id)
            if src.kind == "constant":
                out.append(f"{where}: {op.label} writes constant {src.name!r} in place; constants never change")
            if v.storage != src.storage or v.version != src.version + 1 or v.spec != src.spec:
                out.append(f"{where}: {op.label} writes {src.name!r} in place, but its new version {v.name!r} is "
                           f"storage {v.storage} version {v.version} {v.spec} instead of storage {src.storage} "
                           f"version {src.version + 1} {src.spec}")
        for i in list(op.updates) + list(op.aliases.values()):
            if i not in op.modifies:
                out.append(f"{where}: {op.label} has a new version of input {i}, which it does not modify")
    roots: dict[int, Any] = {}
    for v in g.values.values():
        if v.id in new_versions:
            continue
        if v.version != 0:
            out.append(f"{where}: {v.name!r} (%{v.id}) is version {v.version} of storage {v.storage}, but no "
                       "op writes it in place")
        elif v.storage in roots:
            out.append(f"{where}: {v.name!r} (%{v.id}) and {roots[v.storage].name!r} (%{roots[v.storage].id}) "
                       f"share storage {v.storage} without an in-place op between them")
        else:
            roots[v.storage] = v
    return out


def size_problems(ir: Any) -> list[str]:
    out = []
    for name, s in ir.streams.items():
        if s.spec.nbytes > MAX_BYTES:
            out.append(f"stream {name!r} {s.spec} holds {s.spec.nbytes} bytes per step, more than any host "
                       f"can address ({MAX_BYTES})")
    for g in ir.graphs.values():
        for v in g.values.values():
            if v.spec.nbytes > MAX_BYTES:
                out.append(f"{v.name!r} (%{v.id}) {v.spec} is {v.spec.nbytes} bytes, more than {MAX_BYTES}")
    return out


def program_problems(ir: Any) -> list[str]:
    problems = []
    for what in ("num_host_transfers", "replication_factor"):
        n = getattr(ir, what)
        if type(n) is not int or n < 1:
            problems.append(f"{what} must be an integer >= 1, got {n!r}")
    problems += size_problems(ir) + stream_problems(ir) + data_problems(ir)
    for g in ir.graphs.values():
        where = f"graph {g.id!r}" if g.id else "main graph"
        problems += storage_problems(g)
        for op in g.ops:
            problems += attr_problems(op, where)
    return problems
