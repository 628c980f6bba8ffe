"""A PopXL-compatible API that builds this compiler's IR."""
from compiler.ir.dtypes import (DType, bfloat16, bool_, double, float, float16, float32, float64, half, int8,
                                int16, int32, int64, uint8, uint16, uint32, uint64)
from compiler.ir.spec import TensorSpec

from . import dtypes, errors, ops, streams, testing, transforms, utils
from .dtypes import float8_143, float8_152
from .module import Module
from .context import gcg, get_current_graph, get_ir, get_main_graph, gir, gmg, in_sequence, name_scope
from .creation import (DeviceToHostStream, HostToDeviceStream, constant, d2h_stream, graph_input, h2d_stream,
                       variable)
from .graph import Graph
from .ir import Ir
from .replica_grouping import ReplicaGrouping
from .session import Session
from .tensor import Constant, Tensor, TensorByRef, Variable

dtype = DType
bool = bool_

__all__ = [
    "dtypes", "errors", "streams", "testing", "utils", "Module", "float8_143", "float8_152",
    "DType", "dtype", "bfloat16", "bool", "double", "float", "float16", "float32", "float64", "half",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "TensorSpec", "ops", "transforms",
    "gcg", "gir", "gmg", "get_current_graph", "get_ir", "get_main_graph", "in_sequence", "name_scope",
    "DeviceToHostStream", "HostToDeviceStream", "constant",
    "d2h_stream", "graph_input", "h2d_stream", "variable", "Graph", "Ir", "ReplicaGrouping", "Session", "Constant",
    "Tensor",
    "TensorByRef", "Variable",
]
