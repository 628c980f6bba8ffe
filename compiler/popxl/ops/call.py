"""call / call_with_info: run a subgraph; by-reference inputs are written back to the caller."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..graph import Graph
from ..tensor import Tensor, wrap
from ._emit import emit_op


class CallSiteInfo:
    def __init__(self, op: Any, caller: Graph, called: Graph, inputs: list[Tensor]) -> None:
        self._op = op
        self.called_graph = called
        self.parent_graph = caller
        self._inputs = inputs

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return tuple(self._inputs)

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        return tuple(wrap(v) for v in self._op.outputs)

    def graph_to_parent(self, t: Tensor) -> Tensor:
        g = self.called_graph._g
        for i, v in enumerate(g.inputs):
            if v is t._value:
                return self._inputs[i]
        for i, v in enumerate(g.outputs):
            if v.storage == t._value.storage:
                return wrap(self._op.outputs[i])
        raise ValueError(f"{t!r} is neither an input nor an output of the called graph {g.id!r}")

    def parent_to_graph(self, t: Tensor) -> Tensor:
        for i, p in enumerate(self._inputs):
            if p == t:
                return wrap(self.called_graph._g.inputs[i])
        for i, v in enumerate(self._op.outputs):
            if v is t._value:
                return wrap(self.called_graph._g.outputs[i])
        raise ValueError(f"{t!r} is not an input or output of this call of {self.called_graph.name!r}")

    def parent_input(self, idx: int) -> Tensor:
        return self._inputs[idx]

    def parent_output(self, idx: int) -> Tensor:
        return wrap(self._op.outputs[idx])

    # Index maps between the called graph's and the call op's inputs/outputs. A call here connects
    # every graph input, in order, so they are the identity on the valid range.
    def _index(self, idx: int, n: int, what: str) -> int:
        if not 0 <= idx < n:
            raise IndexError(f"{what} index {idx} is out of range: the call of {self.called_graph.name!r} has {n}")
        return idx

    def graph_to_parent_input_index(self, idx: int) -> int:
        return self._index(idx, len(self._inputs), "input")

    def parent_to_graph_input_index(self, idx: int) -> int:
        return self._index(idx, len(self._inputs), "input")

    def graph_to_parent_output_index(self, idx: int) -> int:
        return self._index(idx, len(self._op.outputs), "output")

    def parent_to_graph_output_index(self, idx: int) -> int:
        return self._index(idx, len(self._op.outputs), "output")

    def is_parent_input_modified(self, t: Tensor) -> bool:
        """Whether the call writes `t` back (it feeds a by-reference input)."""
        return any(p == t and i in self.called_graph._g.by_ref for i, p in enumerate(self._inputs))


_MISSING = object()


def call_with_info(graph: Graph, *inputs: Any, inputs_dict: Mapping[Tensor, Any] | None = None,
                   **_: Any) -> CallSiteInfo:
    from ..context import gcg
    from ..creation import constant

    caller = gcg()
    g = graph._g
    if g is caller._g:
        raise ValueError(f"graph {g.id!r} cannot call itself")
    flat: list[Any] = []
    for x in inputs:  # a list argument of create_graph became one input per item
        flat.extend(x) if isinstance(x, (list, tuple)) else flat.append(x)
    inputs = tuple(flat)
    slots: list[Any] = [_MISSING] * len(g.inputs)
    if len(inputs) > len(g.inputs):
        raise ValueError(f"call: {len(inputs)} inputs given but graph {g.id!r} takes {len(g.inputs)}")
    for i, x in enumerate(inputs):
        slots[i] = x
    for gt, x in (inputs_dict or {}).items():
        idx = next((i for i, v in enumerate(g.inputs) if v is gt._value), None)
        if idx is None:
            raise ValueError(f"call: {gt!r} in inputs_dict is not an input of graph {g.id!r}")
        if idx < len(inputs):
            raise ValueError(f"call {g.id!r}: input {idx} ({gt.name!r}) is given both positionally and in "
                             "inputs_dict; give it once")
        slots[idx] = x
    missing = [g.inputs[i].name for i, x in enumerate(slots) if x is _MISSING]
    if missing:
        raise ValueError(
            f"Not enough inputs have been provided for the called graph {g.id!r}: missing {missing}. "
            "Pass them positionally, by inputs_dict, or bind them (GraphWithNamedArgs.bind)")
    tensors: list[Tensor] = []
    for i, x in enumerate(slots):
        v = g.inputs[i]
        if not isinstance(x, Tensor):
            arr = np.asarray(x) if x is not None else None
            if arr is None or arr.dtype.kind not in "biuf":
                raise TypeError(f"call {g.id!r}: input {i} ({v.name!r}) got {x!r}, which is neither a Tensor nor "
                                "numeric host data that could become a constant")
            x = constant(arr, v.dtype, name=v.name)
        if x.spec != v.spec:
            raise ValueError(
                f"call {g.id!r}: input {i} ({v.name!r}) expects {v.spec}, got {x.name!r} {x.spec}")
        tensors.append(x)
    attrs = {"out_specs": tuple((o.shape, o.dtype) for o in g.outputs)}
    op = emit_op("Call", {f"in{i}": t for i, t in enumerate(tensors)}, attrs, name="call",
                 out_names=[o.name.split("/")[-1] for o in g.outputs], called=g, graph=caller)
    return CallSiteInfo(op, caller, graph, tensors)


def call(graph: Graph, *inputs: Any, inputs_dict: Mapping[Tensor, Any] | None = None, **kw: Any) -> tuple[Tensor, ...]:
    return call_with_info(graph, *inputs, inputs_dict=inputs_dict, **kw).outputs
