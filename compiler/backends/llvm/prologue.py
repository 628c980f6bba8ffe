"""Matmul prologues: the fused producer of a matmul operand, computed into the stack buffer that the
micro-kernels then read in place of the operand (passes/fuse_matmul_prologue.py decides where).

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


class PrologueEmitter:
    """Loops computing a 2-d operand's region from its prologue kernel `k` (a detached FusedKernel whose
    one output is the operand): element (o, i) of the operand's stored layout goes to buf[dst(o, i)]."""

    def __init__(self, module: ir.Module, b: ir.IRBuilder, k: Op, typed: Callable[[Value], ir.Value]) -> None:
        self.b, self.k, self.typed = b, k, typed
        self.ctx = Ctx(b, module)
        self.expr = k.attrs["expr"]
        self.out = k.outputs[0]
        self.strides = [broadcast_strides(v.shape, self.out.shape) for v in k.inputs]

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
                v, (s0, s1) = self.k.inputs[n.attr], self.strides[n.attr]
                at = b.add(b.mul(o, c64(s0)), b.mul(i, c64(s1)))
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
