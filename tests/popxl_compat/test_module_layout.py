"""PopXL / popxl.addons code imports the same module paths and names as upstream."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from compiler import addons, popxl


@pytest.mark.parametrize("path", ["dtypes", "tensor", "streams", "testing", "utils", "errors", "context",
                                  "transforms.autodiff", "ops.var_updates"])
def test_popxl_submodules_import(path):
    importlib.import_module(f"compiler.popxl.{path}")


def test_dtype_class_converts_like_popxl():
    dtype = popxl.dtypes.dtype
    assert dtype.as_dtype(np.zeros(2, np.float16)) is popxl.float16
    assert dtype.as_dtype("int32") is popxl.int32
    assert dtype.as_dtype(float) is popxl.float32 and dtype.as_dtype(int) is popxl.int64
    assert popxl.float16.as_numpy() == np.float16
    assert popxl.float32.is_floating_point and not popxl.int8.is_floating_point
    with pytest.raises(ValueError, match="popxl dtype"):
        dtype.as_dtype(str)


def test_float8_names_exist_but_refuse_use():
    with pytest.raises(ValueError, match="float8"):
        popxl.float8_143.as_numpy()


def test_tensor_module_exposes_constructors():
    from compiler.popxl.tensor import graph_input

    ir = popxl.Ir()
    with ir.create_empty_graph("g"):
        t = graph_input((2,), popxl.float32, "x")
    assert t.shape == (2,) and t.name == "x"


def test_popxl_module_calls_build():
    class Twice(popxl.Module):
        def build(self, x):
            return x * 2.0

    ir = popxl.Ir()
    with ir.main_graph:
        g = ir.create_graph(Twice(), popxl.TensorSpec((3,), popxl.float32))
    assert g.name.endswith("Twice_subgraph(0)") and len(g.outputs) == 1


def test_addons_transforms_autodiff_is_the_function_and_the_module():
    assert addons.transforms.autodiff is addons.autodiff
    mod = importlib.import_module("compiler.addons.transforms.autodiff")
    assert mod.autodiff_with_accumulation is addons.autodiff_with_accumulation
