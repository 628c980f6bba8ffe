"""Lowering rules for the non-elementwise ops, one function per op kind (ONNX opset 11).

    MatMul                     -> MatMul (Transpose for transpose_a/b); float16 in float32, as the reference
    ReduceSum/Mean/Max/Min/SumSquare/L1/L2/LogSum/LogSumExp/Prod, LambSquare -> the ONNX reduction of the
                                  same name (axes attribute);
                                  float16 accumulates in float32; integer means in float64 then truncate
    Reshape, Transpose         -> Reshape, Transpose
    Softmax                    -> Softmax over the last axis (Transpose around it for other axes)
    NlllWithSoftmaxGradDirect  -> OneHot, ReduceSum, Log, Div ... in float32
    PopartSparseAccumulate     -> t + OneHot(indices)^T @ (f * X) along the axis
    Init                       -> a zero initializer
    Call                       -> the called graph inlined; by-reference inputs come back as new versions
    HostLoad / HostStore       -> the model's stream inputs / outputs
"""
from __future__ import annotations

from math import prod
from typing import Callable

import numpy as np

from compiler.ir import DType, Op
from compiler.ops.collectives import KINDS as COLLECTIVE_KINDS
from compiler.ops.movement import KINDS as MOVEMENT_KINDS
from compiler.ops.nn import norm_axes

from ..rules import RuleTable
from .builder import Builder
from .elementwise import compute_dtype

Names = dict[int, str]
Rule = Callable[[Builder, Op, Names], None]
RULES: RuleTable[str, Rule] = RuleTable("ONNX", "compiler/backends/onnx/rules.py", elementwise=True)
RULES.walk("Call", "HostLoad", "HostStore", "MultiKernel", "MatMulEpilogue")  # export.py: inlined calls, graph inputs / outputs
rule = RULES.rule
RULES.refuse_all(COLLECTIVE_KINDS, "collectives across replicas are not emitted: ONNX export describes one replica")
RULES.refuse_all(MOVEMENT_KINDS, "slice / concat / gather and the in-place view ops are not emitted for ONNX yet; "
                 "run the program with Session(ir, 'cpu') or 'interpreter'")
F32, F64 = DType.float32, DType.float64


def _swap_last(b: Builder, x: str, rank: int) -> str:
    return b.one("Transpose", x, perm=list(range(rank - 2)) + [rank - 1, rank - 2])


@rule("MatMul")
def _matmul(b: Builder, op: Op, names: Names) -> None:
    out = op.outputs[0]
    cd = compute_dtype(out.dtype)
    ins = []
    for v, flag in zip(op.inputs, ("transpose_a", "transpose_b")):
        x = b.cast(names[v.id], v.dtype, cd)
        ins.append(_swap_last(b, x, len(v.shape)) if op.attrs.get(flag) else x)
    names[out.id] = b.cast(b.one("MatMul", *ins), cd, out.dtype)


_REDUCE = {k: k for k in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL1",
                          "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceProd")}
# a reduction over no axes is elementwise (ONNX would read an empty axes list as "all axes")
_NO_AXES = {"ReduceSumSquare": lambda b, x: b.one("Mul", x, x), "ReduceL1": lambda b, x: b.one("Abs", x),
            "ReduceL2": lambda b, x: b.one("Abs", x), "ReduceLogSum": lambda b, x: b.one("Log", x)}


@rule(*_REDUCE)
def _reduce(b: Builder, op: Op, names: Names) -> None:
    x, out = op.inputs[0], op.outputs[0]
    axes = norm_axes(op.kind, len(x.shape), op.attrs.get("axes"))
    if not axes:  # nothing to reduce over
        names[out.id] = _NO_AXES.get(op.kind, lambda b, x: b.one("Identity", x))(b, names[x.id])
        return
    cd = compute_dtype(x.dtype)
    if op.kind == "ReduceMean" and not x.dtype.is_float:
        cd = F64  # numpy's integer mean is a float64 mean, truncated back
    r = b.one(_REDUCE[op.kind], b.cast(names[x.id], x.dtype, cd), axes=list(axes),
              keepdims=int(bool(op.attrs.get("keepdims", False))))
    names[out.id] = b.cast(r, cd, out.dtype)


@rule("LambSquare")
def _lamb_square(b: Builder, op: Op, names: Names) -> None:
    x = op.inputs[0]
    names[op.outputs[0].id] = b.one("ReduceSumSquare", b.cast(names[x.id], x.dtype, F32), keepdims=0)


@rule("Reshape")
def _reshape(b: Builder, op: Op, names: Names) -> None:
    shape = b.const(np.asarray(op.outputs[0].shape, np.int64), hint="shape")
    names[op.outputs[0].id] = b.one("Reshape", names[op.inputs[0].id], shape)


@rule("Transpose")
def _transpose(b: Builder, op: Op, names: Names) -> None:
    r = len(op.inputs[0].shape)
    perm = op.attrs.get("perm")
    names[op.outputs[0].id] = b.one("Transpose", names[op.inputs[0].id],
                                    perm=list(perm) if perm is not None else list(reversed(range(r))))


@rule("Softmax")
def _softmax(b: Builder, op: Op, names: Names) -> None:
    x, out = op.inputs[0], op.outputs[0]
    r = len(x.shape)
    axis = int(op.attrs.get("axis", -1)) % max(r, 1)
    cd = compute_dtype(x.dtype)
    t = b.cast(names[x.id], x.dtype, cd)
    perm = [d for d in range(r) if d != axis] + [axis]
    if perm != list(range(r)):  # opset 11 Softmax flattens from `axis` on: move the axis last
        t = b.one("Transpose", t, perm=perm)
    t = b.one("Softmax", t, axis=r - 1)
    if perm != list(range(r)):
        t = b.one("Transpose", t, perm=[perm.index(d) for d in range(r)])
    names[out.id] = b.cast(t, cd, out.dtype)


@rule("Init")
def _init(b: Builder, op: Op, names: Names) -> None:
    v = op.outputs[0]
    names[v.id] = b.const(np.zeros(v.shape, v.dtype.numpy), hint="zeros")


@rule("Nll")
def _nll_plain(b: Builder, op: Op, names: Names) -> None:
    """loss = reduce(-log(p[label])) (-p[label] for log-probabilities): GatherElements picks p[label]."""
    probs, labels = op.input("probs"), op.input("labels")
    assert probs is not None and labels is not None
    c = probs.shape[-1]
    n = probs.spec.nelms // c
    red, ignore = op.attrs.get("reduction", "mean"), op.attrs.get("ignore_index")
    cd = F64 if probs.dtype == F64 else F32
    p2 = b.one("Reshape", b.cast(names[probs.id], probs.dtype, cd), b.const(np.asarray([n, c], np.int64)))
    lab = b.one("Reshape", b.cast(names[labels.id], labels.dtype, DType.int64), b.const(np.asarray([n, 1], np.int64)))
    zero = b.const(np.zeros((), cd.numpy))
    kept = None
    if ignore is not None:
        hit = b.one("Equal", lab, b.const(np.asarray(int(ignore), np.int64)))
        lab = b.one("Where", hit, b.const(np.asarray(0, np.int64)), lab)
        kept = b.one("Not", hit)
    picked = b.one("GatherElements", p2, lab, axis=1)
    per = b.one("Neg", picked if op.attrs.get("log_prob") else b.one("Log", picked))
    if kept is not None:
        per = b.one("Where", kept, per, zero)
    if red == "none":
        loss = b.one("Reshape", per, b.const(np.asarray(labels.shape, np.int64)))
    else:
        loss = b.one("ReduceSum", per, keepdims=0)
        if red == "mean":
            count = b.const(np.asarray(max(n, 1), cd.numpy)) if kept is None else b.one(
                "Max", b.one("ReduceSum", b.cast(kept, DType.bool, cd), keepdims=0), b.const(np.ones((), cd.numpy)))
            loss = b.one("Div", loss, count)
    names[op.outputs[0].id] = b.cast(loss, cd, probs.dtype)


@rule("NlllWithSoftmaxGradDirect")
def _nll(b: Builder, op: Op, names: Names) -> None:
    """loss = -mean(log(p[label] + 1e-7)) over kept labels; dx = (p - onehot(label)) * loss_grad / n."""
    probs, labels = op.input("probs"), op.input("labels")
    assert probs is not None and labels is not None
    c = probs.shape[-1]
    n = probs.spec.nelms // c
    red, ignore = op.attrs.get("reduction", "mean"), op.attrs.get("ignore_index")
    p2 = b.one("Reshape", b.cast(names[probs.id], probs.dtype, F32), b.const(np.asarray([n, c], np.int64)))
    lab = b.one("Reshape", b.cast(names[labels.id], labels.dtype, DType.int64), b.const(np.asarray([n], np.int64)))
    kept = None  # bool per row: the label is not ignore_index
    if ignore is not None:
        hit = b.one("Equal", lab, b.const(np.asarray(int(ignore), np.int64)))
        lab = b.one("Where", hit, b.const(np.asarray(0, np.int64)), lab)
        kept = b.one("Not", hit)
    zero = b.const(np.float32(0.0))
    onehot = b.one("OneHot", lab, b.const(np.asarray(c, np.int64)), b.const(np.asarray([0, 1], np.float32)), axis=-1)
    picked = b.one("ReduceSum", b.one("Mul", p2, onehot), axes=[1], keepdims=0)
    per = b.one("Neg", b.one("Log", b.one("Add", picked, b.const(np.float32(1e-7)))))
    if kept is not None:
        per = b.one("Where", kept, per, zero)
    count = b.const(np.float32(1.0))
    if red == "mean":
        count = b.const(np.float32(n)) if kept is None else b.one(
            "Max", b.one("ReduceSum", b.cast(kept, DType.bool, F32), axes=[0], keepdims=0), b.const(np.float32(1.0)))
    if red == "none":
        loss = b.one("Reshape", per, b.const(np.asarray(labels.shape, np.int64)))
    else:
        loss = b.one("Div", b.one("ReduceSum", per, axes=[0], keepdims=0), count)
    lg = op.input("loss_grad")
    scale = b.cast(names[lg.id], lg.dtype, F32) if lg is not None else b.const(np.float32(op.attrs.get("loss_grad", 1.0)))
    if lg is not None and lg.shape != ():
        scale = b.one("Reshape", scale, b.const(np.asarray([], np.int64)))
    # the reference rounds loss_grad / n from float64 once
    coef = b.cast(b.one("Div", b.cast(scale, F32, F64), b.cast(count, F32, F64)), F64, F32)
    dx = b.one("Mul", b.one("Sub", p2, onehot), coef)
    if kept is not None:
        dx = b.one("Where", b.one("Unsqueeze", kept, axes=[1]), dx, zero)
    names[op.outputs[0].id] = b.cast(loss, F32, probs.dtype)
    dx = b.one("Reshape", dx, b.const(np.asarray(probs.shape, np.int64)))
    names[op.outputs[1].id] = b.cast(dx, F32, probs.dtype)


@rule("PopartSparseAccumulate")
def _sparse(b: Builder, op: Op, names: Names) -> None:
    """t[.., indices[i], ..] += f * X[.., i, ..]: the one-hot rows of the indices, transposed, times the update
    (exact when no index repeats; repeated rows are summed before they are added)."""
    t, x, idx, f = op.input("t"), op.input("X"), op.input("indices"), op.input("f")
    assert t is not None and x is not None and idx is not None
    axis = int(op.attrs.get("axis", 0))
    cd = compute_dtype(t.dtype)
    r = len(t.shape)
    perm = [axis] + [d for d in range(r) if d != axis]
    scale = b.cast(names[f.id], f.dtype, cd) if f is not None else b.const(np.asarray(op.attrs.get("f", 1.0), cd.numpy))
    upd = b.cast(b.one("Mul", b.cast(names[x.id], x.dtype, cd), scale), cd, t.dtype)  # rounded like the reference
    rows, cols = t.shape[axis], prod(t.shape[d] for d in perm[1:])
    upd2 = b.one("Reshape", b.one("Transpose", b.cast(upd, t.dtype, cd), perm=perm),
                 b.const(np.asarray([idx.shape[0], cols], np.int64)))
    onehot = b.cast(b.one("OneHot", b.cast(names[idx.id], idx.dtype, DType.int64), b.const(np.asarray(rows, np.int64)),
                          b.const(np.asarray([0, 1], np.float32)), axis=-1), F32, cd)  # runtimes type OneHot narrowly
    delta = b.one("MatMul", b.one("Transpose", onehot, perm=[1, 0]), upd2)
    moved = b.one("Reshape", delta, b.const(np.asarray([t.shape[d] for d in perm], np.int64)))
    back = b.one("Transpose", moved, perm=[perm.index(d) for d in range(r)])
    names[op.outputs[0].id] = b.cast(b.one("Add", b.cast(names[t.id], t.dtype, cd), back), cd, t.dtype)
