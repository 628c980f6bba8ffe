"""Refusals that fusion passes record in `graph.info[key]`, printed one per line with their graph."""
from __future__ import annotations

from compiler.ir import Ir


def format_recorded(ir: Ir, key: str) -> str:
    """Every refusal recorded under `graph.info[key]` in any graph of `ir`, one per line, by graph."""
    return "\n".join(f"{g.id or 'main'}: {r}" for g in ir.graphs.values() for r in g.info.get(key, []))
