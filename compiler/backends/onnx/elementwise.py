"""Elementwise ops and FusedKernels: their primitive expression, node for node, as ONNX opset-11 nodes.

The reference computes every primitive node in its own dtype and rounds after it. ONNX runtimes compute
float16 through float32 and may fuse a chain of float16 nodes into one float32 computation (onnxruntime's
CPU provider does: it inserts casts around float16 nodes it has no kernel for and then drops the ones in
between). So each float16 node is written as Cast(inputs -> float32), the op, Cast(result -> float16):
the explicit round trip is part of the model's semantics and no runtime may remove it. For +, -, *, /,
sqrt this is exactly the reference's rounding (float32 holds the exact result of a float16 op closely
enough that rounding it to float16 is correct rounding). Small integer types compute in int32 and wrap
back, which is what numpy's arithmetic does; opset 11 has no int8/int16 Add, Mul, Equal.

    add sub mul div -> Add Sub Mul Div (integer div: Where(b == 0, 0, a / (b == 0 ? 1 : b)), the
                       reference's x/0 = 0, also avoiding a division trap in the runtime)
    max min         -> Max Min (floats, NaN-propagating like numpy); Where(a > b, a, b) for integers
    neg             -> Neg; 0 - a for unsigned integers
    sqrt exp log tanh sin cos abs sign floor pow erf -> the ONNX op of the same name (floor of an integer and
                       pow of integers: Identity, Pow in float64); erf of float64 via float32
    fma             -> Mul and Add in float64, then one rounding (what the reference does)
    lt gt eq        -> Less Greater Equal; le ge -> Or(Less/Greater, Equal); ne -> Not(Equal)
    select          -> Where;  cast -> Cast;  const -> an initializer in the node's dtype
"""
from __future__ import annotations

import numpy as np

from compiler.ir import DType, Op
from compiler.ops import expr_for
from compiler.ops.primitives import Node, Prim

from .builder import Builder

_FLOAT_OP = {Prim.add: "Add", Prim.sub: "Sub", Prim.mul: "Mul", Prim.div: "Div", Prim.sqrt: "Sqrt",
             Prim.exp: "Exp", Prim.log: "Log", Prim.tanh: "Tanh", Prim.abs: "Abs", Prim.sign: "Sign",
             Prim.floor: "Floor", Prim.max: "Max", Prim.min: "Min", Prim.pow: "Pow", Prim.neg: "Neg",
             Prim.erf: "Erf", Prim.sin: "Sin", Prim.cos: "Cos"}
_SMALL_INTS = {DType.int8, DType.int16, DType.uint8, DType.uint16}


def compute_dtype(dt: DType) -> DType:
    """The dtype an ONNX node computes a primitive of dtype `dt` in (the result is cast back to dt)."""
    if dt in (DType.float16, DType.bfloat16):
        return DType.float32
    if dt in _SMALL_INTS:
        return DType.int32
    return dt


def _arith(b: Builder, n: Node, a: list[str], cd: DType) -> str:
    """Primitive `n` on operands `a` (already in compute dtype cd); the result is in cd."""
    p = n.prim
    if p is Prim.fma:
        wide = [b.cast(x, cd, DType.float64) for x in a]
        return b.cast(b.one("Add", b.one("Mul", wide[0], wide[1]), wide[2]), DType.float64, cd)
    if cd.is_float:
        if p is Prim.erf and cd == DType.float64:  # onnxruntime has no float64 Erf
            return b.cast(b.one("Erf", b.cast(a[0], cd, DType.float32)), DType.float32, cd)
        return b.one(_FLOAT_OP[p], *a)
    # integers
    if p is Prim.div:
        zero, one = b.const(0, cd.numpy), b.const(1, cd.numpy)
        is_zero = b.one("Equal", a[1], zero)
        safe = b.one("Where", is_zero, one, a[1])
        return b.one("Where", is_zero, zero, b.one("Div", a[0], safe))
    if p in (Prim.max, Prim.min):
        pick = b.one("Greater" if p is Prim.max else "Less", a[0], a[1])
        return b.one("Where", pick, a[0], a[1])
    if p is Prim.floor:
        return a[0]
    if p is Prim.neg and not cd.is_signed:
        return b.one("Sub", b.const(0, cd.numpy), a[0])
    if p is Prim.pow:
        f64 = [b.cast(x, cd, DType.float64) for x in a]
        return b.cast(b.one("Pow", *f64), DType.float64, cd)
    if p in (Prim.add, Prim.sub, Prim.mul, Prim.neg, Prim.abs, Prim.sign):
        return b.one(_FLOAT_OP[p], *a)
    raise NotImplementedError(f"ONNX export: primitive {p.value} of integer dtype {cd.name} has no lowering")


def lower_node(b: Builder, n: Node, args: list[str], arg_dtypes: list[DType]) -> str:
    """The ONNX tensor (of dtype n.dtype) computing primitive node `n` from `args`."""
    p = n.prim
    if p is Prim.const:
        return b.const(np.asarray(n.attr, n.dtype.numpy), hint="k")
    if p is Prim.cast:
        return b.cast(args[0], arg_dtypes[0], n.dtype)
    if p is Prim.select:
        return b.one("Where", *args)
    if p in (Prim.lt, Prim.le, Prim.gt, Prim.ge, Prim.eq, Prim.ne):
        cd = compute_dtype(arg_dtypes[0])
        x, y = (b.cast(a, dt, cd) for a, dt in zip(args, arg_dtypes))
        if p is Prim.ne:
            return b.one("Not", b.one("Equal", x, y))
        if p in (Prim.lt, Prim.gt, Prim.eq):
            return b.one({Prim.lt: "Less", Prim.gt: "Greater", Prim.eq: "Equal"}[p], x, y)
        strict = b.one("Less" if p is Prim.le else "Greater", x, y)
        return b.one("Or", strict, b.one("Equal", x, y))
    cd = compute_dtype(n.dtype)
    wide = [b.cast(a, dt, cd) for a, dt in zip(args, arg_dtypes)]
    return b.cast(_arith(b, n, wide, cd), cd, n.dtype)


def _shape_of(e, o: int, op: Op) -> tuple[int, ...]:
    """The shape node o evaluates to: the broadcast of the inputs it depends on."""
    deps: set[int] = set()
    todo, seen = [o], set()
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        if e.nodes[k].prim is Prim.input:
            deps.add(e.nodes[k].attr)
        todo.extend(e.nodes[k].args)
    return tuple(np.broadcast_shapes(*(op.inputs[i].shape for i in deps))) if deps else ()


def emit_elementwise(b: Builder, op: Op, names: dict[int, str]) -> None:
    """The nodes of elementwise op / FusedKernel `op`; binds each result value id to its ONNX name."""
    e = expr_for(op)
    vals: list[str] = []
    for n in e.nodes:
        if n.prim is Prim.input:
            vals.append(names[op.inputs[n.attr].id])
        else:
            vals.append(lower_node(b, n, [vals[a] for a in n.args], [e.nodes[a].dtype for a in n.args]))
    for v, o in zip(op.results, e.outputs):
        out = vals[o]
        if v.shape != _shape_of(e, o, op):  # a result computed from broadcast operands only: full shape
            out = b.one("Expand", out, b.const(np.asarray(v.shape, np.int64), hint="shape"))
        names[v.id] = out
