"""Gradient rules, attached to each op's definition (`OpDef.grad`).

A rule gets a context (see compiler/autodiff/transform.py: `ctx.fwd(v)` is the forward value v
inside the gradient graph, `ctx.op(kind, inputs, attrs)` builds an op there and returns its
outputs, `ctx.reduce_to(g, shape)` sums a broadcast gradient back to `shape`), the forward op,
and the gradients of its outputs (None where there is none); it returns one gradient (or None)
per forward input.
"""
from __future__ import annotations

from typing import Any, Callable

from compiler.ir import DType, Op

from .registry import OPS

Rule = Callable[[Any, Op, list[Any]], list[Any]]


def grad(*kinds: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for k in kinds:
            OPS[k].grad = fn
        return fn
    return deco


@grad("Add")
def _add(c, op, dys):
    (dy,) = dys
    return [c.reduce_to(dy, v.shape) for v in op.inputs]


@grad("Sub")
def _sub(c, op, dys):
    (dy,) = dys
    a, b = op.inputs
    return [c.reduce_to(dy, a.shape), c.reduce_to(c.op("Neg", {"x": dy})[0], b.shape)]


@grad("Mul")
def _mul(c, op, dys):
    (dy,) = dys
    a, b = op.inputs
    return [c.reduce_to(c.op("Mul", {"a": dy, "b": c.fwd(b)})[0], a.shape),
            c.reduce_to(c.op("Mul", {"a": dy, "b": c.fwd(a)})[0], b.shape)]


@grad("Div")
def _div(c, op, dys):
    (dy,) = dys
    a, b = op.inputs
    fb = c.fwd(b)
    da = c.op("Div", {"a": dy, "b": fb})[0]
    q = c.op("Div", {"a": c.op("Mul", {"a": dy, "b": c.fwd(a)})[0], "b": c.op("Mul", {"a": fb, "b": fb})[0]})[0]
    return [c.reduce_to(da, a.shape), c.reduce_to(c.op("Neg", {"x": q})[0], b.shape)]


@grad("Neg")
def _neg(c, op, dys):
    return [c.op("Neg", {"x": dys[0]})[0]]


@grad("Identity")
def _identity(c, op, dys):
    return [dys[0]]


@grad("Cast")
def _cast(c, op, dys):
    x = op.inputs[0]
    if not x.dtype.is_float:
        return [None]
    return [c.op("Cast", {"x": dys[0]}, {"to": x.dtype})[0]]


@grad("Reshape")
def _reshape(c, op, dys):
    return [c.op("Reshape", {"x": dys[0]}, {"shape": op.inputs[0].shape})[0]]


@grad("Transpose")
def _transpose(c, op, dys):
    r = len(op.inputs[0].shape)
    perm = op.attrs.get("perm") or tuple(reversed(range(r)))
    inv = tuple(perm.index(i) for i in range(r))
    return [c.op("Transpose", {"x": dys[0]}, {"perm": inv})[0]]


@grad("MatMul")
def _matmul(c, op, dys):
    """dA = dY @ op(B)^T, dB = op(A)^T @ dY, as MatMuls with transpose flags (no transpose copies)."""
    (dy,) = dys
    a, b = op.inputs
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise NotImplementedError("MatMul gradient needs operands of rank >= 2; reshape vectors to matrices")
    ta, tb = bool(op.attrs.get("transpose_a")), bool(op.attrs.get("transpose_b"))
    fa, fb = c.fwd(a), c.fwd(b)
    # C = A' B' with A' = op(A), B' = op(B): dA' = dY B'^T, dB' = A'^T dY; undo op() on the way back
    if not ta:
        da = c.op("MatMul", {"a": dy, "b": fb}, {"transpose_b": not tb})[0]
    else:
        da = c.op("MatMul", {"a": fb, "b": dy}, {"transpose_a": tb, "transpose_b": True})[0]
    if not tb:
        db = c.op("MatMul", {"a": fa, "b": dy}, {"transpose_a": not ta})[0]
    else:
        db = c.op("MatMul", {"a": dy, "b": fa}, {"transpose_a": True, "transpose_b": ta})[0]
    return [c.reduce_to(da, a.shape), c.reduce_to(db, b.shape)]


def _with_x(kind: str, role: str = "x", use_output: bool = False):
    def rule(c, op, dys):
        v = op.outputs[0] if use_output else op.inputs[0]
        return [c.op(kind, {"dy": dys[0], role: c.fwd(v)})[0]]
    return rule


OPS["Gelu"].grad = _with_x("GeluGrad")
OPS["GeluErf"].grad = _with_x("GeluErfGrad")
OPS["Relu"].grad = _with_x("ReluGrad")
OPS["Tanh"].grad = _with_x("TanhGrad", "y", True)
OPS["Sigmoid"].grad = _with_x("SigmoidGrad", "y", True)


@grad("Exp")
def _exp(c, op, dys):
    return [c.op("Mul", {"a": dys[0], "b": c.fwd(op.outputs[0])})[0]]


@grad("Log")
def _log(c, op, dys):
    return [c.op("Div", {"a": dys[0], "b": c.fwd(op.inputs[0])})[0]]


@grad("Sqrt")
def _sqrt(c, op, dys):
    y = c.fwd(op.outputs[0])
    return [c.op("Div", {"a": dys[0], "b": c.op("Mul", {"a": y, "b": c.const(2.0, y.dtype)})[0]})[0]]


@grad("Softmax")
def _softmax(c, op, dys):
    (dy,) = dys
    y = c.fwd(op.outputs[0])
    axis = op.attrs.get("axis", -1)
    s = c.op("ReduceSum", {"x": c.op("Mul", {"a": dy, "b": y})[0]}, {"axes": (axis,), "keepdims": True})[0]
    return [c.op("Mul", {"a": y, "b": c.op("Sub", {"a": dy, "b": s})[0]})[0]]


def _expand(c, dy, x, axes, keepdims):
    """dy of a reduction over `axes` broadcast back to x's shape."""
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if not keepdims:
        dy = c.op("Reshape", {"x": dy}, {"shape": shape})[0]
    zeros = c.op("Init", {}, {"shape": x.shape, "dtype": dy.dtype, "init_type": "zero"})[0]
    return c.op("Add", {"a": zeros, "b": dy})[0]


@grad("ReduceSum", "ReduceMean")
def _reduce(c, op, dys):
    from .nn import norm_axes

    x = op.inputs[0]
    axes = norm_axes(op.kind, len(x.shape), op.attrs.get("axes"))
    g = _expand(c, dys[0], x, axes, op.attrs.get("keepdims", False))
    if op.kind == "ReduceMean":
        n = 1
        for a in axes:
            n *= x.shape[a]
        g = c.op("Mul", {"a": g, "b": c.const(1.0 / n, g.dtype)})[0]
    return [g]


@grad("ScaledAdd")
def _scaled_add(c, op, dys):
    (dy,) = dys
    if op.has("a") or op.has("b"):
        raise NotImplementedError("ScaledAdd gradient with Tensor scales is not supported; use float scales")
    a, b = float(op.attrs.get("a", 1.0)), float(op.attrs.get("b", 1.0))
    if op.attrs.get("negate_b"):
        b = -b
    x, y = op.inputs[0], op.inputs[1]
    gx = c.op("Mul", {"a": dy, "b": c.const(a, dy.dtype)})[0]
    gy = c.op("Mul", {"a": dy, "b": c.const(b, dy.dtype)})[0]
    if y.dtype != dy.dtype:
        gy = c.op("Cast", {"x": gy}, {"to": y.dtype})[0]
    return [gx, gy]


__all__ = ["grad", "DType"]


@grad("Call")
def _call(c, op, dys):
    """Differentiate the called graph (once per callee), expose its activations as extra outputs of this
    call, and call the gradient graph with (output gradients, activations)."""
    from compiler.ir import TensorSpec

    callee = op.called
    info = c.grad_of(callee)
    n_old = len(op.outputs)
    for v in callee.outputs[n_old:]:  # activations the callee's autodiff added as outputs
        nv = op.graph.new_value(TensorSpec(v.shape, v.dtype), v.name, "op", op)
        op.outputs.append(nv)
    op.attrs["out_specs"] = tuple((v.shape, v.dtype) for v in callee.outputs)
    args = {}
    for k, (kind, v) in enumerate(info.expected_inputs):
        if kind == "grad":
            j = [i for i, o in enumerate(callee.outputs) if o is v][0]
            args[f"in{k}"] = dys[j] if j < len(dys) else c.zeros(v.spec)
        else:
            if v.kind == "input":
                parent = op.inputs[[i for i, x in enumerate(callee.inputs) if x is v][0]]
            else:
                parent = op.outputs[[i for i, o in enumerate(callee.outputs) if o is v][0]]
            args[f"in{k}"] = c.fwd(parent)
    outs = c.call(info.graph, args)
    return [outs[[i for i, x in enumerate(info.expected_outputs) if x is v][0]] if any(x is v for x in
            info.expected_outputs) else None for v in callee.inputs]
