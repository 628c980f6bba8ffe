"""Which ops every correct backend must reproduce bit for bit.

An op is *exact* when IEEE 754 defines its result (one correctly rounded operation per primitive,
each in its own dtype): add, sub, mul, div, sqrt, neg, abs, min/max, comparisons, select, casts,
floor, sign, and data movement. Everything else may legitimately differ in the last bits between
numpy and native code: transcendentals (exp, log, tanh, erf, pow: libm or inline approximations),
`fma` (the numpy reference rounds through float64), and reassociating float reductions (matmul,
sums, softmax). Fuzzing compares values computed only by exact ops bit for bit, the rest within a
tolerance per dtype.
"""
from __future__ import annotations

from compiler.ir import Op
from compiler.ops import expr_for, get
from compiler.ops.primitives import Prim

EXACT_PRIMS = frozenset({
    Prim.input, Prim.const, Prim.add, Prim.sub, Prim.mul, Prim.div, Prim.neg, Prim.sqrt, Prim.abs, Prim.sign,
    Prim.floor, Prim.max, Prim.min, Prim.cast, Prim.select, Prim.lt, Prim.le, Prim.gt, Prim.ge, Prim.eq, Prim.ne,
})
# non-elementwise ops whose result does not depend on evaluation order
DATA_MOVEMENT = frozenset({"Reshape", "Transpose", "HostLoad", "HostStore", "Init", "Identity"})
ORDER_FREE_REDUCTIONS = frozenset({"ReduceMax", "ReduceMin"})
# relative tolerance for values an inexact op touched, by the dtype it was computed or rounded in
TOLERANCE = {"float16": 1e-2, "bfloat16": 4e-2, "float32": 2e-5, "float64": 1e-12}


def tolerance(dtype: object) -> float:
    """The tolerance an inexact result in `dtype` needs (non-float dtypes get float64's, which only marks
    the value as inexact: integer values never come from inexact sources in generated programs)."""
    return TOLERANCE.get(getattr(dtype, "name", str(dtype)), TOLERANCE["float64"])


def op_is_exact(op: Op) -> bool:
    """True when every backend must give this op's results bit for bit (see the module docstring)."""
    if op.kind == "Call":
        return all(op_is_exact(o) for o in op.called.ops)
    if op.kind in DATA_MOVEMENT or op.kind in ORDER_FREE_REDUCTIONS:
        return True
    if op.kind in ("ReduceSum", "MatMul") and not op.inputs[0].dtype.is_float:
        return True  # integer sums wrap identically in any order
    if get(op.kind).decompose is None:
        return False
    return all(n.prim in EXACT_PRIMS for n in expr_for(op).nodes)
