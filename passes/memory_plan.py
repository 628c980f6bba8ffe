"""Memory planning: one workspace per graph with liveness-based reuse.

before -> after: every temporary storage owning its own buffer -> offsets into one workspace,
where storages whose lifetimes (definition to last access, inclusive) do not overlap share
bytes. Records graph.info["memory_plan"] = {"offsets": {storage: byte offset}, "peak_bytes",
"naive_bytes"}; the LLVM backend allocates from it.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir

from .alias_analysis import is_protected
from .registry import register

ALIGN = 64


def _align(n: int) -> int:
    return (max(n, 1) + ALIGN - 1) // ALIGN * ALIGN


def plan_graph(g: Graph) -> dict:
    start: dict[int, int] = {}
    end: dict[int, int] = {}
    size: dict[int, int] = {}
    for k, op in enumerate(g.ops):
        for v in op.results:
            if v.version == 0 and not is_protected(g, v.storage):
                start[v.storage] = k
                size[v.storage] = _align(v.spec.nbytes)
        for v in list(op.inputs) + op.results:
            end[v.storage] = k
    for v in g.outputs:
        end[v.storage] = len(g.ops)
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, start, end)
    offsets: dict[int, int] = {}
    for s in sorted(start, key=lambda s: (start[s], -size[s])):
        lo, hi = start[s], end.get(s, start[s])
        busy = sorted((o, o + n) for o, n, a, b in placed if not (b < lo or hi < a))
        at = 0
        for o0, o1 in busy:
            if at + size[s] <= o0:
                break
            at = max(at, o1)
        offsets[s] = at
        placed.append((at, size[s], lo, hi))
    peak = max((o + n for o, n, _, _ in placed), default=0)
    return {"offsets": offsets, "peak_bytes": peak, "naive_bytes": sum(size.values())}


@register("memory_plan")
def run(ir: Ir) -> bool:
    for g in ir.graphs.values():
        g.info["memory_plan"] = plan_graph(g)
    return False
