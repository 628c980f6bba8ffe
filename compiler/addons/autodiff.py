"""addons.autodiff and addons.autodiff_with_accumulation: popxl.transforms.autodiff returning a
GraphWithNamedArgs whose `grad_graph_info` connects it to the forward call site.

(popxl.addons also runs PopART's pre-alias and inplace patterns on the gradient graph; here the
compiler's pass pipeline does that work at compile time.)
"""
from __future__ import annotations

from functools import partial
from typing import Any, Iterable, Mapping

import numpy as np

from compiler import popxl
from compiler.popxl import ops

from .build_grad import check_called_graphs
from .dot_tree import NamedTensors
from .graph import GraphWithNamedArgs
from .variable_factory import NamedVariableFactories, VariableFactory


def autodiff(graph: GraphWithNamedArgs, grads_provided: Iterable[popxl.Tensor] | None = None,
             grads_required: Iterable[popxl.Tensor] | None = None,
             called_graphs_grad_info: Mapping[popxl.Graph, Any] | None = None, **_: Any) -> GraphWithNamedArgs:
    """The gradient graph of `graph`; the forward graph gains its activations as outputs (call it after this).
    Graphs it calls that were built from modules with build_grad use their registered gradient graphs."""
    known = {**getattr(graph, "called_graphs_grad_info", {}), **dict(called_graphs_grad_info or {})}
    check_called_graphs(graph.graph, known)
    info = popxl.transforms.autodiff(graph.graph, grads_provided, grads_required, known)
    return GraphWithNamedArgs(info.graph, NamedTensors(), grad_graph_info=info)


def autodiff_with_accumulation(graph: GraphWithNamedArgs, tensors_to_accumulate_grads: Iterable[popxl.Tensor],
                               grads_required: Iterable[popxl.Tensor] | None = None, replica_groupings: Any = None
                               ) -> tuple[NamedVariableFactories, GraphWithNamedArgs]:
    """autodiff, then a running mean of the gradient of each tensor in `tensors_to_accumulate_grads`:
    accum.<name> <- accum * n/(n+1) + grad/(n+1); n <- n + 1, with accum.<name> and `mean_accum_counter`
    (float32 scalar n) new by-ref named inputs. Those gradients are no longer outputs. Reset the mean by
    zeroing the counter (ops.var_updates.accumulator_scale_(counter, 0.0))."""
    to_acc = list(tensors_to_accumulate_grads)
    required = list(grads_required or [])
    required += [t for t in to_acc if all(t is not r and t._value is not r._value for r in required)]
    info = popxl.transforms.autodiff(graph.graph, grads_required=required)
    names = {t._value.id: k for k, t in graph.args.named_tensors.items()}
    expected = [c.fwd_tensor._value for c in info.expected_outputs]
    facts: dict[str, VariableFactory] = {}
    named: dict[str, popxl.Tensor] = {}

    def add_input(name: str, shape: tuple[int, ...], dtype: Any) -> popxl.Tensor:
        facts[name] = VariableFactory(partial(np.zeros, shape), dtype, name, by_ref=True)
        named[name] = popxl.graph_input(shape, dtype, name, by_ref=True)
        return named[name]

    removed = []
    with info.graph, popxl.in_sequence(True):
        counter = add_input("mean_accum_counter", (), popxl.float32)
        with popxl.in_sequence(False):
            for t in to_acc:
                idx = expected.index(t._value)
                removed.append(idx)
                name = names.get(t._value.id) or t.name
                accum = add_input(f"accum.{name}", t.shape, t.dtype)
                ops.var_updates.accumulate_mean_(accum, info.graph.outputs[idx], counter)
        ops.var_updates.accumulate_(counter, popxl.constant(1.0, popxl.float32))
    g = info.graph._g
    g.outputs = [v for i, v in enumerate(g.outputs) if i not in removed]
    info._info.expected_outputs = [v for i, v in enumerate(info._info.expected_outputs) if i not in removed]
    return (NamedVariableFactories.from_dict(facts),  # type: ignore[return-value]
            GraphWithNamedArgs(info.graph, NamedTensors.from_dict(named), grad_graph_info=info))
