"""The one place frontend ops enter the IR: resolve handles, type-check, record effects."""
from __future__ import annotations

from typing import Any

from compiler import ops as registry
from compiler.ir import Op

from ..context import gcg
from ..graph import Graph
from ..tensor import Tensor, wrap
from . import views


def _describe(inputs: dict[str, Tensor]) -> str:
    return ", ".join(f"{r}={t.name!r} {t.spec}" for r, t in inputs.items())


def emit_op(
    kind: str,
    inputs: dict[str, Tensor | None],
    attrs: dict[str, Any] | None = None,
    *,
    name: str = "",
    out_names: list[str] | None = None,
    called: Any = None,
    graph: Graph | None = None,
) -> Op:
    g = graph or gcg()
    ins = {r: t for r, t in inputs.items() if t is not None}
    for r, t in ins.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{kind}: input {r!r} must be a popxl Tensor, got {type(t).__name__}")
        if t._value.graph.ir is not g._g.ir:
            raise ValueError(
                f"{kind}: tensor {t.name!r} belongs to another Ir ({t._value.graph.ir!r}, id {id(t._value.graph.ir):#x}) "
                f"than the one being built ({g._g.ir!r}, id {id(g._g.ir):#x}); tensors cannot cross Irs: create "
                "it again in this Ir (e.g. popxl.variable with its data)")
        if t._value.graph is not g._g:
            raise ValueError(
                f"{kind}: tensor {t.name!r} belongs to graph {t._value.graph.id or 'main'!r} but the op is being "
                f"built in graph {g.name or 'main'!r}. Pass it into the subgraph as an input (create_graph argument "
                "or graph_input) and provide it at the call site.")
    values = {r: g.resolve(t._value) for r, t in ins.items()}
    if g._views:
        d = registry.OPS.get(kind)
        roles = [r for r in ins if d is not None and r in d.modifies]
        if kind == "Call" and called is not None:
            roles = [r for i, r in enumerate(ins) if i in called.by_ref]
        views.check_write(g, kind, [(ins[r].name, values[r].storage) for r in roles])  # type: ignore[union-attr]
    names = [g.unique_name(n) for n in out_names] if out_names else None
    try:
        op = registry.emit(g._g, kind, values, attrs, name=name, out_names=names, called=called)
    except registry.OpError as e:
        raise registry.OpError(f"{e}\n  inputs: {_describe(ins)}") from None
    handles = tuple(t._value for t in ins.values())
    if any(h is not v for h, v in zip(handles, op.inputs)):
        op.handles = handles
    g.record(op)
    views.note_view(g, op)
    return op


def outputs(op: Op) -> list[Tensor]:
    return [wrap(v) for v in op.outputs]


def out(op: Op) -> Tensor:
    return wrap(op.outputs[0])
