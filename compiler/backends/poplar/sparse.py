"""PopartSparseAccumulate: t[indices[i]] += f * X[i] along axis 0, in place on t -> popops::multiUpdateAdd.

t is viewed as rows x columns, X as N slices of one row each, the indices as N unsigned offsets; repeated
indices accumulate. The reference rounds f * X to t's dtype before adding, one row at a time; PopLibs may
round the scaled update differently (an ulp), and sums repeated rows in its own order.
"""
from __future__ import annotations

from math import prod

import numpy as np

from compiler.ir import Op

from .ops import rule
from .scope import Scope, cstr, dims
from .types import PoplarError, host_values, initial_call, poplar_type


@rule("PopartSparseAccumulate")
def _sparse(s: Scope, op: Op) -> None:
    t, x, idx = op.input("t"), op.input("X"), op.input("indices")
    f = op.input("f")
    assert t is not None and x is not None and idx is not None
    if int(op.attrs.get("axis", 0)) != 0:
        raise PoplarError(f"{op.label}: sparse_accumulate_ along axis {op.attrs['axis']} has no Poplar lowering here "
                          "(only axis 0, as popops::multiUpdateAdd); transpose the tensor so the rows are axis 0")
    tag, dbg = s.fresh(f"sa{op.id}"), cstr(op.label)
    ty = poplar_type(t.dtype, t.name)
    n, cols = idx.shape[0], prod(t.shape[1:])
    X = f"{s.tensor(x)}.reshape({dims([n, 1, cols])})"
    if x.dtype != t.dtype:
        s.stmt(f"Tensor {tag}_x = popops::map(graph, pe::Cast(pe::_1, {ty}), {{{X}}}, seq, {dbg});")
        X = f"{tag}_x"
    s.stmt(f"Tensor {tag}_offsets = popops::map(graph, pe::Cast(pe::_1, UNSIGNED_INT), {{{s.tensor(idx)}}}, seq, "
           f"{dbg}).reshape({dims([n, 1])});")
    if f is None:
        value = host_values(np.asarray(op.attrs.get("f", 1.0), t.dtype.numpy), t.dtype)[0]
        s.stmt(f"Tensor {tag}_scale = {initial_call(t.dtype, '{}', '{' + value + '}', cstr(f'{op.label}/f'))};")
    else:
        F = s.tensor(f) if f.shape == () else f"{s.tensor(f)}.reshape({{}})"
        if f.dtype != t.dtype:
            F = f"popops::map(graph, pe::Cast(pe::_1, {ty}), {{{F}}}, seq, {dbg})"
        s.stmt(f"Tensor {tag}_scale = {F};")
    s.stmt(f"popops::multiUpdateAdd(graph, {s.tensor(t)}.reshape({dims([t.shape[0], cols])}), {X}, {tag}_offsets, "
           f"{tag}_scale, {{0}}, {{1}}, seq, popops::SlicePlan(), OptionFlags(), {dbg});")
