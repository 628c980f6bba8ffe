"""Matmul prologues: the fused producer of a matmul operand, computed into the stack buffer that the
micro-kernels then read in place of the operand (passes/fuse_matmul_prologue.py decides where).

The operand may be batched (its batch dims broadcast against the result's, as MatMul's do) or a 1-d
vector: `at(bi)` selects the operand's matrix for batch matrix bi of the result, and `region` computes a
rectangle of that matrix in its stored layout (a 1-d a is one row (1, K), a 1-d b one column (K, 1)).

Bit-identical to the unfused program: each element of the operand is the same primitive expression
over the same inputs, lowered by the same rules (rules.py, no fast-math flags; float16/bfloat16 nodes
rounded after each primitive, as fused kernels do), stored in the operand's dtype; the matmul then reads
the same values along the same micro-kernel path, only from another address.
"""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from compiler.ir import DType, Op, Value
from compiler.ops.primitives import Prim

from .loops import broadcast_strides, c64, for_range
from .rules import Ctx, lower_node
from .types import compute_type, const, round_to, to_compute, to_storage

Index = Callable[[ir.Value, ir.Value], ir.Value]


def matrix_strides(shape: tuple[int, ...], operand: tuple[int, ...], slot: int, batch: tuple[int, ...]
                   ) -> tuple[tuple[int, ...], int, int]:
    """Element strides of a tensor of `shape` (broadcasting to the operand's shape) along the result's
    batch dims `batch`, and along the rows and columns of the operand's stored matrix (a 1-d operand
    is a row for slot 0, a column for slot 1). Batch dims the operand lacks or broadcasts get 0."""
    s = broadcast_strides(shape, operand)
    if len(operand) == 1:
        row, col = (0, s[0]) if slot == 0 else (s[0], 0)
        return (0,) * len(batch), row, col
    lead = len(batch) - (len(operand) - 2)  # result batch dims in front of the operand's own
    return tuple(s[d - lead] if d >= lead else 0 for d in range(len(batch))), s[-2], s[-1]


def batch_offset(b: ir.IRBuilder, bi: ir.Value, batch: tuple[int, ...], strides: tuple[int, ...]) -> ir.Value:
    """sum over the batch dims of (index of batch matrix bi along d) * strides[d] (bi is batch-major, as
    matmul.emit_tile unflattens it)."""
    off, inner = c64(0), 1
    for d in reversed(range(len(batch))):
        if strides[d]:
            off = b.add(off, b.mul(b.srem(b.sdiv(bi, c64(inner)), c64(batch[d])), c64(strides[d])))
        inner *= batch[d]
    return off


class PrologueEmitter:
    """Loops computing a region of operand `slot`'s matrix from its prologue kernel `k` (a detached
    FusedKernel whose one output is the operand): element (o, i) of the matrix's stored layout goes to
    buf[dst(o, i)]. `batch`: the result's batch dims (() for a 2-d result)."""

    def __init__(self, module: ir.Module, b: ir.IRBuilder, k: Op, typed: Callable[[Value], ir.Value],
                 slot: int = 0, batch: tuple[int, ...] = ()) -> None:
        self.b, self.k, self.typed, self.batch = b, k, typed, batch
        self.ctx = Ctx(b, module)
        self.expr = k.attrs["expr"]
        self.out = k.outputs[0]
        self.strides = [matrix_strides(v.shape, self.out.shape, slot, batch) for v in k.inputs]
        self.base: list[ir.Value] = [c64(0)] * len(k.inputs)

    def at(self, bi: ir.Value) -> None:
        """Read the inputs at batch matrix bi of the result (until the next call)."""
        self.base = [batch_offset(self.b, bi, self.batch, s[0]) for s in self.strides]

    def region(self, buf: ir.Value, outer: tuple[ir.Value | int, ir.Value | int],
               inner: tuple[ir.Value | int, ir.Value | int], dst: Index) -> None:
        b = self.b
        with for_range(b, outer[1], "po", start=outer[0]) as o:
            with for_range(b, inner[1], "pi", start=inner[0]) as i:
                val = self._element(o, i)
                b.store(to_storage(b, val, self.out.dtype), b.gep(buf, [dst(o, i)]))

    def _element(self, o: ir.Value, i: ir.Value) -> ir.Value:
        b, vals = self.b, []
        for n in self.expr.nodes:
            if n.prim is Prim.input:
                v, (_, s0, s1), base = self.k.inputs[n.attr], self.strides[n.attr], self.base[n.attr]
                at = b.add(base, b.add(b.mul(o, c64(s0)), b.mul(i, c64(s1))))
                vals.append(to_compute(b, b.load(b.gep(self.typed(v), [at])), v.dtype))
            elif n.prim is Prim.const:
                vals.append(const(n.dtype, n.attr))
            else:
                args = [vals[a] for a in n.args]
                r = lower_node(self.ctx, n, [self.expr.nodes[a].dtype for a in n.args], args)
                vals.append(round_to(b, r, n.dtype) if n.dtype in (DType.float16, DType.bfloat16) else r)
        (out,) = self.expr.outputs
        val = vals[out]
        if val.type != compute_type(self.out.dtype):
            raise TypeError(f"{self.k.label}: the prologue computes {val.type}, expected {self.out.dtype.name}")
        return val
