"""PopXL's in-place elementwise variants (relu_, exp_, gelu_, ...): `x <- f(x)`, in place on x.

Each is its out-of-place kind's definition with one effect added: it modifies `x`, and its output is
the next version of x's storage, so alias analysis and scheduling treat it like a var update.
"""
from __future__ import annotations

from typing import Any

from compiler.ir import TensorSpec

from .registry import OPS, OpDef, OpError, register

INPLACE_OF = {"Relu": "ReluInplace", "Exp": "ExpInplace", "Gelu": "GeluInplace", "GeluErf": "GeluErfInplace",
              "Swish": "SwishInplace", "Neg": "NegInplace", "Sqrt": "SqrtInplace", "Abs": "AbsInplace"}


def _lhs_infer(kind: str, base_infer: Any) -> Any:
    def infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
        out = base_infer(s, a)
        if out[0] != s["a"]:
            raise OpError(f"{kind}: the result {out[0]} must have the shape and dtype of the tensor written in "
                          f"place, a {s['a']} (b may broadcast to a, not a to b)")
        return out
    return infer


def register_inplace_variants() -> None:
    for base in ("Add", "Sub", "Mul", "Div"):  # a <- a op b, in place on a
        b = OPS[base]
        register(OpDef(kind=f"{base}LhsInplace", formula=f"{b.formula}, in place on a",
                       infer=_lhs_infer(f"{base}LhsInplace", b.infer), modifies=("a",), aliases={0: "a"},
                       decompose=b.decompose, elementwise=True, pure=False))
    for base, kind in INPLACE_OF.items():
        if base not in OPS:
            continue
        b = OPS[base]
        register(OpDef(kind=kind, formula=f"{b.formula}, in place on x", infer=b.infer, modifies=("x",),
                       aliases={0: "x"}, decompose=b.decompose, elementwise=True, pure=False))
