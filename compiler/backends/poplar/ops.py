"""Lowering rules for the non-elementwise ops: one function per op kind, registered in RULES.

    MatMul                     -> poplin::matMul (rank 2) / poplin::matMulGrouped (batched), partials float
    ReduceSum/Mean/Max/Min     -> popops::reduce with Operation ADD / MAX / MIN (float16 sums accumulate in
    ReduceSumSquare, LambSquare   float, as the reference does), SQUARE_ADD; mean divides by the count
    Reshape, Transpose         -> Tensor::reshape / dimShuffle views (a copy when either side is written later)
    Softmax                    -> popnn::nonLinearity(SOFTMAX_STABLE) over the innermost dimension
    NlllWithSoftmaxGradDirect  -> popops::encodeOneHot + popops::map + popops::reduce
    Init                       -> a variable (+ popops::zero for init_type "zero")
    HostLoad / HostStore       -> program::Copy from / to a poplar::DataStream FIFO
    Call                       -> Copy arguments in, program::Call(function), Copy results out
    PopartSparseAccumulate     -> popops::multiUpdateAdd (axis 0)
"""
from __future__ import annotations

from math import prod
from typing import Callable

import numpy as np

from compiler.ir import DType, Graph, Op, Value
from compiler.ops.collectives import KINDS as COLLECTIVE_KINDS
from compiler.ops.movement import KINDS as MOVEMENT_KINDS
from compiler.ops.nn import norm_axes

from ..rules import RuleTable
from .scope import Scope, cstr, dims, reshape
from .types import PoplarError, const_expr, float_literal, poplar_type

Rule = Callable[[Scope, Op], None]
RULES: RuleTable[str, Rule] = RuleTable("Poplar", "compiler/backends/poplar/ops.py", elementwise=True)
RULES.walk("MultiKernel")  # program.py: one popops kernel per group of buffers
RULES.walk("MatMulEpilogue")  # program.py: the MatMul rule, then the epilogue kernel
rule = RULES.rule
RULES.refuse_all(COLLECTIVE_KINDS, "collectives across replicas are not emitted: "
                 "the Poplar emitter writes a single-replica program")
RULES.refuse_all(("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceProd", "Nll"),
                 "Nll and ReduceL1/L2/LogSum/LogSumExp/Prod are not emitted for Poplar yet (popops::reduce has MUL and "
                 "LOG_ADD, not wired up); run the program with Session(ir, 'cpu') or 'interpreter'")
RULES.refuse_all(MOVEMENT_KINDS, "slice / concat / gather and the in-place view ops are not emitted for Poplar yet; "
                 "run the program with Session(ir, 'cpu') or 'interpreter'")


def _written_after(g: Graph, op: Op, storages: set[int]) -> bool:
    after = g.ops[g.ops.index(op) + 1:]
    return any(v.version > 0 and v.storage in storages for o in after for v in o.results)


def _new(s: Scope, v: Value, expr: str, op: Op) -> str:
    """`Tensor <v> = expr;` and bind v to it."""
    name = s.fresh(v.name)
    s.stmt(f"Tensor {name} = {expr};")
    s.bind(v, name)
    return name


def _view(s: Scope, op: Op, view: str) -> None:
    """Bind the output to a view of the input when neither storage is written later; else to a copy."""
    x, y = op.inputs[0], op.outputs[0]
    if not _written_after(s.graph, op, {x.storage, y.storage}):
        _new(s, y, view, op)
        return
    name = _new(s, y, f"graph.clone({view}, {cstr(op.label)})", op)
    s.stmt(f"seq.add(Copy({view}, {name}));")


@rule("Reshape")
def _reshape(s: Scope, op: Op) -> None:
    _view(s, op, reshape(s.tensor(op.inputs[0]), op.inputs[0].shape, op.outputs[0].shape))


@rule("Transpose")
def _transpose(s: Scope, op: Op) -> None:
    r = len(op.inputs[0].shape)
    perm = op.attrs.get("perm")
    perm = list(perm) if perm is not None else list(reversed(range(r)))
    _view(s, op, f"{s.tensor(op.inputs[0])}.dimShuffle({dims(perm)})")


def _float_only(op: Op, *vals: Value) -> None:
    for v in vals:
        if v.dtype not in (DType.float32, DType.float16):
            raise PoplarError(f"{op.label}: poplin matrix multiplication needs float32 or float16 operands, "
                              f"got {v.name!r} {v.spec}; cast it first")


@rule("MatMul")
def _matmul(s: Scope, op: Op) -> None:
    a, b = op.inputs
    out = op.outputs[0]
    _float_only(op, a, b)
    A, B = s.tensor(a), s.tensor(b)
    sa, sb = list(a.shape), list(b.shape)
    if len(sa) == 1:
        A, sa = f"{A}.reshape({dims([1, sa[0]])})", [1, sa[0]]
    elif op.attrs.get("transpose_a"):
        perm = list(range(len(sa) - 2)) + [len(sa) - 1, len(sa) - 2]
        A, sa = f"{A}.dimShuffle({dims(perm)})", sa[:-2] + [sa[-1], sa[-2]]
    if len(sb) == 1:
        B, sb = f"{B}.reshape({dims([sb[0], 1])})", [sb[0], 1]
    elif op.attrs.get("transpose_b"):
        perm = list(range(len(sb) - 2)) + [len(sb) - 1, len(sb) - 2]
        B, sb = f"{B}.dimShuffle({dims(perm)})", sb[:-2] + [sb[-1], sb[-2]]
    ty, dbg = poplar_type(out.dtype), cstr(op.label)
    if len(sa) == 2 and len(sb) == 2:
        expr = f"poplin::matMul(graph, {A}, {B}, seq, {ty}, {dbg}, matMulOptions())"
        full = (sa[0], sb[1])
    else:  # batched: broadcast the batch dims, flatten them into one group dim
        batch = tuple(np.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2])))
        g = prod(batch)
        A3 = f"broadcastTo({A}, {dims(batch + tuple(sa[-2:]))}).reshape({dims([g] + sa[-2:])})"
        B3 = f"broadcastTo({B}, {dims(batch + tuple(sb[-2:]))}).reshape({dims([g] + sb[-2:])})"
        expr = f"poplin::matMulGrouped(graph, {A3}, {B3}, seq, {ty}, {dbg}, matMulOptions())"
        full = (g, sa[-2], sb[-1])
    _new(s, out, reshape(expr, full, out.shape), op)


_REDUCE = {"ReduceSum": "ADD", "ReduceMean": "ADD", "ReduceMax": "MAX", "ReduceMin": "MIN",
           "ReduceSumSquare": "SQUARE_ADD"}


@rule(*_REDUCE)
def _reduce(s: Scope, op: Op) -> None:
    x, out = op.inputs[0], op.outputs[0]
    axes = norm_axes(op.kind, len(x.shape), op.attrs.get("axes"))
    X, dbg = s.tensor(x), cstr(op.label)
    if not axes or not x.shape:  # nothing to reduce over
        if op.kind == "ReduceSumSquare":
            name = _new(s, out, f"popops::map(graph, pe::Mul(pe::_1, pe::_1), {{{X}}}, seq, {dbg})", op)
        else:
            name = _new(s, out, f"graph.clone({X}, {dbg})", op)
            s.stmt(f"seq.add(Copy({X}, {name}));")
        return
    wide = x.dtype == DType.float16 and op.kind != "ReduceMax" and op.kind != "ReduceMin"
    acc = "FLOAT" if wide else poplar_type(x.dtype, x.name)
    r = s.fresh(f"{out.name}_acc" if wide or op.kind == "ReduceMean" else out.name)
    s.stmt(f"Tensor {r} = popops::reduce(graph, {X}, {acc}, {dims(axes)}, "
           f"popops::Operation::{_REDUCE[op.kind]}, seq, {dbg});")
    if op.kind == "ReduceMean":
        n = prod(x.shape[a] for a in axes)
        count = f"pe::Const({float_literal(n)})" if x.dtype.is_float else const_expr(n, x.dtype)
        s.stmt(f"popops::mapInPlace(graph, pe::Divide(pe::_1, {count}), {{{r}}}, seq, {dbg});")
    if wide:
        s.stmt(f"{r} = popops::map(graph, pe::Cast(pe::_1, HALF), {{{r}}}, seq, {dbg});")
    reduced = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    expr = reshape(r, reduced, out.shape)
    if expr == r:
        s.bind(out, r)
    else:
        _new(s, out, expr, op)


@rule("LambSquare")
def _lamb_square(s: Scope, op: Op) -> None:
    x, out = op.inputs[0], op.outputs[0]
    X, dbg = f"{s.tensor(x)}.flatten()", cstr(op.label)
    if x.dtype != DType.float32:  # the reference squares in float32
        X = f"popops::map(graph, pe::Cast(pe::_1, FLOAT), {{{X}}}, seq, {dbg})"
        xf = s.fresh(f"{x.name}_f32")
        s.stmt(f"Tensor {xf} = {X};")
        X = xf
    _new(s, out, f"popops::reduce(graph, {X}, FLOAT, {{0}}, popops::Operation::SQUARE_ADD, seq, {dbg})", op)


@rule("Softmax")
def _softmax(s: Scope, op: Op) -> None:
    x, out = op.inputs[0], op.outputs[0]
    r = len(x.shape)
    axis = int(op.attrs.get("axis", -1)) % max(r, 1)
    X, dbg = s.tensor(x), cstr(op.label)
    perm = [d for d in range(r) if d != axis] + [axis]
    moved = [x.shape[d] for d in perm]
    if perm != list(range(r)):
        X = f"{X}.dimShuffle({dims(perm)})"
    n = x.shape[axis] if r else 1
    rows = prod(moved) // max(n, 1)
    X = reshape(X, moved, [rows, n])
    y = f"popnn::nonLinearity(graph, popnn::NonLinearityType::SOFTMAX_STABLE, {X}, seq, {dbg})"
    y = reshape(y, [rows, n], moved)
    if perm != list(range(r)):
        inv = [perm.index(d) for d in range(r)]
        y = f"{y}.dimShuffle({dims(inv)})"
    _new(s, out, y, op)


@rule("Init")
def _init(s: Scope, op: Op) -> None:
    out = op.outputs[0]
    undef = op.attrs.get("init_type", "zero") == "undef"
    if undef and all(u.kind == "HostLoad" for u in s.graph.users(out)):
        s.comment("(no code: the HostLoad that reads this creates the tensor it fills)")
        return
    name, _ = s.add_linear(out.name, out.dtype, out.shape, f"{op.label}/{out.name}")
    s.bind(out, name)
    if not undef:
        s.stmt(f"popops::zero(graph, {name}, seq, {cstr(op.label)});")


@rule("HostLoad")
def _host_load(s: Scope, op: Op) -> None:
    out = op.outputs[0]
    stream = s.streams[op.attrs["stream"]]
    name, _ = s.add_linear(out.name, out.dtype, out.shape, f"{op.label}/{out.name}")
    s.bind(out, name)
    s.stmt(f"seq.add(Copy({stream}, {name}));")


@rule("HostStore")
def _host_store(s: Scope, op: Op) -> None:
    s.stmt(f"seq.add(Copy({s.tensor(op.inputs[0])}, {s.streams[op.attrs['stream']]}));")


@rule("Call")
def _call(s: Scope, op: Op) -> None:
    g = op.called
    assert g is not None
    sub = s.callees[g.id]
    for i, x in enumerate(op.inputs):
        s.stmt(f"seq.add(Copy({s.tensor(x)}, {sub}.inputs[{i}]));")
    s.stmt(f"seq.add(Call({sub}.fn, {cstr(op.label)}));")
    for k, o in enumerate(op.outputs):
        name = _new(s, o, f"graph.clone({sub}.outputs[{k}], {cstr(f'{op.label}/{o.name}')})", op)
        s.stmt(f"seq.add(Copy({sub}.outputs[{k}], {name}));")
    for k, i in enumerate(sorted(op.updates)):
        s.stmt(f"seq.add(Copy({sub}.byRef[{k}], {s.tensor(op.inputs[i])}));")


from . import nll, sparse  # noqa: E402,F401  (register NlllWithSoftmaxGradDirect, PopartSparseAccumulate)
