"""The IR data model. Imports nothing else of the project."""
from .dtypes import DType, as_dtype
from .graph import Graph
from .ir import Ir, Stream
from .memory import MemoryPlan
from .op import Op
from .printer import print_schedule
from .spec import TensorSpec
from .value import Value
from .verify import VerificationError, verify

__all__ = ["DType", "as_dtype", "Graph", "Ir", "Stream", "MemoryPlan", "Op", "print_schedule", "TensorSpec",
           "Value", "VerificationError", "verify"]
