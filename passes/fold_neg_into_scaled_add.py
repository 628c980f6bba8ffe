"""Fold negations and constant scales into ScaledAdd / ScaledAddLhsInplace.

before -> after:
  n = Neg(lr); ScaledAdd*(X, Y, b=n)          -> ScaledAdd*(X, Y, b=lr, negate_b)   (X - lr*Y, no Neg op)
  n = Mul(lr, const -1); ScaledAdd*(X, Y, b=n) -> the same
  ScaledAdd*(X, Y, a=const ca, b=const cb)      -> ScaledAdd*(X, Y) with attrs a=ca, b=cb (scales become attributes)
The Neg / Mul / constants left without readers are removed by DCE.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir, Op, Value

from .registry import register

KINDS = ("ScaledAdd", "ScaledAddLhsInplace")


def _negated(ir: Ir, v: Value) -> Value | None:
    """x when v = -x (Neg(x) or Mul(x, -1) / Mul(-1, x))."""
    p = v.producer
    if p is None or p.graph is not v.graph:
        return None
    if p.kind == "Neg":
        return p.inputs[0]
    if p.kind == "Mul":
        for k in (0, 1):
            c = p.inputs[k]
            if c.kind == "constant" and c.spec.nelms == 1 and float(ir.constants[c.id].reshape(-1)[0]) == -1.0 \
                    and p.inputs[1 - k].spec == v.spec:
                return p.inputs[1 - k]
    return None


def _const_scalar(ir: Ir, v: Value) -> float | None:
    if v.kind == "constant" and v.spec.nelms == 1:
        return float(ir.constants[v.id].reshape(-1)[0])
    return None


def _drop_input(op: Op, role: str) -> None:
    i = op.roles.index(role)
    del op.inputs[i]
    op.roles = op.roles[:i] + op.roles[i + 1:]
    op.modifies = tuple(m - (m > i) for m in op.modifies)
    op.aliases = {o: j - (j > i) for o, j in op.aliases.items()}
    if op.handles is not None:
        op.handles = None


def fold_graph(ir: Ir, g: Graph) -> bool:
    changed = False
    for op in g.ops:
        if op.kind not in KINDS:
            continue
        b = op.input("b")
        if b is not None:
            x = _negated(ir, b)
            if x is not None and x.dtype == b.dtype:
                op.inputs[op.roles.index("b")] = x
                op.attrs["negate_b"] = not op.attrs.get("negate_b", False)
                op.handles = None
                changed = True
        a, b = op.input("a"), op.input("b")
        ca = _const_scalar(ir, a) if a is not None else op.attrs.get("a", 1.0)
        cb = _const_scalar(ir, b) if b is not None else op.attrs.get("b", 1.0)
        if (a is not None or b is not None) and ca is not None and cb is not None:
            if op.attrs.pop("negate_b", False):
                cb = -cb
            for role, val in (("a", ca), ("b", cb)):
                if op.has(role):
                    _drop_input(op, role)
                op.attrs[role] = float(val)
            changed = True
    return changed


@register("fold_neg_into_scaled_add")
def run(ir: Ir) -> bool:
    changed = False
    for g in ir.graphs.values():
        changed |= fold_graph(ir, g)
    return changed
