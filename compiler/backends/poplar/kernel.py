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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.ir import Op, Value
from compiler.ops import expr_for
from compiler.ops.primitives import Prim

from .scope import Scope, cstr, dims
from .trees import Leaf, Trees, natural_shape
from .types import host_values, initial_call, poplar_type


@dataclass
class KernelCode:
    """What an elementwise op became: the exact statements, and which C++ tensors hold its operands/results."""

    label: str
    inputs: list[str]
    results: list[str | None]  # None: an older version of a storage the op writes again later
    statements: list[str] = field(default_factory=list)
    op: Op | None = field(default=None, repr=False, compare=False)  # the IR op (for tests and tools)


def iteration_shape(op: Op) -> tuple[int, ...]:
    if op.kind == "FusedKernel":
        return tuple(op.attrs["shape"])
    return tuple(np.broadcast_shapes(*([v.shape for v in op.inputs] + [v.shape for v in op.results])))


class _Kernel(Trees):
    def __init__(self, scope: Scope, op: Op, code: KernelCode) -> None:
        super().__init__(scope, op, expr_for(op))
        self.code = code
        self.shape = iteration_shape(op)
        self.tag = scope.names.fresh(f"{op.kind[:2].lower()}{op.id}")
        self.materialise = lambda n: self._materialise(n)
        self.uniform: set[int] = set()
        for i, n in enumerate(self.e.nodes):
            if (n.prim is Prim.input and op.inputs[n.attr].spec.nelms == 1) or n.prim is Prim.const or (
                    n.args and all(a in self.uniform for a in n.args)):
                self.uniform.add(i)

    def emit(self, text: str) -> None:
        self.code.statements.append(self.s.stmt(text))

    def _materialise(self, n: int, name: str | None = None) -> Leaf:
        """`Tensor t = popops::map(...)` for node n; later trees read t instead of recomputing n."""
        term, order = self.build(n)
        name = name or self.s.fresh(f"{self.tag}_v{n}")
        head = f"Tensor {name} = popops::map(graph, "
        self.emit(f"{head}{term.render(len(head))}, {{{', '.join(order)}}}, seq, {cstr(f'{self.op.label}/v{n}')});")
        leaf = Leaf(name, natural_shape(self.leaves(n)), self.e.nodes[n].dtype)
        self.where[n] = leaf
        return leaf

    def _raw_reads(self, n: int) -> set[int]:
        """Storages of the inputs node n's tree reads directly (not through a stored node)."""
        out: set[int] = set()
        todo, seen = [n], set()
        while todo:
            m = todo.pop()
            if m in seen or m in self.where:
                continue
            seen.add(m)
            if self.e.nodes[m].prim is Prim.input:
                out.add(self.op.inputs[self.e.nodes[m].attr].storage)
            todo.extend(self.e.nodes[m].args)
        return out

    def _reach(self, outs: list[int]) -> set[int]:
        acc, todo = set(), list(outs)
        while todo:
            n = todo.pop()
            if n not in acc:
                acc.add(n)
                todo.extend(self.e.nodes[n].args)
        return acc

    def _constant(self, n: int) -> Leaf:
        """A one-element tensor holding constant node n (a result that is a constant)."""
        node = self.e.nodes[n]
        name = self.s.fresh(f"{self.tag}_c{n}")
        value = host_values(np.asarray(node.attr, node.dtype.numpy), node.dtype)[0]
        self.emit(f"Tensor {name} = {initial_call(node.dtype, '{}', '{' + value + '}', cstr(f'{self.op.label}/c{n}'))};")
        self.where[n] = Leaf(name, (), node.dtype)
        return self.where[n]

    def run(self) -> None:
        op, e = self.op, self.e
        newest: dict[int, int] = {}  # storage -> the result holding its newest version (older ones are dead)
        for j, v in enumerate(op.results):
            if v.storage not in newest or op.results[newest[v.storage]].version < v.version:
                newest[v.storage] = j
        stored = sorted(newest.values())
        scalar_out = [j for j in stored if op.results[j].spec.nelms == 1]
        full_out = [j for j in stored if j not in scalar_out]
        written = {op.results[j].storage for j in stored if op.results[j].version > 0}

        # 1. uniform prologue
        needed = self._reach([e.outputs[j] for j in stored])
        frontier = [i for i in sorted(needed) if i in self.uniform and e.nodes[i].prim not in (Prim.input, Prim.const)
                    and (any(i in e.nodes[m].args for m in needed if m not in self.uniform)
                         or any(e.outputs[j] == i for j in stored))]
        fresh_scalar = {e.outputs[j]: op.results[j] for j in scalar_out if op.results[j].version == 0}
        for i in frontier:
            self._materialise(i, self.s.fresh(fresh_scalar[i].name) if i in fresh_scalar else None)
        for j in scalar_out:  # a single-element result copied from an input the kernel also overwrites
            o = e.outputs[j]
            if o not in self.where and e.nodes[o].prim is Prim.input and op.inputs[e.nodes[o].attr].storage in written:
                src = self.input_leaf(o)
                name = self.s.fresh(f"{self.tag}_v{o}")
                self.emit(f"Tensor {name} = graph.clone({src.name}, {cstr(f'{op.label}/v{o}')});")
                self.emit(f"seq.add(Copy({src.name}, {name}));")
                self.where[o] = Leaf(name, src.shape, src.dtype)

        # 2. full-size results, one expression tree each
        deferred: list[tuple[str, str]] = []
        for k, j in enumerate(full_out):
            v, o = op.results[j], e.outputs[j]
            if v.version > 0 and v.storage in self._later_after(full_out[k + 1:], o):
                deferred.append((self._store(j, o, None), self._target(v)))
            else:
                self._store(j, o, v)
        for tmp, dst in deferred:
            self.emit(f"seq.add(Copy({tmp}, {dst}));")

        # 3. single-element results last
        for j in scalar_out:
            v, o = op.results[j], e.outputs[j]
            src = self.leaf(o) or self._constant(o)
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

    def _later_after(self, later_results: list[int], o: int) -> set[int]:
        """Raw reads of the later results once node o is stored (their trees then read o's tensor)."""
        saved = self.where.get(o)
        self.where[o] = Leaf(f"<{o}>", (), self.e.nodes[o].dtype)
        try:
            out: set[int] = set()
            for j2 in later_results:
                out |= self._raw_reads(self.e.outputs[j2])
            return out
        finally:
            if saved is None:
                del self.where[o]
            else:
                self.where[o] = saved

    def _target(self, v: Value) -> str:
        t = self.s.tensor(v)
        return t if v.shape == self.shape else f"{t}.reshape({dims(self.shape)})"

    def _store(self, j: int, o: int, v: Value | None) -> str:
        """Node o (result j) into v's existing tensor, or into a new tensor (v's, or a temporary when v is None).
        Returns the tensor written, viewed in the iteration shape."""
        res = self.op.results[j]
        dbg = cstr(f"{self.op.label}/{res.name}")
        node = self.e.nodes[o]
        copy_of = self.leaf(o) or (self._constant(o) if node.prim is Prim.const else None)
        src = None
        if copy_of is not None:  # the result is a stored value or an operand: a copy, not an expression
            src = copy_of.name if copy_of.shape == self.shape else f"broadcastTo({copy_of.name}, {dims(self.shape)})"
        if v is not None and self.s.has(v):  # overwrite the tensor of an in-place result
            target = self._target(v)
            if src is not None:
                self.emit(f"seq.add(Copy({src}, {target}));")
            else:
                term, order = self.build(o, self.shape, first=target)
                inplace = bool(order) and order[0] == target
                head = "popops::mapInPlace(graph, " if inplace else "popops::mapWithOutput(graph, "
                out = "" if inplace else f", {target}"
                self.emit(f"{head}{term.render(len(head))}, {{{', '.join(order)}}}{out}, seq, {dbg});")
            self.where[o] = Leaf(self.s.tensor(v), v.shape, v.dtype)
            return target
        name = self.s.fresh(res.name if v is not None else f"{self.tag}_r{j}")
        if src is not None:
            self.emit(f"Tensor {name} = addLinear(graph, {poplar_type(res.dtype, res.name)}, {dims(self.shape)}, {dbg});")
            self.emit(f"seq.add(Copy({src}, {name}));")
        else:
            term, order = self.build(o, self.shape)
            head = f"Tensor {name} = popops::map(graph, "
            self.emit(f"{head}{term.render(len(head))}, {{{', '.join(order)}}}, seq, {dbg});")
        view = name if res.shape == self.shape else f"{name}.reshape({dims(res.shape)})"
        if v is not None:
            self.s.bind(v, view)
        self.where[o] = Leaf(view, res.shape, res.dtype)
        return name


def emit_elementwise(scope: Scope, op: Op) -> KernelCode:
    """Write the popops calls of elementwise op / FusedKernel `op` into `scope`; see the module docstring."""
    code = KernelCode(op.label, [scope.tensor(v) for v in op.inputs], [None] * len(op.results), op=op)
    _Kernel(scope, op, code).run()
    return code
