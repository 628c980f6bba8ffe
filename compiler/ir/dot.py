"""Graphviz drawings of the IR (the `graphviz` package is imported only when a drawing is made).

- one cluster per graph; a dotted blue edge from each Call to the cluster of the graph it calls;
- ops are boxes labelled `Kind.id`; a FusedKernel is a cluster labelled `FusedKernel.id` holding its
  primitive nodes (`attrs["expr"].nodes`): the kernel's inputs enter at its `input k` nodes; a
  MatMulEpilogue is such a cluster with a `MatMul (per tile)` node feeding the epilogue's `input 0`, and
  the nodes of its prologues (labelled `a` / `b`) feeding the matmul node;
- tensors are edges labelled with shape and dtype;
- graph inputs are ellipses, by-reference inputs double octagons, variables 3-d boxes, constants notes;
- an in-place write is a bold red edge into a dashed node for the new version of the storage;
- values sharing a storage (alias groups: the versions of one buffer) share a colour;
- constraints (in_sequence and hazard order) are dashed grey edges that do not affect the layout.
"""
from __future__ import annotations

from typing import Any

from .graph import Graph
from .ir import Ir
from .op import Op
from .value import Value

PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
WRITE = "#d62728"
LEGEND = ("ellipse: graph input\\ldouble octagon: by-reference input\\l3-d box: variable   note: constant\\l"
          "dashed ellipse: new version of a storage\\lbold red: writes in place\\lsame colour: same storage\\l"
          "dashed grey: must run before\\ldotted blue: calls\\l")


def tensor_label(v: Value) -> str:
    return f"{tuple(v.shape)} {v.dtype.name}"


class _Drawer:
    """Draws one graph into a cluster."""

    def __init__(self, c: Any, g: Graph, expand_fused: bool) -> None:
        self.c, self.g, self.expand = c, g, expand_fused
        versions: dict[int, int] = {}
        for v in g.values.values():
            versions[v.storage] = versions.get(v.storage, 0) + 1
        shared = [s for s, n in versions.items() if n > 1]
        self.colour = {s: PALETTE[k % len(PALETTE)] for k, s in enumerate(shared)}

    def expanded(self, op: Op) -> bool:
        return self.expand and op.kind in ("FusedKernel", "MatMulEpilogue") and "expr" in op.attrs

    def anchor(self, op: Op) -> tuple[str, str | None]:
        """A node standing for `op` and the cluster to clip edges at (fused kernels are clusters)."""
        return (f"op{op.id}_n0", f"cluster_op{op.id}") if self.expanded(op) else (f"op{op.id}", None)

    def holder(self, v: Value) -> str:
        """The node where `v` is computed: an op, a fused kernel's output primitive, or `v` itself."""
        op = v.producer
        if op is None or op.graph is not self.g:
            return f"v{v.id}"
        if self.expanded(op):
            k = next(i for i, r in enumerate(op.results) if r is v)
            return f"op{op.id}_n{op.attrs['expr'].outputs[k]}"
        return f"op{op.id}"

    def src(self, v: Value) -> str:
        """The node readers of `v` are drawn from (a new version of a storage has a node of its own)."""
        op = v.producer
        if op is not None and op.graph is self.g and any(op.new_version(i) is v for i in op.modifies):
            return f"v{v.id}"
        return self.holder(v)

    def value_node(self, v: Value, label: str, **attrs: str) -> None:
        self.c.node(f"v{v.id}", label=label, color=self.colour.get(v.storage, "black"), **attrs)

    def draw(self) -> None:
        g, c = self.g, self.c
        for i, v in enumerate(g.inputs):
            name = g.input_names.get(v.id, v.name)
            if i in g.by_ref:
                self.value_node(v, f"{name}\\n{tensor_label(v)}\\n(by ref)", shape="doubleoctagon")
            else:
                self.value_node(v, f"{name}\\n{tensor_label(v)}", shape="ellipse")
        for v in g.values.values():
            if v.kind in ("variable", "constant"):
                self.value_node(v, f"{v.name}\\n{tensor_label(v)}", shape="box3d" if v.kind == "variable" else "note")
            elif v.kind == "external":
                self.value_node(v, f"{v.name}\\n{tensor_label(v)}\\n(caller-owned)", shape="box3d", style="dashed")
        for op in g.ops:
            self.op(op)
        for a, b in g.constraints:
            (na, ca), (nb, cb) = self.anchor(a), self.anchor(b)
            extra = {k: v for k, v in (("ltail", ca), ("lhead", cb)) if v}
            c.edge(na, nb, style="dashed", color="gray55", constraint="false", arrowsize="0.6", **extra)
        for k, v in enumerate(g.outputs):
            c.node(f"out_{g.id}_{k}", label=f"output {k}\\n{tensor_label(v)}", shape="ellipse", style="dotted")
            c.edge(self.src(v), f"out_{g.id}_{k}", color=self.colour.get(v.storage, "black"))

    def op(self, op: Op) -> None:
        if self.expanded(op):
            self.fused(op)
        else:
            label = f"{op.kind}.{op.id}" + (f"\\n{op.called.id}" if op.called is not None else "")
            self.c.node(f"op{op.id}", label=label, shape="box", style="rounded,filled", fillcolor="#f4f4f4")
            for v in op.inputs:
                self.edge(v, f"op{op.id}")
        for i in op.modifies:
            nv = op.new_version(i)
            self.value_node(nv, f"{nv.name} v{nv.version}\\n{tensor_label(nv)}", shape="ellipse", style="dashed")
            self.c.edge(self.holder(nv), f"v{nv.id}", label="in place", color=WRITE, fontcolor=WRITE, penwidth="2.5")

    def edge(self, v: Value, dst: str) -> None:
        colour = self.colour.get(v.storage, "black")
        self.c.edge(self.src(v), dst, label=tensor_label(v), color=colour, fontcolor=colour)

    def fused(self, op: Op) -> None:
        epilogue = op.kind == "MatMulEpilogue"  # expr input 0 is the matmul's tile, input k epilogue operand k-1
        # a MatMulEpilogue's prologues (compiler/ops/matmul_epilogue.py): slot -> (slot, count, expr, ...)
        pros = {int(p[0]): p for p in op.attrs.get("prologues", ())} if epilogue else {}
        counts = [int(pros[s][1]) if s in pros else 1 for s in (0, 1)] if epilogue else [0, 0]
        with self.c.subgraph(name=f"cluster_op{op.id}") as k:
            members = op.attrs.get("members") or ()
            k.attr(label=f"{op.kind}.{op.id}" + (f" ({len(members)} ops)" if members else ""), style="filled,rounded",
                   fillcolor="#eef0ff", color="#6666cc", fontsize="10")
            if epilogue:
                k.node(f"op{op.id}_mm", label="MatMul (per tile)", shape="box", style="rounded", fontsize="9")
            for slot, p in pros.items():  # a prologue's nodes feed the matmul node
                pre = f"op{op.id}_p{slot}"
                self.expr_nodes(k, p[2], pre)
                k.edge(f"{pre}_n{p[2].outputs[0]}", f"op{op.id}_mm", arrowsize="0.4", color="#6666cc",
                       label="a" if slot == 0 else "b", fontsize="8")
            self.expr_nodes(k, op.attrs["expr"], f"op{op.id}", f"op{op.id}_mm" if epilogue else None)
        for i, v in enumerate(op.inputs):
            if i < counts[0] + counts[1]:  # an operand of the matmul, or an input of its prologue
                slot, start = (0, 0) if i < counts[0] else (1, counts[0])
                if slot in pros:
                    self.edge(v, f"op{op.id}_p{slot}_n{_entry(pros[slot][2], i - start)}")
                else:
                    self.edge(v, f"op{op.id}_mm")
                continue
            at = i - counts[0] - counts[1] + 1 if epilogue else i
            self.edge(v, f"op{op.id}_n{_entry(op.attrs['expr'], at)}")

    def expr_nodes(self, k: Any, expr: Any, pre: str, tile: str | None = None) -> None:
        """The primitive nodes of `expr` as `{pre}_n{j}`; `tile` (a node) feeds its input 0."""
        for j, n in enumerate(expr.nodes):
            prim = getattr(n.prim, "value", n.prim)
            head = f"input {n.attr}" if prim == "input" else f"{n.attr!r}" if prim == "const" else prim
            if tile is not None and prim == "input" and n.attr == 0:
                k.edge(tile, f"{pre}_n{j}", arrowsize="0.4", color="#6666cc")
            k.node(f"{pre}_n{j}", label=f"{head}\\n{n.dtype.name}", shape="plaintext", fontsize="8",
                   height="0.2", margin="0.02")
            for a in n.args:
                k.edge(f"{pre}_n{a}", f"{pre}_n{j}", arrowsize="0.4", color="#6666cc")


def _entry(expr: Any, at: int) -> int:
    """The node of `expr` that reads its input `at` (node 0 when none does)."""
    return next((j for j, n in enumerate(expr.nodes) if getattr(n.prim, "value", n.prim) == "input" and n.attr == at), 0)


def to_dot(ir: Ir, graphs: list[Graph] | None = None, expand_fused: bool = True, legend: bool = False) -> Any:
    """A graphviz.Digraph of `graphs` (default: every graph of the Ir, main graph first)."""
    import graphviz

    graphs = list(ir.graphs.values()) if graphs is None else list(graphs)
    dot = graphviz.Digraph("ir", graph_attr={"compound": "true", "rankdir": "TB", "fontname": "Helvetica",
                                             "nodesep": "0.3", "ranksep": "0.4"},
                           node_attr={"fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "8"})
    drawn = {g.id: k for k, g in enumerate(graphs)}
    for k, g in enumerate(graphs):
        with dot.subgraph(name=f"cluster_g{k}") as c:
            c.attr(label=f"Graph : {g.id or 'main'}", style="rounded", color="gray40", fontsize="12")
            c.node(f"g{k}_anchor", label="", shape="point", style="invis")
            _Drawer(c, g, expand_fused).draw()
    for g in graphs:
        for op in g.ops:
            if op.called is not None and op.called.id in drawn:
                k = drawn[op.called.id]
                dot.edge(f"op{op.id}", f"g{k}_anchor", lhead=f"cluster_g{k}", style="dotted", color="blue",
                         fontcolor="blue", label="calls")
    if legend:
        dot.node("legend", label=LEGEND, shape="note", fontsize="8", color="gray60")
    return dot


def graph_svg(ir: Ir, graphs: list[Graph] | None = None) -> str:
    """SVG text of the drawing (needs Graphviz's `dot` program: apt-get install graphviz)."""
    return to_dot(ir, graphs).pipe(format="svg").decode()


def repr_svg(ir: Ir, graphs: list[Graph] | None = None) -> str | None:
    """For Jupyter's `_repr_svg_`: None (so Jupyter shows the text repr) when Graphviz is not installed."""
    try:
        return graph_svg(ir, graphs)
    except (ImportError, OSError):  # graphviz.ExecutableNotFound is a RuntimeError subclass too
        return None
    except RuntimeError as e:
        if type(e).__name__ == "ExecutableNotFound":
            return None
        raise
