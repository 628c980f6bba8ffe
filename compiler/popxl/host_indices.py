"""Host-fed indices are checked before a run starts, so a bad batch is refused with nothing changed.

Labels (cross-entropy) and sparse-accumulate indices read memory at positions given by data. The
devices check them while running, but by then earlier ops of the step may have updated variables, and
the compiled code finishes the step while the interpreter stops at the op: the two would leave
different partial states. When the indices come straight from a host stream (through reshapes and
subgraph calls only), the Session checks the whole batch against each op's valid range first, so a
run with a bad index is all-or-nothing on every device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir import Graph, Ir, Value

PASS_THROUGH = ("Reshape", "Identity", "Flatten", "Transpose")  # ops that keep every element's value


@dataclass(frozen=True)
class IndexCheck:
    stream: str
    lo: int  # valid indices are lo <= i < hi, or equal to `ignore`
    hi: int
    ignore: int | None
    what: str  # the op and what its indices mean, for the message


def _sources(ir: Ir, g: Graph, v: Value) -> set[str]:
    """The host streams whose data reaches `v` unchanged; empty if `v` is computed."""
    out: set[str] = set()
    todo, seen = [(g, v)], set()
    while todo:
        g, v = todo.pop()
        if (g.id, v.id) in seen:
            continue
        seen.add((g.id, v.id))
        p = v.producer
        if p is not None and p.kind == "HostLoad":
            out.add(p.attrs["stream"])
        elif p is not None and p.kind in PASS_THROUGH and p.inputs:
            todo.append((g, p.inputs[0]))
        elif p is None and v.kind == "input" and v in g.inputs:
            k = g.inputs.index(v)
            todo += [(h, c.inputs[k]) for h in ir.graphs.values() for c in h.ops
                     if c.called is g and k < len(c.inputs)]
    return out


def host_index_checks(ir: Ir) -> list[IndexCheck]:
    checks = []
    for g in ir.reachable_graphs():
        for op in g.ops:
            if op.kind == "NlllWithSoftmaxGradDirect":
                idx, n = op.input("labels"), op.inputs[0].shape[-1]
                lo, ignore = 0, op.attrs.get("ignore_index")
                what = f"{op.name!r} ({op.label}): a label is outside [0, {n}) and is not ignore_index"
            elif op.kind == "PopartSparseAccumulate":
                t = op.input("t")
                idx, ignore = op.input("indices"), None
                n = t.shape[op.attrs.get("axis", 0)] if t is not None else 0
                lo = -n
                what = f"{op.name!r} ({op.label}): an index is outside [-{n}, {n})"
            else:
                continue
            if idx is None:
                continue
            checks += [IndexCheck(s, lo, n, ignore, what) for s in sorted(_sources(ir, g, idx))]
    return checks


def check_batch(checks: list[IndexCheck], streams: dict[str, np.ndarray]) -> None:
    """Raise IndexError naming the op and the first bad value if any host-fed index is out of range."""
    for c in checks:
        a = streams.get(c.stream)
        if a is None or a.size == 0:
            continue
        a = a.reshape(-1)
        bad = (a < c.lo) | (a >= c.hi)
        if c.ignore is not None:
            bad &= a != c.ignore
        if np.any(bad):
            k = int(np.argmax(bad))
            raise IndexError(f"stream {c.stream!r} element {k} is {a[k]}: {c.what}; the run was refused before "
                             "any variable changed")
