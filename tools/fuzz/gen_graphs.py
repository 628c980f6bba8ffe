"""Random subgraphs (traced with by-reference inputs, nested up to two levels) and calls of them."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .program import Builder, Entry

if TYPE_CHECKING:
    from .generate import Generator


def graph_step(gen: "Generator", b: Builder) -> dict | bool:
    r = gen.rng
    args: list[tuple[int, Entry, bool]] = []
    refs: set[int] = set()
    for _ in range(r.randint(1, 4)):
        i, e = gen.pick(b, lambda e: e.t.dtype.name != "bool")
        by_ref = gen.can_update(e) and i not in refs and r.random() < 0.6
        if by_ref:
            refs.add(i)
        args.append((i, e, by_ref))
    decl = [{"id": gen.new_id(), "shape": list(e.t.shape), "dtype": e.t.dtype.name, "by_ref": ref,
             "tol": e.tol, "bound": e.bound} for _, e, ref in args]
    gid = gen.next_graph = gen.next_graph + 1
    step = {"op": "graph", "id": gid, "inputs": decl, "body": [], "outputs": []}
    n = r.randint(2, 8)

    def fill(sub: Builder) -> None:
        gen.fill(sub, n)
        made = [i for i in sub.env if i not in {d["id"] for d in decl}]
        pool = made + [d["id"] for d in decl]
        step["outputs"] = r.sample(made, min(len(made), r.randint(0, 3)))
        if pool and r.random() < 0.15:
            step["outputs"].append(r.choice(pool))  # returning an input (or a duplicate) is legal too

    if not gen._apply(b, step, fill):
        return False
    ins = [i for i, _, _ in args]
    out = call_with(gen, b, gid, ins)
    if r.random() < 0.3:
        call_step(gen, b, gid)
    return out


def call_with(gen: "Generator", b: Builder, gid: int, ins: list[int]) -> dict | bool:
    info = b.ctx.graphs[gid]
    body_outs = [i for i, _, _ in info.outputs]
    step = {"op": "call", "graph": gid, "in": ins, "body_outputs": body_outs, "out": [gen.new_id() for _ in body_outs]}
    return gen._apply(b, step)


def call_step(gen: "Generator", b: Builder, gid: int | None = None) -> dict | bool:
    graphs = b.ctx.graphs
    if not graphs:
        return False
    gid = gid if gid is not None else gen.rng.choice(sorted(graphs))
    ins: list[int] = []
    for d in graphs[gid].inputs:
        taken = {id(b.env[k]) for k in ins}
        p = gen.pick(b, lambda e, d=d, taken=taken: list(e.t.shape) == d["shape"] and e.t.dtype.name == d["dtype"]
                     and (e.exact or d["tol"] > 0) and (not d["by_ref"] or (gen.can_update(e) and id(e) not in taken)))
        if p is None:
            return False
        ins.append(p[0])
    return call_with(gen, b, gid, ins)
