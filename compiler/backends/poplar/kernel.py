"""Elementwise ops and FusedKernels as popops::map / mapInPlace / mapWithOutput calls.

before -> after: one elementwise op (or FusedKernel) with primitive expression E over iteration shape S ->
  1. uniform prologue: every node of E that depends only on single-element inputs and is needed by a
     full-size node (or is a single-element result) is computed once, by a small map into a scalar tensor
     (the bias corrections and the incremented Adam step);
  2. one popops::expr tree per full-size result, written with mapInPlace when the result overwrites one of
     the expression's own operands, mapWithOutput when it overwrites a tensor the expression does not
     read, and map when the result is a new tensor. A result that a later result's expression still reads
     in its old version is computed into a temporary and copied after the last full-size result;
     sub-expressions already stored (an earlier result, a prologue scalar) are read back, not recomputed;
  3. single-element results are copied into their tensors last (the in-place step increment).
Expressions with more than 20 operands (popops has placeholders _1.._20) or very large trees are split by
materialising inner nodes into temporaries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np

from compiler.ir import DType, Op, Value
from compiler.ops import expr_for
from compiler.ops.primitives import Prim

from .expr import Term, lower_node
from .scope import Scope, cstr, dims
from .types import host_values, initial_call, poplar_type

MAX_PLACEHOLDERS = 20
MAX_TREE = 400


@dataclass
class KernelCode:
    """What an elementwise op became: the exact statements, and which C++ tensors hold its operands/results."""

    label: str
    inputs: list[str]
    results: list[str | None]  # None: an older version of a storage the op writes again later
    statements: list[str] = field(default_factory=list)
    op: Op | None = field(default=None, repr=False, compare=False)  # the IR op (for tests and tools)


@dataclass(frozen=True)
class _Leaf:
    name: str
    shape: tuple[int, ...]
    dtype: DType


def iteration_shape(op: Op) -> tuple[int, ...]:
    if op.kind == "FusedKernel":
        return tuple(op.attrs["shape"])
    return tuple(np.broadcast_shapes(*([v.shape for v in op.inputs] + [v.shape for v in op.results])))


class _Kernel:
    def __init__(self, scope: Scope, op: Op, code: KernelCode) -> None:
        self.s, self.op, self.code = scope, op, code
        self.e = expr_for(op)
        self.shape = iteration_shape(op)
        self.tag = scope.names.fresh(f"{op.kind[:2].lower()}{op.id}")
        self.where: dict[int, _Leaf] = {}  # node -> tensor holding its value
        self.uniform: set[int] = set()
        for i, n in enumerate(self.e.nodes):
            if (n.prim is Prim.input and op.inputs[n.attr].spec.nelms == 1) or n.prim is Prim.const or (
                    n.args and all(a in self.uniform for a in n.args)):
                self.uniform.add(i)

    # ------------------------------------------------------------ expression trees
    def _input_leaf(self, n: int) -> _Leaf:
        v = self.op.inputs[self.e.nodes[n].attr]
        return _Leaf(self.s.tensor(v), v.shape, v.dtype)

    def _leaf_text(self, leaf: _Leaf, target: tuple[int, ...] | None) -> str:
        if prod(leaf.shape) == 1 and leaf.shape != ():
            return f"{leaf.name}.reshape({{}})"
        if target is not None and leaf.shape != target:
            return f"broadcastTo({leaf.name}, {dims(target)})"
        return leaf.name

    def _leaves_of(self, n: int, acc: dict[str, _Leaf]) -> None:
        if n in self.where:
            acc[self.where[n].name] = self.where[n]
        elif self.e.nodes[n].prim is Prim.input:
            leaf = self._input_leaf(n)
            acc[leaf.name] = leaf
        else:
            for a in self.e.nodes[n].args:
                self._leaves_of(a, acc)

    def _term(self, n: int, order: list[str], target: tuple[int, ...] | None) -> Term:
        leaf = self.where.get(n) or (self._input_leaf(n) if self.e.nodes[n].prim is Prim.input else None)
        if leaf is not None:
            text = self._leaf_text(leaf, target)
            if text not in order:
                order.append(text)
            return Term(f"pe::_{order.index(text) + 1}")
        node = self.e.nodes[n]
        args = [self._term(a, order, target) for a in node.args]
        return lower_node(node, args, [self.e.nodes[a].dtype for a in node.args])

    def _build(self, n: int, out_shape: tuple[int, ...] | None, first: str | None = None) -> tuple[Term, list[str]]:
        """The tree of node n and its operand list, with `first` as _1 when the tree reads it. With out_shape,
        operands are broadcast explicitly when the expression alone would not have that shape."""
        leaves: dict[str, _Leaf] = {}
        self._leaves_of(n, leaves)
        shapes = [() if prod(x.shape) == 1 else x.shape for x in leaves.values()]
        natural = tuple(np.broadcast_shapes(*shapes)) if shapes else ()
        target = out_shape if out_shape is not None and natural != out_shape else None
        order: list[str] = []
        term = self._term(n, order, target)
        if first is not None and first in order and order[0] != first:
            order = [first]
            term = self._term(n, order, target)
        return term, order

    def _fits(self, n: int) -> bool:
        leaves: dict[str, _Leaf] = {}
        self._leaves_of(n, leaves)
        return len(leaves) <= MAX_PLACEHOLDERS and self._size(n) <= MAX_TREE

    def _size(self, n: int) -> int:
        if n in self.where or self.e.nodes[n].prim is Prim.input:
            return 1
        return 1 + sum(self._size(a) for a in self.e.nodes[n].args)

    def _split(self, n: int) -> None:
        """Materialise inner nodes of n until its tree fits popops' limits."""
        while not self._fits(n):
            best, best_key = None, (0, 0)
            todo, seen = list(self.e.nodes[n].args), set()
            while todo:
                m = todo.pop()
                if m in seen or m in self.where or self.e.nodes[m].prim in (Prim.input, Prim.const):
                    continue
                seen.add(m)
                acc: dict[str, _Leaf] = {}
                self._leaves_of(m, acc)
                key = (1 if len(acc) <= MAX_PLACEHOLDERS else 0, self._size(m))
                if key > best_key:
                    best, best_key = m, key
                todo.extend(self.e.nodes[m].args)
            if best is None:
                return
            self._split(best)
            self._materialise(best, scalar=best in self.uniform)

    # ------------------------------------------------------------ statements
    def emit(self, text: str) -> None:
        self.code.statements.append(self.s.stmt(text))

    def _materialise(self, n: int, scalar: bool, name: str | None = None) -> _Leaf:
        """`Tensor t = popops::map(...)` for node n; later trees read t instead of recomputing n."""
        term, order = self._build(n, None)
        name = name or self.s.fresh(f"{self.tag}_v{n}")
        head = f"Tensor {name} = popops::map(graph, "
        self.emit(f"{head}{term.render(len(head))}, {{{', '.join(order)}}}, seq, {cstr(f'{self.op.label}/v{n}')});")
        leaves: dict[str, _Leaf] = {}
        self._leaves_of(n, leaves)
        shapes = [() if prod(x.shape) == 1 else x.shape for x in leaves.values()]
        leaf = _Leaf(name, () if scalar else tuple(np.broadcast_shapes(*shapes)) if shapes else (),
                     self.e.nodes[n].dtype)
        self.where[n] = leaf
        return leaf

    def _raw_reads(self, n: int, stop: set[int]) -> set[int]:
        """Storages of the inputs node n reads directly (not through a node in `stop`)."""
        out: set[int] = set()
        todo, seen = [n], set()
        while todo:
            m = todo.pop()
            if m in seen or m in stop:
                continue
            seen.add(m)
            node = self.e.nodes[m]
            if node.prim is Prim.input:
                out.add(self.op.inputs[node.attr].storage)
            todo.extend(node.args)
        return out

    def run(self) -> None:
        op, e = self.op, self.e
        # store only the newest version of each storage (older ones are dead once the op has run)
        newest: dict[int, int] = {}
        for j, v in enumerate(op.results):
            if v.storage not in newest or op.results[newest[v.storage]].version < v.version:
                newest[v.storage] = j
        stored = sorted(newest.values())
        scalar_out = [j for j in stored if op.results[j].spec.nelms == 1]
        full_out = [j for j in stored if j not in scalar_out]
        written = {op.results[j].storage for j in stored if op.results[j].version > 0}

        # 1. uniform prologue
        needed: set[int] = set()
        for j in stored:
            self._reach(e.outputs[j], needed)
        frontier = [i for i in sorted(needed) if i in self.uniform and e.nodes[i].prim not in (Prim.input, Prim.const)
                    and (any(i in e.nodes[m].args for m in needed if m not in self.uniform)
                         or any(e.outputs[j] == i for j in stored))]
        fresh_scalar = {e.outputs[j]: op.results[j] for j in scalar_out if op.results[j].version == 0}
        for i in frontier:
            self._materialise(i, scalar=True, name=self.s.fresh(fresh_scalar[i].name) if i in fresh_scalar else None)
        for j in scalar_out:  # a single-element result copied from an input the kernel also overwrites
            o = e.outputs[j]
            if o not in self.where and e.nodes[o].prim is Prim.input and op.inputs[e.nodes[o].attr].storage in written:
                src = self._input_leaf(o)
                name = self.s.fresh(f"{self.tag}_v{o}")
                self.emit(f"Tensor {name} = graph.clone({src.name}, {cstr(f'{op.label}/v{o}')});")
                self.emit(f"seq.add(Copy({src.name}, {name}));")
                self.where[o] = _Leaf(name, src.shape, src.dtype)

        # 2. full-size results, one expression tree each
        deferred: list[tuple[str, str]] = []
        for k, j in enumerate(full_out):
            v, o = op.results[j], e.outputs[j]
            later = set()
            for j2 in full_out[k + 1:]:
                later |= self._raw_reads(e.outputs[j2], set(self.where) | {o})
            if v.version > 0 and v.storage in later:
                tmp = self._store(j, o, None)
                deferred.append((tmp, self._target(v)))
            else:
                self._store(j, o, v)
        for tmp, dst in deferred:
            self.emit(f"seq.add(Copy({tmp}, {dst}));")

        # 3. single-element results last
        for j in scalar_out:
            v, o = op.results[j], e.outputs[j]
            src = self.where[o] if o in self.where else self._leafish(o)
            if v.version == 0 and not self.s.has(v):
                if src.name not in self.code.inputs:  # a tensor made here: the result is that tensor
                    self.s.bind(v, src.name if src.shape == v.shape else f"{src.name}.reshape({dims(v.shape)})")
                    continue
                name = self.s.fresh(v.name)  # a copy of an operand: its own tensor, no aliasing
                self.emit(f"Tensor {name} = graph.clone({src.name}, {cstr(f'{op.label}/{v.name}')});")
                self.s.bind(v, name)
            text = src.name if src.shape == v.shape else f"{src.name}.reshape({dims(v.shape)})"
            self.emit(f"seq.add(Copy({text}, {self.s.tensor(v)}));")
        for j, v in enumerate(op.results):
            self.code.results[j] = self.s.tensor(v) if newest[v.storage] == j and self.s.has(v) else None

    def _reach(self, n: int, acc: set[int]) -> None:
        if n in acc:
            return
        acc.add(n)
        for a in self.e.nodes[n].args:
            self._reach(a, acc)

    def _target(self, v: Value) -> str:
        t = self.s.tensor(v)
        return t if v.shape == self.shape else f"{t}.reshape({dims(self.shape)})"

    def _leafish(self, n: int) -> _Leaf:
        """A tensor holding node n when n is an input or a constant (results that are not expressions)."""
        node = self.e.nodes[n]
        if node.prim is Prim.input:
            return self._input_leaf(n)
        name = self.s.fresh(f"{self.tag}_c{n}")
        value = host_values(np.asarray(node.attr, node.dtype.numpy), node.dtype)[0]
        self.emit(f"Tensor {name} = {initial_call(node.dtype, '{}', '{' + value + '}', cstr(f'{self.op.label}/c{n}'))};")
        leaf = _Leaf(name, (), node.dtype)
        self.where[n] = leaf
        return leaf

    def _store(self, j: int, o: int, v: Value | None) -> str:
        """Compute node o (result j) into result value v's tensor, or into a new temporary when v is None."""
        op = self.op
        res = op.results[j]
        dbg = cstr(f"{op.label}/{res.name}")
        node = self.e.nodes[o]
        if o in self.where or node.prim in (Prim.input, Prim.const):  # a copy, not an expression
            src = self.where.get(o) or self._leafish(o)
            text = src.name if src.shape == self.shape else f"broadcastTo({src.name}, {dims(self.shape)})"
            if v is None or not self.s.has(v):
                name = self.s.fresh(res.name if v is not None else f"{self.tag}_r{j}")
                self.emit(f"Tensor {name} = addLinear(graph, {poplar_type(res.dtype, res.name)}, {dims(res.shape)}, {dbg});")
                if v is not None:
                    self.s.bind(v, name)
                dst = name if res.shape == self.shape else f"{name}.reshape({dims(self.shape)})"
            else:
                name, dst = self.s.tensor(v), self._target(v)
            self.emit(f"seq.add(Copy({text}, {dst}));")
            self.where.setdefault(o, _Leaf(name, res.shape, res.dtype))
            return name
        self._split(o)
        if v is not None and self.s.has(v):
            target = self._target(v)
            term, order = self._build(o, self.shape, first=target)
            ts = "{" + ", ".join(order) + "}"
            if order and order[0] == target:
                head = "popops::mapInPlace(graph, "
                self.emit(f"{head}{term.render(len(head))}, {ts}, seq, {dbg});")
            else:
                head = "popops::mapWithOutput(graph, "
                self.emit(f"{head}{term.render(len(head))}, {ts}, {target}, seq, {dbg});")
            name = self.s.tensor(v)
        else:
            term, order = self._build(o, self.shape)
            name = self.s.fresh(res.name if v is not None else f"{self.tag}_r{j}")
            head = f"Tensor {name} = popops::map(graph, "
            self.emit(f"{head}{term.render(len(head))}, {{{', '.join(order)}}}, seq, {dbg});")
            if res.shape != self.shape:
                self.emit(f"{name} = {name}.reshape({dims(res.shape)});")
            if v is not None:
                self.s.bind(v, name)
        self.where[o] = _Leaf(name, res.shape, res.dtype)
        return name


def emit_elementwise(scope: Scope, op: Op) -> KernelCode:
    """Write the popops calls of elementwise op / FusedKernel `op` into `scope`; see the module docstring."""
    code = KernelCode(op.label, [scope.tensor(v) for v in op.inputs], [None] * len(op.results), op=op)
    _Kernel(scope, op, code).run()
    return code
