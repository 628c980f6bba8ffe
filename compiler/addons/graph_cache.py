"""GraphCache: reuse a Module's graph when create_graph is called with equivalent arguments.

Rules (popxl.addons): the key is (module, arguments as passed to create_graph); a Tensor or
TensorSpec hashes by (shape, dtype, meta_shape), so its name is ignored; containers hash
recursively; anything else by `hash`. Build defaults are not applied and keyword order counts.
"""
from __future__ import annotations

from typing import Any

from compiler import popxl
from compiler.ir import TensorSpec


def arg_hash(x: Any) -> Any:
    if isinstance(x, (popxl.Tensor, TensorSpec)):
        return ("spec", tuple(x.shape), x.dtype, tuple(getattr(x, "meta_shape", ()) or ()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(arg_hash(i) for i in x))
    if isinstance(x, dict):
        return ("dict", tuple((k, arg_hash(v)) for k, v in x.items()))
    from .graph import BoundGraph, GraphWithNamedArgs

    if isinstance(x, BoundGraph):
        return ("bound", id(x.graph._g), tuple(sorted((id(k), id(v)) for k, v in x.args.items())))
    if isinstance(x, GraphWithNamedArgs):
        return ("graph", id(x.graph._g))
    return hash(x)


class GraphCache:
    def __init__(self) -> None:
        self._entries: dict[Any, Any] = {}
        self.hits = 0
        self.misses = 0

    def key(self, module: Any, ir: Any, args: tuple, kwargs: dict) -> Any:
        return (id(module), id(ir), tuple(arg_hash(a) for a in args),
                tuple((k, arg_hash(v)) for k, v in kwargs.items()))

    def get(self, key: Any) -> Any:
        hit = self._entries.get(key)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put(self, key: Any, value: Any) -> None:
        self._entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)
