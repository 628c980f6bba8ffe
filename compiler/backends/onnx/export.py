"""IR -> ONNX model: one flat graph for one step of the program (see the package docstring for names)."""
from __future__ import annotations

import json
import numpy as np

try:
    import onnx
except ModuleNotFoundError as e:  # an optional third-party dependency: say what to install
    raise ModuleNotFoundError("ONNX export needs the onnx package: pip install onnx "
                              "(pip install -e '.[test]' installs it)", name="onnx") from e
from onnx import helper, numpy_helper

from compiler.ir import DType, Graph, Ir, Op
from compiler.options import CompileOptions
from compiler.ops import get
from compiler.ops.matmul_epilogue import expand as expand_epilogue
from compiler.ops.multi_kernel import group_kernels

from .builder import Builder
from .elementwise import emit_elementwise
from .rules import RULES, Names

OPSET = 11  # the newest ai.onnx opset PopART's builder accepts
IR_VERSION = 6  # the ONNX IR version of opset 11


def _emit_graph(b: Builder, ir: Ir, g: Graph, names: Names, stores: dict[str, str]) -> None:
    """Nodes of graph g; `names` maps value ids to ONNX tensor names (g's inputs pre-filled)."""
    for v in g.values.values():
        if v.kind == "constant":
            names[v.id] = b.const(ir.constants[v.id], hint="const")
    for op in g.ops:
        if op.kind == "Call":
            _call(b, ir, op, names, stores)
        elif op.kind == "HostLoad":
            names[op.outputs[0].id] = stores[f"h2d:{op.attrs['stream']}"]
        elif op.kind == "HostStore":
            out = stores[f"d2h:{op.attrs['stream']}"]
            if out in b.used_outputs:
                raise NotImplementedError(f"{op.label}: stream {op.attrs['stream']!r} is written twice in one step; "
                                          "the ONNX export gives each device-to-host stream one output")
            b.used_outputs.add(out)
            b.node("Identity", [names[op.inputs[0].id]], out=[out])
        elif op.kind in RULES:
            RULES[op.kind](b, op, names)
        elif op.kind == "MultiKernel":
            for sub in group_kernels(op):
                emit_elementwise(b, sub, names)
        elif op.kind == "MatMulEpilogue":  # the prologues' nodes, the MatMul's, then the epilogue's
            for sub in expand_epilogue(op):
                if sub.kind == "MatMul":
                    RULES["MatMul"](b, sub, names)
                else:
                    emit_elementwise(b, sub, names)
        elif get(op.kind).decompose is not None:
            emit_elementwise(b, op, names)
        else:
            raise NotImplementedError(RULES.missing(f"{op.label} ({op.kind})", op.kind))


def _call(b: Builder, ir: Ir, op: Op, names: Names, stores: dict[str, str]) -> None:
    """Inline the called graph; by-reference inputs come back as the Call's new versions."""
    g = op.called
    assert g is not None
    inner = {v.id: names[x.id] for v, x in zip(g.inputs, op.inputs)}
    _emit_graph(b, ir, g, inner, stores)
    finals = g.final_versions()
    for v, o in zip(g.outputs, op.outputs):
        names[o.id] = inner[v.id]
    for i, nv in op.updates.items():
        names[nv.id] = inner[finals[g.inputs[i].storage].id]


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 2
    while out in taken:
        out = f"{name}__{k}"
        k += 1
    taken.add(out)
    return out


def _check_dtypes(ir: Ir) -> None:
    for g in ir.reachable_graphs():
        for v in g.all_values():
            if v.dtype == DType.bfloat16:
                raise NotImplementedError(f"{v.name!r} in graph {g.id or 'main'!r} is bfloat16, which ONNX opset "
                                          f"{OPSET} (PopART's) cannot express; use float16 or float32")


def to_model(ir: Ir) -> onnx.ModelProto:
    """The ONNX model of one step of `ir` (as given: run the pass pipeline first if wanted)."""
    from . import __doc__ as conventions

    _check_dtypes(ir)
    main = ir.main
    taken: set[str] = set()
    variables, streams = [], []
    for vid in ir.variables:
        v = main.values[vid]
        variables.append({"name": v.name, "value": vid, "input": _unique(v.name, taken), "dtype": v.dtype.name,
                          "shape": list(v.shape)})
    for var in variables:
        var["output"] = _unique(f"{var['input']}__updated", taken)
    for s in ir.streams.values():
        streams.append({"name": s.name, "direction": s.direction, "tensor": _unique(f"stream__{s.name}", taken),
                        "dtype": s.spec.dtype.name, "shape": list(s.spec.shape)})
    b = Builder(taken)
    names: Names = {var["value"]: var["input"] for var in variables}
    stores = {f"{s['direction']}:{s['name']}": s["tensor"] for s in streams}
    _emit_graph(b, ir, main, names, stores)

    inputs = [helper.make_tensor_value_info(var["input"], DType[var["dtype"]].info.onnx, var["shape"])
              for var in variables]
    inits = [numpy_helper.from_array(np.array(ir.variables[var["value"]], order="C"), var["input"])
             for var in variables]
    outputs = []
    finals = main.final_versions()
    for var in variables:
        v0 = main.values[var["value"]]
        last = finals.get(v0.storage, v0)
        if last.id == var["value"]:
            var["output"] = None  # never written: no output
            continue
        b.node("Identity", [names[last.id]], out=[var["output"]])
        outputs.append(helper.make_tensor_value_info(var["output"], last.dtype.info.onnx, var["shape"]))
    for s in streams:
        info = helper.make_tensor_value_info(s["tensor"], DType[s["dtype"]].info.onnx, s["shape"])
        if s["direction"] == "h2d":
            inputs.append(info)
        elif s["tensor"] in b.used_outputs:
            outputs.append(info)
    graph = helper.make_graph(b.nodes, "optgraph_step", inputs, outputs, inits + b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="optgraph",
                              doc_string=(conventions or "").strip())
    model.ir_version = IR_VERSION
    for var in variables:
        del var["value"]
    helper.set_model_props(model, {"optgraph.variables": json.dumps(variables), "optgraph.streams": json.dumps(streams),
                                   "optgraph.steps_per_run": str(ir.num_host_transfers)})
    onnx.checker.check_model(model, full_check=True)
    return model


def lower(ir: Ir, options: CompileOptions) -> onnx.ModelProto:
    """The ONNX model of one step of the optimised `ir` (compiler/driver.py runs the passes first)."""
    return to_model(ir)
