"""The table from primitive to popops::expr, and expression trees rendered as readable C++.

Every primitive node is computed in its own dtype, as the reference does; popops evaluates an
expression node by node in the type of its operands, so the emitter writes every cast and every
typed constant explicitly and never relies on implicit promotion:

    add, sub, mul, div   -> pe::Add, pe::Sub, pe::Mul, pe::Divide
    max, min, pow        -> pe::Max, pe::Min, pe::Pow
    neg, sqrt, exp, log  -> pe::Neg, pe::Sqrt, pe::Exp, pe::Log
    tanh, erf, abs       -> pe::Tanh, pe::Erf, pe::Abs
    sin, cos             -> pe::Sin, pe::Cos
    sign, floor          -> pe::Signum, pe::Floor (floor of an integer is the integer itself)
    lt, le, gt, ge       -> pe::Lt, pe::Lte, pe::Gt, pe::Gte
    eq, ne               -> pe::Equal, pe::NotEqual
    select(c, a, b)      -> pe::Select(a, b, c)          (popops: Select(a, b, cond) = cond ? a : b)
    cast                 -> pe::Cast(x, TYPE)  (TYPE a poplar::Type constant: FLOAT, HALF, INT ...)
    const                -> pe::Const(v) / pe::ConstHalf(v), v rounded to the node's dtype first
    fma(a, b, c)         -> pe::Add(pe::Mul(a, b), c); float16 in float32 (a*b is exact there)
    integer div          -> pe::Select(0, a / (b == 0 ? 1 : b), b == 0)  (the reference's x/0 = 0)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.ir import DType
from compiler.ops.primitives import Node, Prim

from .types import PoplarError, const_expr, poplar_type

UNARY = {Prim.neg: "Neg", Prim.sqrt: "Sqrt", Prim.exp: "Exp", Prim.log: "Log", Prim.tanh: "Tanh", Prim.erf: "Erf",
         Prim.sin: "Sin", Prim.cos: "Cos",
         Prim.abs: "Abs", Prim.sign: "Signum", Prim.floor: "Floor"}
BINARY = {Prim.add: "Add", Prim.sub: "Sub", Prim.mul: "Mul", Prim.div: "Divide", Prim.max: "Max", Prim.min: "Min",
          Prim.pow: "Pow", Prim.lt: "Lt", Prim.le: "Lte", Prim.gt: "Gt", Prim.ge: "Gte", Prim.eq: "Equal",
          Prim.ne: "NotEqual"}
WIDTH = 88  # expressions longer than this are written one operand per line


@dataclass
class Term:
    """A popops::expr tree: a leaf (`head` only) or a call `head(args...)`."""

    head: str
    args: list["Term"] = field(default_factory=list)
    leaf: bool = True

    @staticmethod
    def call(head: str, *args: "Term") -> "Term":
        return Term(head, list(args), leaf=False)

    def nodes(self) -> list["Term"]:
        """Every node of the tree, parents before children (an explicit stack: trees may be deep)."""
        out, todo = [], [self]
        while todo:
            t = todo.pop()
            out.append(t)
            todo.extend(reversed(t.args))
        return out

    def size(self) -> int:
        return len(self.nodes())

    def flat(self) -> str:
        return _flat_texts(self)[id(self)]

    def render(self, col: int = 0, indent: int = 0, width: int = WIDTH) -> str:
        """The C++ text, starting at column `col` of a line indented by `indent`; calls that do not fit in
        `width` put one operand per line, four columns deeper. Iterative: a deep expression tree (a long
        chain of fused elementwise ops) must not meet Python's recursion limit."""
        flat = _flat_texts(self)
        out: list[str] = []
        todo: list[tuple["Term", int, int] | str] = [(self, col, indent)]
        while todo:
            item = todo.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            t, c, ind = item
            text = flat[id(t)]
            if t.leaf or c + len(text) <= width:
                out.append(text)
                continue
            pad = ind + 4
            parts: list[tuple["Term", int, int] | str] = [f"{t.head}(\n"]
            for k, a in enumerate(t.args):
                parts += [",\n" if k else "", " " * pad, (a, pad, pad)]
            parts.append(")")
            todo.extend(reversed(parts))
        return "".join(out)


def _flat_texts(root: Term) -> dict[int, str]:
    """Each node's one-line text by id, children before parents."""
    texts: dict[int, str] = {}
    for t in reversed(root.nodes()):
        texts[id(t)] = t.head if t.leaf else f"{t.head}({', '.join(texts[id(a)] for a in t.args)})"
    return texts


def raw(text: str) -> Term:
    return Term(text)


def cast_to(t: Term, dt: DType) -> Term:
    return Term.call("pe::Cast", t, raw(poplar_type(dt)))


def lower_node(n: Node, args: list[Term], arg_dtypes: list[DType]) -> Term:
    """The popops::expr term of primitive node `n` whose operands are `args` (already terms)."""
    p = n.prim
    if p is Prim.const:
        return raw(const_expr(n.attr, n.dtype))
    if p is Prim.cast:
        return args[0] if arg_dtypes[0] == n.dtype else cast_to(args[0], n.dtype)
    if p is Prim.select:
        c, a, b = args
        return Term.call("pe::Select", a, b, c)
    if p is Prim.fma:
        a, b, c = args
        if n.dtype == DType.float16:  # products of halves are exact in float32: one rounding of a*b + c
            f32 = [cast_to(x, DType.float32) for x in args]
            return cast_to(Term.call("pe::Add", Term.call("pe::Mul", f32[0], f32[1]), f32[2]), DType.float16)
        return Term.call("pe::Add", Term.call("pe::Mul", a, b), c)
    if p is Prim.floor and not n.dtype.is_float:
        return args[0]
    if p is Prim.div and not n.dtype.is_float:
        a, b = args
        zero, one = raw(const_expr(0, n.dtype)), raw(const_expr(1, n.dtype))
        is_zero = Term.call("pe::Equal", b, zero)
        safe = Term.call("pe::Select", one, b, is_zero)
        return Term.call("pe::Select", zero, Term.call("pe::Divide", a, safe), is_zero)
    if p in UNARY:
        return Term.call(f"pe::{UNARY[p]}", args[0])
    if p in BINARY:
        return Term.call(f"pe::{BINARY[p]}", args[0], args[1])
    raise PoplarError(f"primitive {p.value!r} has no popops::expr lowering")
