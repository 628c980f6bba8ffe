"""popops::expr trees for the nodes of one kernel's primitive expression.

A node's tree reads, as placeholders, the op's input tensors and every node already stored in a tensor
(`where`): an earlier result, a uniform scalar, a temporary. Shared sub-expressions are otherwise
repeated in each tree (popops expressions are trees); when a tree would need more than the 20
placeholders popops has, or grows very large, inner nodes are stored in temporaries first (`split`).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable

import numpy as np

from compiler.ir import DType, Op
from compiler.ops.primitives import Expr, Prim

from .expr import Term, lower_node
from .scope import Scope, dims

MAX_PLACEHOLDERS = 20
MAX_TREE = 400


@dataclass(frozen=True)
class Leaf:
    """A tensor holding a node's value: its C++ expression, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: DType


def natural_shape(leaves: list[Leaf]) -> tuple[int, ...]:
    """The shape popops gives an expression over `leaves` (single elements read as scalars)."""
    shapes = [() if prod(x.shape) == 1 else x.shape for x in leaves]
    return tuple(np.broadcast_shapes(*shapes)) if shapes else ()


class Trees:
    def __init__(self, scope: Scope, op: Op, expr: Expr) -> None:
        self.s, self.op, self.e = scope, op, expr
        self.where: dict[int, Leaf] = {}
        self.materialise: Callable[[int], Leaf] = lambda n: Leaf("", (), DType.float32)  # set by the kernel

    def input_leaf(self, n: int) -> Leaf:
        v = self.op.inputs[self.e.nodes[n].attr]
        return Leaf(self.s.tensor(v), v.shape, v.dtype)

    def leaf(self, n: int) -> Leaf | None:
        """The tensor a tree reads for node n, if it reads one rather than computing n."""
        if n in self.where:
            return self.where[n]
        return self.input_leaf(n) if self.e.nodes[n].prim is Prim.input else None

    def leaves(self, n: int) -> list[Leaf]:
        """The distinct tensors node n's tree reads."""
        out: dict[str, Leaf] = {}
        todo, seen = [n], set()
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            x = self.leaf(m)
            if x is not None:
                out.setdefault(x.name, x)
            else:
                todo.extend(self.e.nodes[m].args)
        return list(out.values())

    def size(self, n: int, memo: dict[int, int] | None = None) -> int:
        """Nodes in n's tree (shared nodes counted per use), capped just above MAX_TREE. Iterative: the
        expression of a long fused chain is as deep as the chain."""
        memo = {} if memo is None else memo
        todo = [n]
        while todo:
            m = todo[-1]
            if m in memo:
                todo.pop()
                continue
            if self.leaf(m) is not None:
                memo[m] = 1
                todo.pop()
                continue
            pending = [a for a in self.e.nodes[m].args if a not in memo]
            if pending:
                todo.extend(pending)
                continue
            memo[m] = min(MAX_TREE + 1, 1 + sum(memo[a] for a in self.e.nodes[m].args))
            todo.pop()
        return memo[n]

    def _text(self, leaf: Leaf, target: tuple[int, ...] | None) -> str:
        if prod(leaf.shape) == 1 and leaf.shape != ():
            return f"{leaf.name}.reshape({{}})"
        if target is not None and leaf.shape != target:
            return f"broadcastTo({leaf.name}, {dims(target)})"
        return leaf.name

    def _term(self, n: int, order: list[str], target: tuple[int, ...] | None) -> Term:
        """n's tree; placeholders numbered in the order a left-to-right walk meets their tensors."""
        done: list[Term] = []  # finished subtrees, in walk order
        todo: list[tuple[int, bool]] = [(n, False)]
        while todo:
            m, args_done = todo.pop()
            node = self.e.nodes[m]
            if args_done:
                k = len(node.args)
                args = done[len(done) - k:]
                del done[len(done) - k:]
                done.append(lower_node(node, args, [self.e.nodes[a].dtype for a in node.args]))
                continue
            x = self.leaf(m)
            if x is not None:
                text = self._text(x, target)
                if text not in order:
                    order.append(text)
                done.append(Term(f"pe::_{order.index(text) + 1}"))
                continue
            todo.append((m, True))
            todo.extend((a, False) for a in reversed(node.args))
        return done[0]

    def build(self, n: int, out_shape: tuple[int, ...] | None = None, first: str | None = None
              ) -> tuple[Term, list[str]]:
        """Node n's tree and its operands, `first` as _1 when the tree reads it. With out_shape, operands are
        broadcast explicitly when the expression alone would have another shape."""
        self.split(n)
        natural = natural_shape(self.leaves(n))
        target = out_shape if out_shape is not None and natural != out_shape else None
        order: list[str] = []
        term = self._term(n, order, target)
        if first is not None and first in order and order[0] != first:
            order = [first]
            term = self._term(n, order, target)
        return term, order

    def split(self, n: int) -> None:
        """Store inner nodes of n in temporaries until its tree fits popops' limits."""
        while len(self.leaves(n)) > MAX_PLACEHOLDERS or self.size(n) > MAX_TREE:
            best, best_key = None, (0, 0)
            todo, seen = list(self.e.nodes[n].args), set()
            while todo:
                m = todo.pop()
                if m in seen or self.leaf(m) is not None or self.e.nodes[m].prim is Prim.const:
                    continue
                seen.add(m)
                key = (int(len(self.leaves(m)) <= MAX_PLACEHOLDERS), self.size(m))
                if key > best_key:
                    best, best_key = m, key
                todo.extend(self.e.nodes[m].args)
            if best is None:
                return
            self.materialise(best)
