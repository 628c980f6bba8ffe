"""print_schedule in popxl.addons' format.

Tensor numbers come from a fresh counter starting at 1: graph inputs first, then
each op's inputs and outputs in schedule order, then the graph outputs.
"""
from __future__ import annotations

from collections import defaultdict
from itertools import count

from .graph import Graph
from .op import Op
from .value import Value


def _shape(shape: tuple[int, ...]) -> str:
    return repr(tuple(shape))


def op_header(op: Op) -> str:
    head = f"{op.kind}.{op.id}"
    if op.called is not None:
        head += f"({op.called.id})"
    return head


def print_schedule(graph: Graph, ops: list[Op] | None = None) -> str:
    counter = count(1)
    ids: dict[int, int] = defaultdict(lambda: next(counter))

    def ref(v: Value) -> str:
        return f"%{ids[v.id]}"

    def full(v: Value) -> str:
        return f"%{ids[v.id]} [{_shape(v.shape)} {v.dtype.name}]"

    ins = []
    for v in graph.inputs:
        name = graph.input_names.get(v.id)
        ins.append(f"{name}={ref(v)}" if name else ref(v))
    lines = []
    for op in graph.ops if ops is None else ops:
        shown = op.handles if op.handles is not None else op.inputs
        i_s = "(" + ", ".join(full(v) for v in shown) + ")"
        o_s = "(" + ", ".join(full(v) for v in op.outputs) + ")"
        line = " ".join((op_header(op), i_s, "->", o_s))
        inner = op.attrs.get("kernel_listing")
        if inner:  # fused kernels list their primitive ops underneath
            line += "".join("\n      " + x for x in inner)
        lines.append(line)
    outs = [ref(v) for v in graph.outputs]
    return (
        f"Graph : {graph.id}\n"
        + f"  ({', '.join(ins)}) -> ({', '.join(outs)}) " + "{\n    "
        + "\n    ".join(lines)
        + "\n  }"
    )
