"""MultiKernel: one launch of the same elementwise kernel over several groups of buffers.

Made by the horizontal-fusion pass (passes/fuse_horizontal.py) from many calls of one optimizer graph
(or of graphs that differ only in tensor sizes) on different parameters.

  results of group k = FusedKernel(expr, shape=shapes[k]) applied to group k's inputs, for k = 0 .. K-1

attrs:
  expr       an `Expr` over ONE group: input node i is the group's input i; its outputs are one group's results;
  arity      n, the number of inputs per group;
  shapes     K iteration shapes, one per group (groups may differ in size, never in structure);
  out_specs  (shape, dtype) of every result, group-major (K * m entries, m = len(expr.outputs));
  members    labels of the calls that were grouped; kernel_listing: expr.listing() for print_schedule.
inputs:  group-major, `inputs[k*n + i]` is input i of group k (role "g{k}_in{i}"); one tensor may appear
         in several groups when it is read-only (e.g. a learning-rate scalar).
outputs: group-major, `outputs[k*m + j]` is result j of group k.
modifies / aliases: as for FusedKernel, with group-major indices (`aliases[k*m + j] = k*n + i`).

Every input and result of a group is either exactly the group's shape (indexed by the flat element
index) or a single element (uniform: computed once per group before its loop; uniform results stored
once after it), with the same pattern in every group. Groups write disjoint storages and never read
a storage another group writes, so groups may run in any order or interleaved (e.g. one parallel loop
over the concatenated index space). `group_kernels(op)` gives one detached FusedKernel per group, which
is also the reference semantics.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import Op, TensorSpec

from .registry import OpDef, register, run_reference


def group_kernels(op: Op) -> list[Op]:
    """One FusedKernel op per group, sharing op's Values (not inserted in any graph)."""
    a = op.attrs
    n, m = a["arity"], len(a["expr"].outputs)
    out = []
    for k, shape in enumerate(a["shapes"]):
        ins = op.inputs[k * n:(k + 1) * n]
        res = op.outputs[k * m:(k + 1) * m]
        aliases = {j - k * m: i - k * n for j, i in op.aliases.items() if k * m <= j < (k + 1) * m}
        sub = Op(op.id, "FusedKernel", ins, tuple(f"in{i}" for i in range(n)),
                 {"expr": a["expr"], "shape": tuple(shape), "out_specs": tuple(a["out_specs"][k * m:(k + 1) * m]),
                  "members": (a["members"][k],) if k < len(a["members"]) else ()},
                 op.graph, f"{op.name}.group{k}", tuple(sorted(aliases.values())), aliases)
        sub.outputs = list(res)
        out.append(sub)
    return out


def _infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [TensorSpec(sh, dt) for sh, dt in a["out_specs"]]


def _reference(arrays: dict[str, np.ndarray], a: dict[str, Any], op: Op) -> list[np.ndarray]:
    xs = list(arrays.values())
    n = a["arity"]
    results: list[np.ndarray] = []
    for k, sub in enumerate(group_kernels(op)):
        results += run_reference(sub, xs[k * n:(k + 1) * n])
    return results


register(OpDef(
    kind="MultiKernel", formula="for each group k: results_k = expr(inputs_k), one launch over attrs['shapes']",
    infer=_infer, reference=_reference, pure=False,
))
