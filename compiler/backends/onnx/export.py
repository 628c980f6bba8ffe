"""IR -> ONNX: a table from primitive to ONNX op, plus rules for the non-elementwise ops."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import expr_for, get
from compiler.ops.nn import norm_axes
from compiler.ops.primitives import Prim

OPSET = 18
_SIMPLE = {Prim.add: "Add", Prim.sub: "Sub", Prim.mul: "Mul", Prim.div: "Div", Prim.neg: "Neg", Prim.sqrt: "Sqrt",
           Prim.exp: "Exp", Prim.log: "Log", Prim.tanh: "Tanh", Prim.erf: "Erf", Prim.abs: "Abs", Prim.sign: "Sign",
           Prim.floor: "Floor", Prim.max: "Max", Prim.min: "Min", Prim.pow: "Pow", Prim.select: "Where",
           Prim.lt: "Less", Prim.le: "LessOrEqual", Prim.gt: "Greater", Prim.ge: "GreaterOrEqual", Prim.eq: "Equal"}


class _Builder:
    def __init__(self, ir: Ir) -> None:
        self.ir = ir
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def fresh(self, hint: str = "t") -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def node(self, op: str, ins: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, **attrs))
        return outs

    def const(self, arr: np.ndarray, hint: str = "c") -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    # ------------------------------------------------------------- graphs
    def graph(self, g: Graph, names: dict[int, str]) -> None:
        """Emit g's ops; `names` maps value ids to ONNX tensor names (inputs pre-filled)."""
        for v in g.values.values():
            if v.kind == "constant":
                names[v.id] = self.const(self.ir.constants[v.id], "const")
        for op in g.ops:
            rule = RULES.get(op.kind)
            if rule is not None:
                rule(self, op, names)
            elif get(op.kind).decompose is not None:
                self.elementwise(op, names)
            else:
                raise NotImplementedError(f"ONNX export has no rule for {op.label} ({op.kind})")

    def elementwise(self, op: Op, names: dict[int, str]) -> None:
        e = expr_for(op)
        vals: list[str] = []
        for n in e.nodes:
            if n.prim is Prim.input:
                vals.append(names[op.inputs[n.attr].id])
            elif n.prim is Prim.const:
                vals.append(self.const(np.asarray(n.attr, n.dtype.numpy), "k"))
            elif n.prim is Prim.cast:
                vals.append(self.node("Cast", [vals[n.args[0]]], to=n.dtype.info.onnx)[0])
            elif n.prim is Prim.ne:
                vals.append(self.node("Not", self.node("Equal", [vals[a] for a in n.args]))[0])
            elif n.prim is Prim.fma:
                a, b, c = (vals[x] for x in n.args)
                vals.append(self.node("Add", [self.node("Mul", [a, b])[0], c])[0])
            else:
                vals.append(self.node(_SIMPLE[n.prim], [vals[a] for a in n.args])[0])
        for v, o in zip(op.results, e.outputs):
            out = vals[o]
            if v.spec.shape != _shape_of(e, o, op):  # broadcast uniform results to their full shape
                out = self.node("Expand", [out, self.const(np.asarray(v.shape, np.int64), "shape")])[0]
            names[v.id] = out


def _shape_of(e: Any, o: int, op: Op) -> tuple:
    """The shape a node evaluates to: the broadcast of the inputs it depends on."""
    deps: set[int] = set()
    todo = [o]
    while todo:
        k = todo.pop()
        n = e.nodes[k]
        if n.prim is Prim.input:
            deps.add(n.attr)
        todo.extend(n.args)
    return tuple(np.broadcast_shapes(*(op.inputs[i].shape for i in deps))) if deps else ()


Rule = Callable[[_Builder, Op, dict[int, str]], None]
RULES: dict[str, Rule] = {}


def rule(*kinds: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for k in kinds:
            RULES[k] = fn
        return fn
    return deco


@rule("MatMul")
def _matmul(b: _Builder, op: Op, names: dict[int, str]) -> None:
    ins = []
    for v, flag in zip(op.inputs, ("transpose_a", "transpose_b")):
        x = names[v.id]
        if op.attrs.get(flag):
            r = len(v.shape)
            x = b.node("Transpose", [x], perm=list(range(r - 2)) + [r - 1, r - 2])[0]
        ins.append(x)
    names[op.outputs[0].id] = b.node("MatMul", ins)[0]


@rule("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare")
def _reduce(b: _Builder, op: Op, names: dict[int, str]) -> None:
    x = op.inputs[0]
    axes = norm_axes(op.kind, len(x.shape), op.attrs.get("axes"))
    keep = int(bool(op.attrs.get("keepdims", False)))
    names[op.outputs[0].id] = b.node(op.kind, [names[x.id], b.const(np.asarray(axes, np.int64), "axes")],
                                     keepdims=keep)[0]


@rule("LambSquare")
def _lamb_square(b: _Builder, op: Op, names: dict[int, str]) -> None:
    x = b.node("Cast", [names[op.inputs[0].id]], to=TensorProto.FLOAT)[0]
    names[op.outputs[0].id] = b.node("ReduceSumSquare", [x], keepdims=0)[0]


@rule("Reshape")
def _reshape(b: _Builder, op: Op, names: dict[int, str]) -> None:
    shape = b.const(np.asarray(op.outputs[0].shape, np.int64), "shape")
    names[op.outputs[0].id] = b.node("Reshape", [names[op.inputs[0].id], shape])[0]


@rule("Transpose")
def _transpose(b: _Builder, op: Op, names: dict[int, str]) -> None:
    r = len(op.inputs[0].shape)
    perm = list(op.attrs.get("perm") or reversed(range(r)))
    names[op.outputs[0].id] = b.node("Transpose", [names[op.inputs[0].id]], perm=perm)[0]


@rule("Softmax")
def _softmax(b: _Builder, op: Op, names: dict[int, str]) -> None:
    names[op.outputs[0].id] = b.node("Softmax", [names[op.inputs[0].id]], axis=int(op.attrs.get("axis", -1)))[0]


@rule("Init")
def _init(b: _Builder, op: Op, names: dict[int, str]) -> None:
    v = op.outputs[0]
    names[v.id] = b.const(np.zeros(v.shape, v.dtype.numpy), "zeros")


@rule("NlllWithSoftmaxGradDirect")
def _nll(b: _Builder, op: Op, names: dict[int, str]) -> None:
    """loss = -sum(log(p[label] + 1e-7)) / N ; dx = (p - onehot(label)) * loss_grad / N (mean reduction)."""
    probs, labels = op.input("probs"), op.input("labels")
    assert probs is not None and labels is not None
    if op.attrs.get("ignore_index") is not None or op.attrs.get("reduction", "mean") != "mean":
        raise NotImplementedError("ONNX export of nll supports reduction='mean' without ignore_index")
    C = probs.shape[-1]
    n = probs.spec.nelms // C
    p2 = b.node("Reshape", [names[probs.id], b.const(np.asarray([n, C], np.int64), "shape")])[0]
    lab = b.node("Reshape", [b.node("Cast", [names[labels.id]], to=TensorProto.INT64)[0],
                             b.const(np.asarray([n], np.int64), "shape")])[0]
    onehot = b.node("OneHot", [lab, b.const(np.asarray(C, np.int64), "depth"),
                               b.const(np.asarray([0, 1], np.float32), "values")], axis=-1)[0]
    picked = b.node("ReduceSum", [b.node("Mul", [p2, onehot])[0], b.const(np.asarray([1], np.int64), "ax")],
                    keepdims=0)[0]
    logs = b.node("Log", [b.node("Add", [picked, b.const(np.asarray(1e-7, np.float32))])[0]])[0]
    total = b.node("ReduceSum", [logs, b.const(np.asarray([0], np.int64), "ax")], keepdims=0)[0]
    loss = b.node("Div", [b.node("Neg", [total])[0], b.const(np.asarray(n, np.float32))])[0]
    lg = op.input("loss_grad")
    scale = names[lg.id] if lg is not None else b.const(np.asarray(op.attrs.get("loss_grad", 1.0), np.float32))
    coef = b.node("Div", [b.node("Cast", [scale], to=TensorProto.FLOAT)[0], b.const(np.asarray(n, np.float32))])[0]
    dx = b.node("Mul", [b.node("Sub", [p2, onehot])[0], coef])[0]
    names[op.outputs[0].id] = loss
    names[op.outputs[1].id] = b.node("Reshape", [dx, b.const(np.asarray(probs.shape, np.int64), "shape")])[0]


@rule("Call")
def _call(b: _Builder, op: Op, names: dict[int, str]) -> None:
    """Inline the called graph; by-reference inputs come back as the Call's new versions."""
    g = op.called
    assert g is not None
    inner = {v.id: names[x.id] for v, x in zip(g.inputs, op.inputs)}
    b.graph(g, inner)
    finals = g.final_versions()
    for v, o in zip(g.outputs, op.outputs):
        names[o.id] = inner[v.id]
    for i, nv in op.updates.items():
        names[nv.id] = inner[finals[g.inputs[i].storage].id]


@rule("HostLoad")
def _host_load(b: _Builder, op: Op, names: dict[int, str]) -> None:
    names[op.outputs[0].id] = f"stream__{op.attrs['stream']}"


@rule("HostStore")
def _host_store(b: _Builder, op: Op, names: dict[int, str]) -> None:
    b.nodes.append(helper.make_node("Identity", [names[op.inputs[0].id]], [f"stream__{op.attrs['stream']}"]))


def _info(name: str, v: Any) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, v.dtype.info.onnx, list(v.shape))


def to_model(ir: Ir) -> onnx.ModelProto:
    if ir.num_host_transfers != 1:
        raise NotImplementedError("ONNX export supports num_host_transfers == 1 (one step per model run)")
    b = _Builder(ir)
    names: dict[int, str] = {}
    inputs, outputs = [], []
    main = ir.main
    for vid in ir.variables:
        v = main.values[vid]
        names[v.id] = v.name
        inputs.append(_info(v.name, v))
    for s in ir.streams.values():
        if s.direction == "h2d":
            inputs.append(helper.make_tensor_value_info(f"stream__{s.name}", s.spec.dtype.info.onnx, list(s.spec.shape)))
    b.graph(main, names)
    finals = main.final_versions()
    for vid in ir.variables:
        v = main.values[vid]
        last = finals[v.storage]
        if last is not v:
            b.nodes.append(helper.make_node("Identity", [names[last.id]], [f"{v.name}__updated"]))
            outputs.append(_info(f"{v.name}__updated", v))
    for s in ir.streams.values():
        if s.direction == "d2h":
            outputs.append(helper.make_tensor_value_info(f"stream__{s.name}", s.spec.dtype.info.onnx, list(s.spec.shape)))
    graph = helper.make_graph(b.nodes, "optgraph", inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              doc_string=__doc__ or "", producer_name="optgraph")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def export(ir: Ir, path: str | Path, options: Any = None) -> onnx.ModelProto:
    """Write the program (after the pass pipeline at options.level, default 0: as built) as an ONNX model."""
    from compiler.driver import CompileOptions, optimise

    opts = options or CompileOptions(level=0)
    model = to_model(optimise(ir, opts))
    onnx.save(model, str(path))
    return model


__all__ = ["export", "to_model", "Value"]
