"""NlllWithSoftmaxGradDirect: loss = -mean(log(p[label] + 1e-7)); dx = (p - onehot(label)) * loss_grad / N.

Lowered as the reference computes it, in float32: a one-hot encoding of the labels (popops::encodeOneHot),
p[label] as the row sum of p * onehot (exact: one non-zero product per row), the per-sample loss, its sum
(popops::reduce) and the gradient map. Ignored labels count for nothing in the mean and get no gradient.
"""
from __future__ import annotations

import numpy as np

from compiler.ir import DType, Op

from .ops import _new, rule
from .scope import Scope, cstr, dims, reshape
from .types import PoplarError, const_expr, float_literal, poplar_type


@rule("NlllWithSoftmaxGradDirect")
def _nll(s: Scope, op: Op) -> None:
    probs, labels = op.input("probs"), op.input("labels")
    assert probs is not None and labels is not None
    loss_v, dx_v = op.outputs
    c = probs.shape[-1]
    n = probs.spec.nelms // c
    red = op.attrs.get("reduction", "mean")
    ignore = op.attrs.get("ignore_index")
    dt, ldt = poplar_type(probs.dtype, probs.name), labels.dtype
    if ldt.is_float:  # popops::encodeOneHot takes integer indices
        raise PoplarError(f"{op.label}: labels {labels.name!r} are {ldt.name}; the Poplar emitter takes integer "
                          "labels only: cast them with ops.cast(labels, popxl.int32) before the loss")

    def to_dt(e: str) -> str:  # the outputs have the dtype of probs
        return e if probs.dtype == DType.float32 else f"pe::Cast({e}, {dt})"

    tag = s.fresh(f"nll{op.id}")
    dbg = cstr(op.label)
    P, L = reshape(s.tensor(probs), probs.shape, [n, c]), reshape(s.tensor(labels), labels.shape, [n])

    def st(text: str) -> None:
        s.stmt(text)

    if ignore is not None:  # ignored rows use label 0 for the encoding and are masked out below
        ig = const_expr(int(ignore), ldt)
        st(f"Tensor {tag}_labels = popops::map(graph, pe::Select({const_expr(0, ldt)}, pe::_1, "
           f"pe::Equal(pe::_1, {ig})), {{{L}}}, seq, {dbg});")
        st(f"Tensor {tag}_keep = popops::map(graph, pe::Cast(pe::NotEqual(pe::_1, {ig}), FLOAT), {{{L}}}, seq, "
           f"{dbg});")
        L = f"{tag}_labels"
    st(f"Tensor {tag}_onehot = addLinear(graph, FLOAT, {dims([n, c])}, {cstr(f'{op.label}/onehot')});")
    st(f"popops::encodeOneHot(graph, {L}, {tag}_onehot, seq, {dbg});")
    if probs.dtype == DType.float32:
        st(f"Tensor {tag}_p = {P};")
    else:
        st(f"Tensor {tag}_p = popops::map(graph, pe::Cast(pe::_1, FLOAT), {{{P}}}, seq, {dbg});")
    st(f"Tensor {tag}_hit = popops::map(graph, pe::Mul(pe::_1, pe::_2), {{{tag}_p, {tag}_onehot}}, seq, {dbg});")
    st(f"Tensor {tag}_picked = popops::reduce(graph, {tag}_hit, FLOAT, {{1}}, popops::Operation::ADD, seq, {dbg});")
    per = "pe::Neg(pe::Log(pe::Add(pe::_1, pe::Const(1e-07f))))"
    if ignore is not None:
        st(f"Tensor {tag}_per = popops::map(graph, pe::Mul({per}, pe::_2), {{{tag}_picked, {tag}_keep}}, seq, "
           f"{dbg});")
    else:
        st(f"Tensor {tag}_per = popops::map(graph, {per}, {{{tag}_picked}}, seq, {dbg});")

    # the divisor of the mean and of the gradient: N, the number of kept labels, or 1
    if red == "mean" and ignore is not None:
        st(f"Tensor {tag}_count = popops::reduce(graph, {tag}_keep, FLOAT, {{0}}, popops::Operation::ADD, seq, "
           f"{dbg});")
        st(f"popops::mapInPlace(graph, pe::Max(pe::_1, pe::Const(1.0f)), {{{tag}_count}}, seq, {dbg});")
    divisor = float(n) if red == "mean" and ignore is None else 1.0

    if red == "none":
        _new(s, loss_v, reshape(f"popops::map(graph, {to_dt('pe::_1')}, {{{tag}_per}}, seq, {dbg})", [n],
                                loss_v.shape), op)
    else:
        st(f"Tensor {tag}_total = popops::reduce(graph, {tag}_per, FLOAT, {{0}}, popops::Operation::ADD, seq, "
           f"{dbg});")
        if red == "mean" and ignore is not None:
            _new(s, loss_v, f"popops::map(graph, {to_dt('pe::Divide(pe::_1, pe::_2)')}, "
                 f"{{{tag}_total, {tag}_count}}, seq, {dbg})", op)
        else:
            mean = f"pe::Divide(pe::_1, pe::Const({float_literal(divisor)}))"
            _new(s, loss_v, f"popops::map(graph, {to_dt(mean)}, {{{tag}_total}}, seq, {dbg})", op)

    # dx = (p - onehot) * coefficient [* keep], coefficient = loss_grad / divisor
    lg = op.input("loss_grad")
    ts = [f"{tag}_p", f"{tag}_onehot"]
    if lg is not None:
        ts.append(reshape(s.tensor(lg), lg.shape, ()))
        g = "pe::_3" if lg.dtype == DType.float32 else "pe::Cast(pe::_3, FLOAT)"
        if red == "mean" and ignore is not None:
            ts.append(f"{tag}_count")
            coef = f"pe::Divide({g}, pe::_4)"
        else:
            coef = f"pe::Divide({g}, pe::Const({float_literal(divisor)}))"
    else:
        scale = float(op.attrs.get("loss_grad", 1.0))
        if red == "mean" and ignore is not None:
            ts.append(f"{tag}_count")
            coef = f"pe::Divide(pe::Const({float_literal(scale)}), pe::_3)"
        else:
            coef = f"pe::Const({float_literal(float(np.float32(scale / divisor)))})"
    grad = f"pe::Mul(pe::Sub(pe::_1, pe::_2), {coef})"
    if ignore is not None:
        ts.append(f"{tag}_keep.reshape({dims([n, 1])})")
        grad = f"pe::Mul({grad}, pe::_{len(ts)})"
    _new(s, dx_v, reshape(f"popops::map(graph, {to_dt(grad)}, {{{', '.join(ts)}}}, seq, {dbg})", [n, c],
                          dx_v.shape), op)
