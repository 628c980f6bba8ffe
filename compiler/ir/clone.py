"""Deep copy of an Ir (passes rewrite a copy; the user's Ir stays as built). Value and op ids are kept."""
from __future__ import annotations

import copy

from .ir import Ir


def clone(ir: Ir) -> Ir:
    memo: dict[int, object] = {}
    for arr in list(ir.variables.values()) + list(ir.constants.values()):
        memo[id(arr)] = arr  # data is shared, never rewritten by passes
    for k in ("_wrappers", "_stream_handles"):
        if hasattr(ir, k):
            memo[id(getattr(ir, k))] = {}
    return copy.deepcopy(ir, memo)
