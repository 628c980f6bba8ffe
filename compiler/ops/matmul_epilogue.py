"""MatMulEpilogue: a MatMul whose result goes straight into an elementwise epilogue, and whose operands may
come straight out of elementwise prologues, as one op.

  a' = pa(a0, a1, ...) or a;  b' = pb(b0, b1, ...) or b;  c = op(a') @ op(b')  (as MatMul, attrs
  transpose_a / transpose_b);  results = expr(c, e0, e1, ...)

Made by passes/fuse_matmul_epilogue.py from a MatMul and the one elementwise op (often a FusedKernel) that
reads its result, and by passes/fuse_matmul_prologue.py, which moves the elementwise producer of an operand
into the op (a plain MatMul becomes a MatMulEpilogue whose epilogue is the identity). Neither `c` nor a
fused operand is a tensor of the program: backends compute a prologue's operand into a per-tile buffer and
apply the epilogue to each output tile while it is in registers or cache; the optimizer update of a weight
whose gradient the matmul makes writes the weight, never the gradient.

attrs:
  transpose_a, transpose_b   as MatMul;
  expr        an `Expr` whose input 0 is `c` and input k >= 1 is epilogue operand e(k-1);
              its outputs are the op's results in `op.results` order;
  c_spec      (shape, dtype) of `c`; also the epilogue's iteration shape;
  out_specs   (shape, dtype) of every result;
  prologues   (optional) ((slot, count, expr, (shape, dtype), members), ...): operand `slot` (0 = a, 1 = b)
              is expr(its `count` inputs), of that shape and dtype; members: the prologue's op labels;
  members     labels of the MatMul and the epilogue's ops; kernel_listing: the listing print_schedule shows.
inputs: a (or the a prologue's inputs), b (or the b prologue's inputs), then the epilogue's other operands.
modifies / aliases: the epilogue's in-place writes (e.g. an optimizer's weight and state), explicit as for
FusedKernel; prologues only read. `expand(op)` gives the detached prologue FusedKernels, MatMul and epilogue
FusedKernel, which are also the reference semantics; `split(op)` the last two.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import Op, TensorSpec, Value

from .registry import OpDef, get, register, run_reference

# what one operand's inputs are: its index range in op.inputs
Layout = tuple[range, range, range]


def prologues(op: Op) -> dict[int, tuple]:
    """slot -> (slot, count, expr, (shape, dtype), members) of each fused operand producer."""
    return {int(p[0]): p for p in op.attrs.get("prologues", ())}


def layout(op: Op) -> Layout:
    """Index ranges in op.inputs of operand a's inputs, b's and the epilogue operands'."""
    pro = prologues(op)
    na = int(pro[0][1]) if 0 in pro else 1
    nb = int(pro[1][1]) if 1 in pro else 1
    return range(0, na), range(na, na + nb), range(na + nb, len(op.inputs))


def _detached(op: Op, part: int, spec: TensorSpec, name: str) -> Value:
    """A Value of no graph's: the matmul's result (part 0) or a fused operand (1 + slot); ids are negative
    and distinct per op and part, storage equal to id."""
    return Value(-1 - 3 * op.id - part, spec, f"{op.name}.{name}", op.graph, "op")


def prologue_kernels(op: Op) -> dict[int, Op]:
    """slot -> the detached FusedKernel computing that operand from the op's inputs (not in any graph)."""
    out = {}
    for slot, ins in zip((0, 1), layout(op)[:2]):
        p = prologues(op).get(slot)
        if p is None:
            continue
        _, count, expr, (shape, dtype), members = p
        v = _detached(op, 1 + slot, TensorSpec(tuple(shape), dtype), "ab"[slot])
        xs = [op.inputs[i] for i in ins]
        k = Op(op.id, "FusedKernel", xs, tuple(f"in{i}" for i in range(len(xs))),
               {"expr": expr, "shape": tuple(shape), "out_specs": ((tuple(shape), dtype),), "members": tuple(members)},
               op.graph, f"{op.name}.prologue_{'ab'[slot]}")
        k.outputs = [v]
        v.producer = k
        out[slot] = k
    return out


def split(op: Op) -> tuple[Op, Op]:
    """The MatMul and the FusedKernel this op stands for, sharing op's Values (not inserted in any graph);
    the FusedKernel's input 0 is the MatMul's result, a detached Value. With prologues, the MatMul's
    operands are the prologue kernels' detached results (parts and expand give those kernels too)."""
    return parts(op)[1:]


def parts(op: Op) -> tuple[dict[int, Op], Op, Op]:
    """(slot -> prologue kernel, MatMul, epilogue kernel), detached, sharing their Values."""
    pro = prologue_kernels(op)
    a = op.attrs
    shape, dtype = a["c_spec"]
    ra, rb, re = layout(op)
    c = _detached(op, 0, TensorSpec(tuple(shape), dtype), "c")
    operands = [pro[s].outputs[0] if s in pro else op.inputs[r[0]] for s, r in ((0, ra), (1, rb))]
    mm = Op(op.id, "MatMul", operands, ("a", "b"),
            {k: a[k] for k in ("transpose_a", "transpose_b") if a.get(k)}, op.graph, f"{op.name}.matmul")
    mm.outputs = [c]
    c.producer = mm
    ins = [c] + [op.inputs[i] for i in re]
    aliases = {j: i - re.start + 1 for j, i in op.aliases.items()}
    ep = Op(op.id, "FusedKernel", ins, tuple(f"in{i}" for i in range(len(ins))),
            {"expr": a["expr"], "shape": tuple(shape), "out_specs": tuple(a["out_specs"]),
             "members": tuple(a.get("members", ()))},
            op.graph, f"{op.name}.epilogue", tuple(sorted(aliases.values())), aliases)
    ep.outputs = list(op.outputs)
    return pro, mm, ep


def expand(op: Op) -> list[Op]:
    """The detached ops this op stands for, in the order they run: prologue kernels, MatMul, epilogue."""
    pro, mm, ep = parts(op)
    return [pro[s] for s in sorted(pro)] + [mm, ep]


def _infer(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    """The results' specs (out_specs), after checking that the prologues, operands and c_spec agree (a saved
    file naming other shapes would make the backend read outside its buffers)."""
    pros = {int(p[0]): p for p in a.get("prologues", ())}
    if sorted(pros) not in ([], [0], [1], [0, 1]) or len(pros) != len(a.get("prologues", ())):
        raise ValueError("prologues must name slot 0 (a) and/or 1 (b), once each")
    specs = list(s.values())
    counts = [int(pros[k][1]) if k in pros else 1 for k in (0, 1)]
    if min(counts) < 1 or len(specs) < sum(counts):
        raise ValueError(f"{len(specs)} inputs cannot hold the operands' inputs ({counts[0]} and {counts[1]})")
    operands = []
    for k, start in ((0, 0), (1, counts[0])):
        if k not in pros:
            operands.append(specs[start])
            continue
        shape, dtype = pros[k][3]
        shape = tuple(int(d) for d in shape)
        for x in specs[start:start + counts[k]]:
            try:
                fits = np.broadcast_shapes(x.shape, shape) == shape
            except ValueError:
                fits = False
            if not fits:
                raise ValueError(f"prologue {'ab'[k]}: an input of shape {x.shape} does not broadcast to {shape}")
        operands.append(TensorSpec(shape, dtype))
    attrs = {k: a[k] for k in ("transpose_a", "transpose_b") if a.get(k)}
    (c,) = get("MatMul").infer({"a": operands[0], "b": operands[1]}, attrs)
    if c != TensorSpec(tuple(a["c_spec"][0]), a["c_spec"][1]):
        raise ValueError(f"c_spec {a['c_spec']} is not the matmul's result {c}")
    return [TensorSpec(tuple(sh), dt) for sh, dt in a["out_specs"]]


def _reference(arrays: dict[str, np.ndarray], a: dict[str, Any], op: Op) -> list[np.ndarray]:
    env = {v.id: x for v, x in zip(op.inputs, arrays.values())}
    outs: list[np.ndarray] = []
    for sub in expand(op):
        outs = run_reference(sub, [env[v.id] for v in sub.inputs])
        env.update((v.id, x) for v, x in zip(sub.results, outs))
    return outs


register(OpDef(
    kind="MatMulEpilogue", formula="results = expr(op(pa(..) or a) @ op(pb(..) or b), e0, ...), per output tile",
    infer=_infer, reference=_reference, pure=False,
))
