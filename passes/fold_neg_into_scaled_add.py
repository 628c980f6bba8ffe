"""Fold negations and constant scales into ScaledAdd / ScaledAddLhsInplace.

before -> after:
  n = Neg(lr);           ScaledAdd*(X, Y, b=n) -> ScaledAdd*(X, Y, b=lr, negate_b)   (X - lr*Y, no Neg op)
  n = Mul(lr, -1);       ScaledAdd*(X, Y, b=n) -> the same (also Mul(-1, lr))
  n = Sub(-0.0, lr);     ScaledAdd*(X, Y, b=n) -> the same
  ScaledAdd*(X, Y, a=const ca, b=const cb)     -> ScaledAdd*(X, Y) with attrs a=ca, b=cb (scales become attributes)
All are bit-exact: a*X + (-b)*Y == a*X - b*Y in IEEE arithmetic, and a constant attribute is rounded to the
compute dtype exactly as the constant tensor is cast. Sub(+0.0, lr) is not folded: for lr == +0 it gives +0,
not -0, and would change the sign of a zero result. The Neg / Mul / constants left without readers are
removed by DCE.
"""
from __future__ import annotations

import math

from compiler.ir import Graph, Ir, Op, Value

from .registry import in_every_graph, register

KINDS = ("ScaledAdd", "ScaledAddLhsInplace")


def _const_scalar(ir: Ir, v: Value) -> float | None:
    if v.kind == "constant" and v.spec.nelms == 1 and v.dtype.is_float:
        return float(ir.constants[v.id].reshape(-1)[0])
    return None


def _negated(ir: Ir, v: Value) -> Value | None:
    """x when v == -x exactly: Neg(x), Mul(x, -1), Mul(-1, x), Sub(-0.0, x) of x's own dtype and shape."""
    p = v.producer
    if p is None or p.graph is not v.graph or len(p.outputs) != 1:
        return None
    if p.kind == "Neg":
        x = p.inputs[0]
    elif p.kind == "Mul":
        c = [k for k in (0, 1) if _const_scalar(ir, p.inputs[k]) == -1.0]
        if not c:
            return None
        x = p.inputs[1 - c[0]]
    elif p.kind == "Sub":
        c0 = _const_scalar(ir, p.inputs[0])
        if c0 is None or c0 != 0.0 or math.copysign(1.0, c0) > 0:
            return None
        x = p.inputs[1]
    else:
        return None
    return x if x.spec == v.spec else None


def _drop_input(op: Op, role: str) -> None:
    i = op.roles.index(role)
    del op.inputs[i]
    op.roles = op.roles[:i] + op.roles[i + 1:]
    op.modifies = tuple(m - (m > i) for m in op.modifies)
    op.aliases = {o: j - (j > i) for o, j in op.aliases.items()}
    op.updates = {j - (j > i): v for j, v in op.updates.items()}
    op.handles = None


def fold_op(ir: Ir, op: Op) -> bool:
    changed = False
    b = op.input("b")
    if b is not None:
        x = _negated(ir, b)
        if x is not None:
            op.inputs[op.roles.index("b")] = x
            op.attrs["negate_b"] = not op.attrs.get("negate_b", False)
            op.handles = None
            changed = True
    a, b = op.input("a"), op.input("b")
    ca = _const_scalar(ir, a) if a is not None else float(op.attrs.get("a", 1.0))
    cb = _const_scalar(ir, b) if b is not None else float(op.attrs.get("b", 1.0))
    if (a is not None or b is not None) and ca is not None and cb is not None:
        if op.attrs.pop("negate_b", False):
            cb = -cb
        for role, val in (("a", ca), ("b", cb)):
            if op.has(role):
                _drop_input(op, role)
            op.attrs[role] = float(val)
        changed = True
    return changed


def fold_graph(ir: Ir, g: Graph) -> bool:
    changed = False
    for op in g.ops:
        if op.kind in KINDS:
            changed |= fold_op(ir, op)
    return changed


@register("fold_neg_into_scaled_add")
def run(ir: Ir) -> bool:
    """ScaledAdd*(X, Y, b=Neg(lr)) -> ScaledAdd*(X, Y, b=lr, negate_b); constant scales -> attributes."""
    return in_every_graph(ir, lambda g: fold_graph(ir, g))
