"""Elementwise kernels: one vectorisable loop nest per elementwise op or FusedKernel.

Each kernel is its own function taking one `noalias` pointer per distinct storage it
touches. Nodes that depend only on single-element operands are uniform: computed once
before the loops; single-element results (e.g. AdamUpdater's in-place step) are stored
once after the loops, so a loop never reads a scalar it has already overwritten.
"""
from __future__ import annotations

from math import prod

import numpy as np
from llvmlite import ir

from compiler.ir import DType, Op
from compiler.ops import expr_for
from compiler.ops.primitives import Expr, Prim

from .loops import Space, broadcast_strides, c64, nest
from .parallel import split_loop
from .thresholds import PARALLEL_MIN_ELEMENTS
from .rules import Ctx, lower_node
from .types import I32, PTR, compute_type, const, round_to, storage_type, to_compute, to_storage


def iteration_shape(op: Op) -> tuple[int, ...]:
    if op.kind == "FusedKernel":
        return tuple(op.attrs["shape"])
    shapes = [v.shape for v in op.inputs] + [v.shape for v in op.results]
    return tuple(np.broadcast_shapes(*shapes)) if shapes else ()


def storages_of(op: Op) -> list[int]:
    """Distinct storages an op touches, in first-appearance order (the kernel's parameters)."""
    seen: list[int] = []
    for v in list(op.inputs) + op.results:
        if v.storage not in seen:
            seen.append(v.storage)
    return seen


def emit_elementwise(module: ir.Module, op: Op, name: str) -> ir.Function:
    """The kernel `name(p0, ..., pn, int32 threads)`: loops over at least PARALLEL_MIN_ELEMENTS
    elements are cut into blocks shared out among `threads` threads (parallel.split_loop)."""
    body, outer = emit_body(module, op, name + ".body")
    params = storages_of(op)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * len(params) + [I32]), name)
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    size = prod(iteration_shape(op))
    ptrs, threads = list(fn.args[:-1]), fn.args[-1]
    if outer >= 2 and size >= PARALLEL_MIN_ELEMENTS:
        split_loop(module, b, threads, body, ptrs, outer, size // outer, name)
    else:
        b.call(body, ptrs + [c64(0), c64(outer), ir.Constant(ir.IntType(1), 1)])
    b.ret_void()
    return fn


def emit_body(module: ir.Module, op: Op, name: str) -> tuple[ir.Function, int]:
    """`name(p0..pn, lo, hi, store_uniform)`: the loop nest over outer indices [lo, hi); single-element
    results are stored only when store_uniform is set (once, after every part has run)."""
    expr: Expr = expr_for(op)
    params = storages_of(op)
    fnty = ir.FunctionType(ir.VoidType(), [PTR] * len(params) + [ir.IntType(64), ir.IntType(64), ir.IntType(1)])
    fn = ir.Function(module, fnty, name)
    fn.linkage = "internal"
    for a in fn.args[:len(params)]:
        a.add_attribute("noalias")
    lo, hi, store_uniform = fn.args[len(params):]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ctx = Ctx(b, module)
    space_shape = iteration_shape(op)
    space_n = prod(space_shape)

    def typed(v) -> ir.Value:
        return b.bitcast(fn.args[params.index(v.storage)], storage_type(v.dtype).as_pointer())

    # operands: input nodes and the outputs to store (only the newest version of each storage)
    newest: dict[int, int] = {}
    for j, v in enumerate(op.results):
        if v.storage not in newest or op.results[newest[v.storage]].version < v.version:
            newest[v.storage] = j
    store_js = sorted(newest.values())
    operands = [op.inputs[n.attr] for n in expr.nodes if n.prim is Prim.input] + [op.results[j] for j in store_js]
    uniform_v = [v.spec.nelms == 1 for v in operands]
    loop_ops = [v for v, u in zip(operands, uniform_v) if not u]
    for v in loop_ops:
        if v in op.results and v.shape != space_shape and prod(v.shape) != space_n:
            raise NotImplementedError(f"{op.label}: result {v.name!r} {v.spec} does not cover the iteration space "
                                      f"{space_shape}")
    space = Space.make(space_shape, [broadcast_strides(v.shape, space_shape) for v in loop_ops])

    uniform: set[int] = set()
    for i, n in enumerate(expr.nodes):
        if n.prim is Prim.input:
            if op.inputs[n.attr].spec.nelms == 1:
                uniform.add(i)
        elif n.prim is Prim.const or all(a in uniform for a in n.args):
            uniform.add(i)

    vals: dict[int, ir.Value] = {}

    def compute(i: int, idx: dict[int, ir.Value]) -> None:
        n = expr.nodes[i]
        if n.prim is Prim.input:
            v = op.inputs[n.attr]
            k = idx.get(id(v), c64(0))
            vals[i] = to_compute(b, b.load(b.gep(typed(v), [k])), v.dtype)
        elif n.prim is Prim.const:
            vals[i] = const(n.dtype, n.attr)
        else:
            r = lower_node(ctx, n, [expr.nodes[a].dtype for a in n.args], [vals[a] for a in n.args])
            vals[i] = round_to(b, r, n.dtype) if n.dtype in (DType.float16, DType.bfloat16) else r

    for i in sorted(uniform):
        compute(i, {})
    out_nodes = {j: expr.outputs[j] for j in store_js}

    def store(j: int, k: ir.Value) -> None:
        v = op.results[j]
        node = out_nodes[j]
        val = vals[node]
        if val.type != compute_type(v.dtype):
            raise TypeError(f"{op.label}: output {j} is {expr.nodes[node].dtype.name}, expected {v.dtype.name}")
        b.store(to_storage(b, val, v.dtype), b.gep(typed(v), [k]))

    in_loop = [j for j in store_js if op.results[j].spec.nelms > 1]
    after = [j for j in store_js if op.results[j].spec.nelms == 1]  # empty results store nothing
    if in_loop and space.size > 0:
        with nest(b, space, lo, hi) as idx_list:
            idx = {id(v): k for v, k in zip(loop_ops, idx_list)}
            saved = dict(vals)
            for i in range(len(expr.nodes)):
                if i not in uniform:
                    compute(i, idx)
            for j in in_loop:
                store(j, idx.get(id(op.results[j]), c64(0)))
            vals.clear()
            vals.update(saved)
    if after:
        with b.if_then(store_uniform):
            for j in after:
                node = out_nodes[j]
                if node not in uniform:
                    raise NotImplementedError(f"{op.label}: single-element result {j} depends on per-element values")
                store(j, c64(0))
    b.ret_void()
    return fn, (space.dims[0] if space.dims else 1)
