"""ops.call / CallSiteInfo as PopXL: lists of tensors, coercion, duplicate inputs, index maps, errors."""
from __future__ import annotations

from typing import List

import numpy as np
import pytest

from compiler import popxl
from compiler.popxl import ops


def test_lists_of_tensors_through_create_graph_and_call():
    def total(a: popxl.Tensor, bs: List[popxl.Tensor]):
        for b in bs:
            a = a + b
        return a

    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.float32(1.0))
        g = ir.create_graph(total, x, [x, x, x])
        (y,) = ops.call(g, x, [x, x, x])
        d = popxl.d2h_stream(y.shape, y.dtype, "y")
        ops.host_store(d, y)
    assert len(g.inputs) == 4
    with popxl.Session(ir, "cpu") as s:
        assert s.run()[d] == 4.0


def test_call_errors():
    ir = popxl.Ir()
    with ir.main_graph:
        a = popxl.variable(np.int32(1))
        g = ir.create_graph(lambda x: x, a)
        with pytest.raises(ValueError, match="both positionally and in inputs_dict"):
            ops.call(g, a, inputs_dict={g.inputs[0]: a})
        with pytest.raises(TypeError):
            ops.call(g, "a")
        with pytest.raises(TypeError):
            ops.call(g, None)
        (y,) = ops.call(g, 3)  # numbers become constants of the input's dtype
        assert y.dtype == popxl.int32


def test_callsite_info_maps():
    ir = popxl.Ir()
    with ir.main_graph:
        a, b = popxl.variable(np.int32(1), name="a"), popxl.variable(np.int32(2), name="b")
        g = ir.create_graph(lambda x, y: (x + y, x - y), a, b)
        info = ops.call_with_info(g, a, b)
        assert [info.graph_to_parent_input_index(i) for i in (0, 1)] == [0, 1]
        assert info.parent_to_graph_output_index(1) == 1
        assert info.graph_to_parent(g.outputs[1]) == info.outputs[1]
        assert info.parent_to_graph(a) == g.inputs[0]
        other = popxl.variable(np.int32(0), name="other")
        with pytest.raises(ValueError):
            info.graph_to_parent(other)
        with pytest.raises(ValueError):
            info.parent_to_graph(other)
