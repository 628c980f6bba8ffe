"""PopXL's in-place elementwise variants (relu_, exp_, gelu_, ...): `x <- f(x)`, in place on x.

Each is its out-of-place kind's definition with one effect added: it modifies `x`, and its output is
the next version of x's storage, so alias analysis and scheduling treat it like a var update.
"""
from __future__ import annotations

from .registry import OPS, OpDef, register

INPLACE_OF = {"Relu": "ReluInplace", "Exp": "ExpInplace", "Gelu": "GeluInplace", "GeluErf": "GeluErfInplace",
              "Swish": "SwishInplace", "Neg": "NegInplace", "Sqrt": "SqrtInplace", "Abs": "AbsInplace"}


def register_inplace_variants() -> None:
    for base, kind in INPLACE_OF.items():
        if base not in OPS:
            continue
        b = OPS[base]
        register(OpDef(kind=kind, formula=f"{b.formula}, in place on x", infer=b.infer, modifies=("x",),
                       aliases={0: "x"}, decompose=b.decompose, elementwise=True, pure=False))
