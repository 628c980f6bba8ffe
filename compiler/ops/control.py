"""Control and data-movement ops: Call, Init, HostLoad, HostStore.

Their semantics need the executing machine (streams, called graphs), so the
interpreter and each backend implement them; here they have type rules and effects.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import TensorSpec

from .registry import OpDef, OpError, register


def _infer_call(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [TensorSpec(sh, dt) for sh, dt in a["out_specs"]]


register(OpDef(kind="Call", formula="outs = called_graph(ins); by-ref inputs written back",
               infer=_infer_call, pure=False))


def _infer_init(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    if a.get("init_type", "zero") not in ("zero", "undef"):
        raise OpError("Init: init_type must be 'zero' or 'undef'")
    return [TensorSpec(a["shape"], a["dtype"])]


register(OpDef(kind="Init", formula="out = zeros(shape)", infer=_infer_init,
               reference=lambda x, a, op: [np.zeros(a["shape"], a["dtype"].numpy)]))


def _infer_host_load(s: dict[str, TensorSpec], a: dict[str, Any]) -> list[TensorSpec]:
    return [s["t"]]


register(OpDef(kind="HostLoad", formula="t <- next batch of stream", infer=_infer_host_load, pure=False))
register(OpDef(kind="HostStore", formula="stream <- t", infer=lambda s, a: [], pure=False))
