"""Graphviz drawings of the IR.

One cluster per graph; ops are nodes labelled `Kind.id`; tensors are edges labelled with shape
and dtype; in-place writes are bold red edges into the new version; by-reference inputs are
double octagons; in_sequence constraints are dashed; calls point at the called graph's cluster;
fused kernels are clusters of their primitive nodes; values sharing a storage share a colour.
"""
from __future__ import annotations

from typing import Any

from .graph import Graph
from .ir import Ir

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _tensor_label(v: Any) -> str:
    return f"{tuple(v.shape)} {v.dtype.name}"


def to_dot(ir: Ir, graphs: list[Graph] | None = None) -> Any:
    """A graphviz.Digraph of `graphs` (default: every graph of the Ir)."""
    import graphviz

    graphs = list(ir.graphs.values()) if graphs is None else graphs
    dot = graphviz.Digraph("ir", graph_attr={"compound": "true", "rankdir": "TB", "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "8"})
    anchors: dict[str, str] = {}
    for gi, g in enumerate(graphs):
        gname = g.id or "main"
        with dot.subgraph(name=f"cluster_g{gi}") as c:
            c.attr(label=f"Graph : {gname}", style="rounded", color="gray40")
            anchor = f"g{gi}_anchor"
            c.node(anchor, label="", shape="point", style="invis")
            anchors[g.id] = anchor
            colours: dict[int, str] = {}
            shared = {}
            for v in g.all_values():
                shared.setdefault(v.storage, set()).add(v.id)
            for s, ids in shared.items():
                if len(ids) > 1:
                    colours[s] = PALETTE[len(colours) % len(PALETTE)]

            def src(v: Any) -> str:
                return f"op{v.producer.id}" if v.producer is not None and v.producer.graph is g else f"v{v.id}"

            for i, v in enumerate(g.inputs):
                name = g.input_names.get(v.id, v.name)
                by_ref = i in g.by_ref
                c.node(f"v{v.id}", label=f"{name}\n{_tensor_label(v)}" + ("\n(by ref)" if by_ref else ""),
                       shape="doubleoctagon" if by_ref else "ellipse", color=colours.get(v.storage, "black"))
            for v in g.values.values():
                if v.kind in ("variable", "constant"):
                    c.node(f"v{v.id}", label=f"{v.name}\n{_tensor_label(v)}",
                           shape="box3d" if v.kind == "variable" else "note", color=colours.get(v.storage, "black"))
            for op in g.ops:
                nid = f"op{op.id}"
                if op.kind == "FusedKernel":
                    with c.subgraph(name=f"cluster_op{op.id}") as k:
                        k.attr(label=f"FusedKernel.{op.id}", style="filled", fillcolor="#f3f3ff", color="#6666cc")
                        k.node(nid, label=f"FusedKernel.{op.id}", shape="box", style="bold")
                        expr = op.attrs["expr"]
                        for j, n in enumerate(expr.nodes):
                            extra = f" {n.attr}" if n.attr is not None else ""
                            k.node(f"op{op.id}_n{j}", label=f"{n.prim.value}{extra}\n{n.dtype.name}",
                                   shape="plaintext", fontsize="8")
                            for a in n.args:
                                k.edge(f"op{op.id}_n{a}", f"op{op.id}_n{j}", arrowsize="0.4")
                        for o in expr.outputs:
                            k.edge(f"op{op.id}_n{o}", nid, style="dotted", arrowsize="0.4")
                else:
                    label = f"{op.kind}.{op.id}" + (f"\n({op.called.id})" if op.called is not None else "")
                    c.node(nid, label=label, shape="box", style="rounded")
                for i, v in enumerate(op.inputs):
                    c.edge(src(v), nid, label=_tensor_label(v), color=colours.get(v.storage, "black"))
                for i in op.modifies:
                    nv = op.new_version(i)
                    c.node(f"v{nv.id}", label=f"{nv.name} v{nv.version}\n{_tensor_label(nv)}", shape="ellipse",
                           style="dashed", color=colours.get(nv.storage, "red"))
                    c.edge(nid, f"v{nv.id}", label="writes in place", color="red", penwidth="2")
                    for user in g.users(nv):
                        c.edge(f"v{nv.id}", f"op{user.id}", color=colours.get(nv.storage, "black"))
            for a, b in g.constraints:
                c.edge(f"op{a.id}", f"op{b.id}", style="dashed", color="gray50", constraint="false",
                       label="in_sequence", fontcolor="gray50")
            for v in g.outputs:
                c.node(f"out{gi}_{v.id}", label=f"output\n{_tensor_label(v)}", shape="ellipse", style="dotted")
                c.edge(src(v), f"out{gi}_{v.id}")
    for g in graphs:
        for op in g.ops:
            if op.called is not None and op.called.id in anchors:
                target = [x.id for x in graphs].index(op.called.id)
                dot.edge(f"op{op.id}", anchors[op.called.id], lhead=f"cluster_g{target}", style="dotted",
                         color="blue", label="calls")
    return dot


def graph_svg(ir: Ir, graphs: list[Graph] | None = None) -> str:
    """SVG text (needs Graphviz's `dot` program)."""
    return to_dot(ir, graphs).pipe(format="svg").decode()
