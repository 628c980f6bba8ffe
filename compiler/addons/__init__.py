"""A popxl.addons-compatible API on this compiler's IR."""
from . import ops
from .autodiff import autodiff, autodiff_with_accumulation
from .dot_tree import DotTree, NamedTensors
from .graph import BoundGraph, GraphWithNamedArgs
from .graph_cache import GraphCache
from .module import Module
from .ops import cross_entropy, cross_entropy_with_grad
from .streams import InputStreams, OutputStreams, host_store
from .variable_factory import NamedVariableFactories, VariableFactory

from . import transforms  # noqa: E402  (after autodiff, which it re-exports)

__all__ = ["ops", "autodiff", "autodiff_with_accumulation", "DotTree", "NamedTensors", "BoundGraph",
           "GraphWithNamedArgs", "GraphCache", "Module", "NamedVariableFactories", "VariableFactory",
           "InputStreams", "OutputStreams", "host_store", "transforms", "cross_entropy", "cross_entropy_with_grad"]
