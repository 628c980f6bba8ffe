"""MatMulEpilogue: a MatMul whose result goes straight into an elementwise epilogue, as one op.

  c = op(a) @ op(b)  (as MatMul, attrs transpose_a / transpose_b);  results = expr(c, e0, e1, ...)

Made by passes/fuse_matmul_epilogue.py from a MatMul and the one elementwise op (often a FusedKernel) that
reads its result. `c` is never a tensor of the program: backends apply the epilogue to each output tile
while it is in registers or cache, and the optimizer update of a weight whose gradient the matmul makes
writes the weight, never the gradient.

attrs:
  transpose_a, transpose_b   as MatMul;
  expr        an `Expr` whose input 0 is `c` and input k >= 1 is the op's input k + 1 (e0 = inputs[2]);
              its outputs are the op's results in `op.results` order;
  c_spec      (shape, dtype) of `c`; also the epilogue's iteration shape;
  out_specs   (shape, dtype) of every result;
  members     labels of the MatMul and the epilogue's ops; kernel_listing: expr.listing().
inputs: a, b, then the epilogue's other operands (roles "a", "b", "e0", ...).
modifies / aliases: the epilogue's in-place writes (e.g. an optimizer's weight and state), explicit as for
FusedKernel. `split(op)` gives the detached MatMul and FusedKernel, which is also the reference semantics.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import Op, TensorSpec, Value

from .registry import OpDef, register, run_reference


def split(op: Op) -> tuple[Op, Op]:
    """The MatMul and the FusedKernel this op stands for, sharing op's Values (not inserted in any graph);
    the FusedKernel's input 0 is the MatMul's result, a detached Value with id (and storage) -1 - op.id."""
    a = op.attrs
    shape, dtype = a["c_spec"]
    c = Value(-1 - op.id, TensorSpec(tuple(shape), dtype), f"{op.name}.c", op.graph, "op")
    mm = Op(op.id, "MatMul", list(op.inputs[:2]), ("a", "b"),
            {k: a[k] for k in ("transpose_a", "transpose_b") if a.get(k)}, op.graph, f"{op.name}.matmul")
    mm.outputs = [c]
    c.producer = mm
    ins = [c] + list(op.inputs[2:])
    aliases = {j: i - 1 for j, i in op.aliases.items()}
    ep = Op(op.id, "FusedKernel", ins, tuple(f"in{i}" for i in range(len(ins))),
            {"expr": a["expr"], "shape": tuple(shape), "out_specs": tuple(a["out_specs"]),
             "members": tuple(a.get("members", ()))},
            op.graph, f"{op.name}.epilogue", tuple(sorted(aliases.values())), aliases)
    ep.outputs = list(op.outputs)
    return mm, ep


def _infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [TensorSpec(tuple(sh), dt) for sh, dt in a["out_specs"]]


def _reference(arrays: dict[str, np.ndarray], a: dict[str, Any], op: Op) -> list[np.ndarray]:
    xs = list(arrays.values())
    mm, ep = split(op)
    (c,) = run_reference(mm, xs[:2])
    return run_reference(ep, [c] + xs[2:])


register(OpDef(
    kind="MatMulEpilogue", formula="results = expr(op(a) @ op(b), e0, e1, ...), the epilogue per output tile",
    infer=_infer, reference=_reference, pure=False,
))
