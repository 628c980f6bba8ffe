"""Scalar primitives: the small closed set every backend lowers.

Elementwise ops (including the composite var-update ops) are defined once as an
`Expr`: a DAG of primitive nodes, each computed in its own dtype. The numpy
evaluator below is the reference semantics; the LLVM, Poplar and ONNX backends
translate the same nodes.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.ir.dtypes import DType
from compiler.ir.serialize import register_codec


class Prim(str, enum.Enum):
    input = "input"  # attr: input index
    const = "const"  # attr: python number
    add = "add"
    sub = "sub"
    mul = "mul"
    div = "div"
    neg = "neg"
    sqrt = "sqrt"
    exp = "exp"
    log = "log"
    tanh = "tanh"
    sin = "sin"
    cos = "cos"
    erf = "erf"
    abs = "abs"
    sign = "sign"
    floor = "floor"
    max = "max"
    min = "min"
    pow = "pow"
    fma = "fma"  # a*b + c, rounded once
    cast = "cast"  # to the node's dtype
    select = "select"  # cond ? a : b
    lt = "lt"
    le = "le"
    gt = "gt"
    ge = "ge"
    eq = "eq"
    ne = "ne"


UNARY = {Prim.neg, Prim.sqrt, Prim.exp, Prim.log, Prim.tanh, Prim.sin, Prim.cos, Prim.erf, Prim.abs, Prim.sign,
         Prim.floor}
BINARY = {Prim.add, Prim.sub, Prim.mul, Prim.div, Prim.max, Prim.min, Prim.pow}
COMPARE = {Prim.lt, Prim.le, Prim.gt, Prim.ge, Prim.eq, Prim.ne}


@dataclass(frozen=True)
class Node:
    prim: Prim
    args: tuple[int, ...]
    dtype: DType
    attr: Any = None


@dataclass
class Expr:
    """A DAG of primitive nodes in definition order. Node ids are list indices."""

    nodes: list[Node] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    # ------------------------------------------------------------ building
    def _add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def dtype(self, a: int) -> DType:
        return self.nodes[a].dtype

    def input(self, index: int, dtype: DType) -> int:
        return self._add(Node(Prim.input, (), dtype, index))

    def const(self, value: float | int | bool, dtype: DType) -> int:
        return self._add(Node(Prim.const, (), dtype, value))

    def cast(self, a: int, dtype: DType) -> int:
        if self.dtype(a) == dtype:
            return a
        return self._add(Node(Prim.cast, (a,), dtype))

    def unary(self, prim: Prim, a: int) -> int:
        assert prim in UNARY, prim
        return self._add(Node(prim, (a,), self.dtype(a)))

    def binary(self, prim: Prim, a: int, b: int) -> int:
        assert prim in BINARY, prim
        if self.dtype(a) != self.dtype(b):
            raise TypeError(f"{prim.value}: operand dtypes differ ({self.dtype(a).name}, {self.dtype(b).name}); cast first")
        return self._add(Node(prim, (a, b), self.dtype(a)))

    def compare(self, prim: Prim, a: int, b: int) -> int:
        assert prim in COMPARE, prim
        if self.dtype(a) != self.dtype(b):
            raise TypeError(f"{prim.value}: operand dtypes differ ({self.dtype(a).name}, {self.dtype(b).name})")
        return self._add(Node(prim, (a, b), DType.bool))

    def select(self, cond: int, a: int, b: int) -> int:
        if self.dtype(cond) != DType.bool or self.dtype(a) != self.dtype(b):
            raise TypeError("select needs a bool condition and two operands of one dtype")
        return self._add(Node(Prim.select, (cond, a, b), self.dtype(a)))

    def fma(self, a: int, b: int, c: int) -> int:
        return self._add(Node(Prim.fma, (a, b, c), self.dtype(a)))

    # shorthands used by op definitions
    def add(self, a: int, b: int) -> int: return self.binary(Prim.add, a, b)
    def sub(self, a: int, b: int) -> int: return self.binary(Prim.sub, a, b)
    def mul(self, a: int, b: int) -> int: return self.binary(Prim.mul, a, b)
    def div(self, a: int, b: int) -> int: return self.binary(Prim.div, a, b)
    def max(self, a: int, b: int) -> int: return self.binary(Prim.max, a, b)
    def min(self, a: int, b: int) -> int: return self.binary(Prim.min, a, b)
    def pow(self, a: int, b: int) -> int: return self.binary(Prim.pow, a, b)
    def neg(self, a: int) -> int: return self.unary(Prim.neg, a)
    def sqrt(self, a: int) -> int: return self.unary(Prim.sqrt, a)
    def exp(self, a: int) -> int: return self.unary(Prim.exp, a)
    def log(self, a: int) -> int: return self.unary(Prim.log, a)
    def tanh(self, a: int) -> int: return self.unary(Prim.tanh, a)
    def erf(self, a: int) -> int: return self.unary(Prim.erf, a)
    def sin(self, a: int) -> int: return self.unary(Prim.sin, a)
    def cos(self, a: int) -> int: return self.unary(Prim.cos, a)
    def abs(self, a: int) -> int: return self.unary(Prim.abs, a)

    def c(self, value: float, like: int) -> int:
        """A constant of the same dtype as node `like`."""
        return self.const(value, self.dtype(like))

    def listing(self) -> list[str]:
        """One line per node, for print_schedule and error messages."""
        out = []
        for i, n in enumerate(self.nodes):
            args = ", ".join(f"v{a}" for a in n.args)
            extra = "" if n.attr is None else f" {n.attr!r}"
            out.append(f"v{i} = {n.prim.value}{extra}({args}) : {n.dtype.name}")
        out.append("return " + ", ".join(f"v{o}" for o in self.outputs))
        return out

    def key(self) -> tuple:
        """Hashable structural identity."""
        return (tuple((n.prim.value, n.args, n.dtype.value, n.attr) for n in self.nodes), tuple(self.outputs))


# ---------------------------------------------------------------- evaluation
_erf = np.frompyfunc(math.erf, 1, 1)


def _np_unary(prim: Prim, x: np.ndarray) -> np.ndarray:
    if prim is Prim.neg:
        return np.negative(x)
    if prim is Prim.sqrt:
        return np.sqrt(x)
    if prim is Prim.exp:
        return np.exp(x)
    if prim is Prim.log:
        return np.log(x)
    if prim is Prim.tanh:
        return np.tanh(x)
    if prim is Prim.sin:
        return np.sin(x)
    if prim is Prim.cos:
        return np.cos(x)
    if prim is Prim.erf:
        return np.asarray(_erf(np.asarray(x, dtype=np.float64)), dtype=np.float64).astype(x.dtype)  # 0-d safe
    if prim is Prim.abs:
        return np.abs(x)
    if prim is Prim.sign:
        return np.sign(x)
    if prim is Prim.floor:
        return np.floor(x)
    raise NotImplementedError(prim)


_BIN = {
    Prim.add: np.add, Prim.sub: np.subtract, Prim.mul: np.multiply, Prim.max: np.maximum,
    Prim.min: np.minimum, Prim.pow: np.power,
}
_CMP = {Prim.lt: np.less, Prim.le: np.less_equal, Prim.gt: np.greater, Prim.ge: np.greater_equal,
        Prim.eq: np.equal, Prim.ne: np.not_equal}


def cast_array(x: np.ndarray, dtype: DType) -> np.ndarray:
    """numpy's astype, except float -> integer, which every device defines the same way: truncate
    toward zero, saturate out-of-range values to the integer type's min / max (so negative -> 0 for
    unsigned types), and NaN -> 0 (LLVM's fptosi.sat / fptoui.sat; numpy leaves these undefined)."""
    npdt = dtype.numpy
    if not (x.dtype.kind == "f" or str(x.dtype) == "bfloat16") or not dtype.is_int:
        return x.astype(npdt)
    info = np.iinfo(npdt)
    f = x.astype(np.float64)
    hi, lo = f >= float(info.max), f <= float(info.min)  # float(max) rounds up for 64-bit types
    mid = np.asarray(np.trunc(np.where(np.isnan(f) | hi | lo, 0.0, f))).astype(npdt)
    return np.where(hi, npdt.type(info.max), np.where(lo, npdt.type(info.min), mid)).astype(npdt)


def evaluate(expr: Expr, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run `expr` with numpy, rounding every node to its own dtype (the reference)."""
    vals: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for n in expr.nodes:
            npdt = n.dtype.numpy
            if n.prim is Prim.input:
                r = np.asarray(inputs[n.attr])
                if r.dtype != npdt:
                    raise TypeError(f"kernel input {n.attr} is {r.dtype}, expected {npdt}")
            elif n.prim is Prim.const:
                r = np.asarray(n.attr, dtype=npdt)
            elif n.prim is Prim.cast:
                r = cast_array(vals[n.args[0]], n.dtype)
            elif n.prim in UNARY:
                r = _np_unary(n.prim, vals[n.args[0]])
            elif n.prim is Prim.div:
                a, b = vals[n.args[0]], vals[n.args[1]]
                if n.dtype.is_float:
                    r = np.divide(a, b)
                else:  # C-style truncating integer division; x/0 -> 0 instead of a trap
                    safe = np.where(b == 0, 1, b)
                    r = np.where(b == 0, 0, np.trunc(a / safe)).astype(npdt)
            elif n.prim in _BIN:
                r = _BIN[n.prim](vals[n.args[0]], vals[n.args[1]])
            elif n.prim in _CMP:
                r = _CMP[n.prim](vals[n.args[0]], vals[n.args[1]])
            elif n.prim is Prim.select:
                r = np.where(vals[n.args[0]], vals[n.args[1]], vals[n.args[2]])
            elif n.prim is Prim.fma:
                a, b, c = (vals[i].astype(np.float64) for i in n.args)
                r = a * b + c
            else:
                raise NotImplementedError(n.prim)
            vals.append(np.asarray(r).astype(npdt, copy=False))
    return [vals[o] for o in expr.outputs]


def _encode_expr(e: Expr) -> dict:
    return {"nodes": [[n.prim.value, list(n.args), n.dtype.name, n.attr] for n in e.nodes], "outputs": e.outputs}


def _decode_expr(d: dict) -> Expr:
    return Expr([Node(Prim(p), tuple(a), DType[dt], attr) for p, a, dt, attr in d["nodes"]], list(d["outputs"]))


register_codec("expr", Expr, _encode_expr, _decode_expr)
