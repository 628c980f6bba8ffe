"""Builder: ONNX nodes, initializers and unique tensor names for one model."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from compiler.ir import DType


class Builder:
    """Collects nodes and constant initializers; hands out names that never collide with the model's
    reserved input/output names (variables, streams)."""

    def __init__(self, reserved: set[str]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used = set(reserved)
        self._n = 0
        self._consts: dict[tuple, str] = {}
        self._casts: dict[tuple[str, int], str] = {}
        self.used_outputs: set[str] = set()  # graph outputs already written (each at most once)

    def fresh(self, hint: str = "t") -> str:
        while True:
            self._n += 1
            name = f"{hint}_{self._n}"
            if name not in self.used:
                self.used.add(name)
                return name

    def node(self, op: str, ins: list[str], n_out: int = 1, out: list[str] | None = None, **attrs: Any) -> list[str]:
        outs = out or [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, **attrs))
        return outs

    def one(self, op: str, *ins: str, **attrs: Any) -> str:
        return self.node(op, list(ins), **attrs)[0]

    def const(self, arr: Any, dtype: Any = None, hint: str = "c") -> str:
        """An initializer holding `arr` (deduplicated by dtype, shape and bytes)."""
        a = np.array(arr, dtype=dtype, order="C")  # (ascontiguousarray would turn 0-d into 1-d)
        key = (a.dtype.str, a.shape, a.tobytes())
        if key not in self._consts:
            name = self.fresh(hint)
            self.inits.append(numpy_helper.from_array(a, name))
            self._consts[key] = name
        return self._consts[key]

    def cast(self, name: str, src: DType, dst: DType) -> str:
        """`name` (of dtype src) as dtype dst; one Cast node per (tensor, dtype)."""
        if src == dst:
            return name
        key = (name, dst.info.onnx)
        if key not in self._casts:
            self._casts[key] = self.one("Cast", name, to=dst.info.onnx)
        return self._casts[key]
