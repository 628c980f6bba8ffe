"""Copy of an Ir (passes rewrite a copy; the user's Ir stays as built). Value and op ids are kept.

Why not `copy.deepcopy`: values point at their producer op, ops at their input values, so a
recursive copy descends once per op of a dependency chain and dies with RecursionError on deep
programs. This copier walks an explicit worklist: its stack depth does not depend on the program.
Array data (variable initial values, constants) is shared, never copied: passes do not write it.
"""
from __future__ import annotations

import copy
from typing import Any

from .graph import Graph
from .ir import Ir
from .op import Op
from .value import Value


class _Copier:
    def __init__(self, ir: Ir) -> None:
        self.memo: dict[int, Any] = {}
        self.todo: list[Any] = []
        self.deferred: list[tuple[Any, str, Any]] = []  # (new object, attribute, old value)
        for arr in list(ir.variables.values()) + list(ir.constants.values()):
            self.memo[id(arr)] = arr

    def get(self, obj: Any) -> Any:
        """The copy of a Graph / Op / Value (an empty shell until the worklist fills it)."""
        new = self.memo.get(id(obj))
        if new is None:
            new = object.__new__(type(obj))
            self.memo[id(obj)] = new
            self.todo.append(obj)
        return new

    def run(self) -> None:
        while self.todo:
            old = self.todo.pop()
            new = self.memo[id(old)]
            if isinstance(old, Value):
                self._value(old, new)
            elif isinstance(old, Op):
                self._op(old, new)
            else:
                self._graph(old, new)
        # free-form data (op attrs, graph info, unknown attributes) last, when every graph, op and
        # value already has its copy in the memo: deepcopy then maps references instead of recursing
        for new, name, old in self.deferred:
            setattr(new, name, copy.deepcopy(old, self.memo))

    def _value(self, v: Value, n: Value) -> None:
        n.id, n.spec, n.name, n.kind = v.id, v.spec, v.name, v.kind
        n.storage, n.version = v.storage, v.version
        n.graph = self.get(v.graph)
        n.producer = None if v.producer is None else self.get(v.producer)

    def _op(self, op: Op, n: Op) -> None:
        g = self.get
        n.id, n.kind, n.roles, n.name, n.source = op.id, op.kind, op.roles, op.name, op.source
        n.modifies, n.aliases = op.modifies, dict(op.aliases)
        n.inputs = [g(v) for v in op.inputs]
        n.outputs = [g(v) for v in op.outputs]
        n.updates = {i: g(v) for i, v in op.updates.items()}
        n.handles = None if op.handles is None else tuple(g(v) for v in op.handles)
        n.called = None if op.called is None else g(op.called)
        n.graph = g(op.graph)
        self.deferred.append((n, "attrs", op.attrs))

    def _graph(self, gr: Graph, n: Graph) -> None:
        g = self.get
        for name, val in vars(gr).items():
            if name == "ir":
                n.ir = self.memo[id(gr.ir)]
            elif name in ("inputs", "outputs"):
                setattr(n, name, [g(v) for v in val])
            elif name == "ops":
                n.ops = [g(op) for op in val]
            elif name == "values":
                n.values = {k: g(v) for k, v in val.items()}
            elif name == "constraints":
                n.constraints = [(g(a), g(b)) for a, b in val]
            elif name == "unordered_groups":
                n.unordered_groups = [[g(op) for op in grp] for grp in val]
            elif name in ("input_names", "by_ref"):
                setattr(n, name, type(val)(val))
            elif name == "id":
                n.id = val
            else:
                self.deferred.append((n, name, val))


def clone(ir: Ir) -> Ir:
    c = _Copier(ir)
    new = object.__new__(type(ir))
    c.memo[id(ir)] = new
    new.graphs = {gid: c.get(gr) for gid, gr in ir.graphs.items()}
    new.main = c.get(ir.main)
    c.run()
    for name, val in vars(ir).items():
        if name in ("graphs", "main"):
            continue
        if name in ("variables", "constants", "streams"):
            setattr(new, name, dict(val))  # arrays and frozen Stream records are shared
        elif name == "externals":
            new.externals = list(val)  # caller-owned buffers: value ids only, there is no data to share
        else:
            setattr(new, name, copy.deepcopy(val, c.memo))
    return new
