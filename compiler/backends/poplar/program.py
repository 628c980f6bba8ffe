"""IR -> one C++ source: a build function per IR graph, the main graph's step, and the host run loop.

Layout of the emitted program (read top to bottom):
  helpers            addLinear (poputil::mapTensorLinearly), broadcastTo, initial values, Subgraph, run loop
  build_<graph>()    one per called IR graph: parameter tensors, the graph's ops as PopLibs calls into a
                     program::Sequence, turned into a reusable poplar::Function (graph.addFunction)
  buildMain()        variables initialised from the IR's data, host streams (DataStream FIFOs), the schedule
  main()             device (IPU or IPU Model), Engine, connectStream, engine.run() per iteration, read-back
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import get
from compiler.ops.matmul_epilogue import expand as expand_epilogue
from compiler.ops.multi_kernel import group_kernels

from .kernel import KernelCode, emit_elementwise
from .names import Namer, identifier
from .ops import RULES
from .runtime_cpp import HELPERS, INCLUDES, MAIN
from .scope import Scope, cstr, dims
from .types import PoplarError, host_bytes, host_values, initial_call, ipu_type

INLINE_MAX = 16  # initial values with at most this many elements are written into the source


@dataclass
class Emitted:
    source: str
    data_files: dict[str, bytes] = field(default_factory=dict)  # file name in data/ -> raw bytes
    kernels: list[KernelCode] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def _describe(op: Op) -> str:
    if op.kind == "MultiKernel":
        return (f"{op.label} = one kernel over {len(op.attrs['shapes'])} groups of buffers "
                f"({', '.join(op.attrs.get('members', ()))})")
    if op.kind == "FusedKernel":
        return f"{op.label} = {' + '.join(op.attrs.get('members', ()))}, one pass over {tuple(op.attrs['shape'])}"
    ins = ", ".join(v.name for v in op.inputs)
    return f"{op.label} ({ins}): {get(op.kind).formula}"


def _emit_ops(s: Scope, g: Graph, kernels: list[KernelCode]) -> None:
    for op in g.ops:
        s.blank()
        s.comment(_describe(op))
        if op.kind in RULES:
            RULES[op.kind](s, op)
        elif op.kind == "MultiKernel":  # one kernel per group of buffers, one after another
            kernels.extend(emit_elementwise(s, sub) for sub in group_kernels(op))
        elif op.kind == "MatMulEpilogue":  # prologue kernels, poplin's matmul, then the epilogue kernel
            for sub in expand_epilogue(op):
                if sub.kind == "MatMul":
                    RULES["MatMul"](s, sub)
                else:
                    kernels.append(emit_elementwise(s, sub))
        elif get(op.kind).decompose is not None:
            kernels.append(emit_elementwise(s, op))
        else:
            raise PoplarError(f"{op.label}: " + RULES.missing(op.kind, op.kind))


class _Program:
    def __init__(self, ir: Ir) -> None:
        self.ir = ir
        self.kernels: list[KernelCode] = []
        self.data: dict[str, bytes] = {}
        self.funcs = Namer()  # names of C++ functions and Subgraph variables
        self.graph_var: dict[str, str] = {}
        self.parts: list[str] = []
        self.manifest: dict = {"steps_per_run": ir.num_host_transfers, "variables": [], "streams": [], "graphs": []}

    def order(self) -> list[Graph]:
        """Reachable called graphs, callees before their callers."""
        out: list[Graph] = []

        def visit(g: Graph) -> None:
            for c in g.called_graphs():
                visit(c)
            if g not in out:
                out.append(g)
        visit(self.ir.main)
        return [g for g in out if g is not self.ir.main]

    def initial(self, s: Scope, v: Value, arr: np.ndarray, file_key: str) -> str:
        """`setter<T>(graph, TYPE, shape, values, name)`: literal values, a fill, or a file in data/."""
        host = ipu_type(v.dtype, v.name).host
        flat = np.ascontiguousarray(arr, dtype=v.dtype.numpy).reshape(-1)
        if flat.size <= INLINE_MAX:
            values = "{" + ", ".join(host_values(flat, v.dtype)) + "}"
        elif (flat.view(np.uint8).reshape(flat.size, -1) == flat[:1].view(np.uint8)).all():
            values = f"std::vector<{host}>({flat.size}, {host_values(flat[:1], v.dtype)[0]})"
        else:
            name = f"{file_key}.bin"
            self.data[name] = host_bytes(flat, v.dtype)
            values = f"loadRaw<{host}>(dataDir, {cstr(name)}, {flat.size})"
        return initial_call(v.dtype, dims(v.shape), values, cstr(v.name), v.name)

    def constants(self, s: Scope, g: Graph) -> None:
        consts = [v for v in g.values.values() if v.kind == "constant" and not s.has(v)]
        if consts:
            s.blank()
            s.comment("Constants.")
        for v in consts:
            name = s.fresh(v.name)
            s.stmt(f"Tensor {name} = {self.initial(s, v, self.ir.constants[v.id], 'const_' + name)};")
            s.bind(v, name)

    def callee_params(self, g: Graph) -> list[str]:
        return [f"const Subgraph &{self.graph_var[c.id]}" for c in g.called_graphs()]

    def subgraph(self, g: Graph) -> None:
        var = self.funcs.fresh(g.id)
        self.graph_var[g.id] = var
        s = Scope(g, Namer(set(self.graph_var.values())))
        for c in g.called_graphs():
            s.callees[c.id] = self.graph_var[c.id]
        ins = ", ".join(f"{v.name} {v.dtype.name}{v.shape}" for v in g.inputs) or "none"
        refs = ", ".join(g.inputs[i].name for i in sorted(g.by_ref)) or "none"
        s.comment(f"inputs: {ins}\nby reference (written back by the caller): {refs}")
        s.stmt("Sequence seq;")
        for v in g.inputs:
            name, _ = s.add_linear(v.name, v.dtype, v.shape, f"{g.id}/{v.name}")
            s.bind(v, name)
        self.constants(s, g)
        _emit_ops(s, g, self.kernels)
        s.blank()
        ins_t = ", ".join(s.tensor(v) for v in g.inputs)
        outs_t = ", ".join(s.tensor(v) for v in g.outputs)
        refs_t = ", ".join(s.tensor(g.inputs[i]) for i in sorted(g.by_ref))
        s.stmt(f"return Subgraph{{graph.addFunction(seq), {{{ins_t}}}, {{{outs_t}}}, {{{refs_t}}}}};")
        params = ", ".join(["Graph &graph"] + self.callee_params(g))
        self.parts.append(f"/// IR graph {g.id!r}: {len(g.inputs)} inputs, {len(g.outputs)} outputs, {len(g.ops)} ops.\n"
                          f"Subgraph build_{var}({params}) {{\n" + "\n".join(s.lines) + "\n}\n")
        self.manifest["graphs"].append({"graph": g.id, "function": f"build_{var}"})

    def main_graph(self) -> tuple[str, list[str]]:
        g = self.ir.main
        s = Scope(g, Namer(set(self.graph_var.values())))
        for c in g.called_graphs():
            s.callees[c.id] = self.graph_var[c.id]
        s.stmt("Sequence seq;")
        if self.ir.variables:
            s.blank()
            s.comment("Variables: their initial values are the IR's data; the host reads them back at the end.")
        for vid, arr in self.ir.variables.items():
            v = g.values[vid]
            name = s.fresh(v.name)
            ipu = ipu_type(v.dtype, v.name)
            s.stmt(f"Tensor {name} = {self.initial(s, v, arr, name)};")
            s.stmt(f"readBack(graph, state, {name}, {cstr(name)}, {cstr(v.dtype.name)}, sizeof({ipu.host}));")
            s.bind(v, name)
            self.manifest["variables"].append({"name": v.name, "host_name": name, "dtype": v.dtype.name,
                                               "shape": list(v.shape)})
        streams: list[str] = []
        if self.ir.streams:
            s.blank()
            s.comment("Host streams: FIFOs the host feeds (h2d) or drains (d2h) once per run.")
        for st in self.ir.streams.values():
            ipu = ipu_type(st.spec.dtype, f"stream {st.name}")
            name = s.fresh(f"stream_{st.name}")
            n = st.spec.nelms
            fn = "addHostToDeviceFIFO" if st.direction == "h2d" else "addDeviceToHostFIFO"
            s.stmt(f"DataStream {name} = graph.{fn}({cstr(st.name)}, {ipu.poplar}, {n});")
            s.streams[st.name] = name
            streams.append(f"      {{{cstr(st.name)}, {cstr(st.spec.dtype.name)}, {n}, sizeof({ipu.host}), "
                           f"{'true' if st.direction == 'h2d' else 'false'}, {{}}}},")
            self.manifest["streams"].append({"name": st.name, "direction": st.direction,
                                             "dtype": st.spec.dtype.name, "shape": list(st.spec.shape)})
        self.constants(s, g)
        s.blank()
        s.comment("One step of the program (engine.run(0) executes it once).")
        _emit_ops(s, g, self.kernels)
        s.blank()
        s.stmt("return seq;")
        params = ", ".join(["Graph &graph", "[[maybe_unused]] const std::string &dataDir", "std::vector<HostTensor> &state"]
                           + self.callee_params(g))
        self.parts.append("/// The main graph: variables, host streams and the schedule of one step.\n"
                          f"Sequence buildMain({params}) {{\n" + "\n".join(s.lines) + "\n}\n")
        build = []
        for c in self.order():
            args = ", ".join(["graph"] + [self.graph_var[x.id] for x in c.called_graphs()])
            build.append(f"  const Subgraph {self.graph_var[c.id]} = build_{self.graph_var[c.id]}({args});")
        args = ", ".join(["graph", "options.dataDir", "state"] + [self.graph_var[c.id] for c in g.called_graphs()])
        build += ["  std::vector<HostTensor> state;", f"  Sequence stepProgram = buildMain({args});"]
        return "\n".join(build), streams


def emit_source(ir: Ir, title: str = "program") -> Emitted:
    """The C++ program for `ir` (already optimised), its data files and the kernels' statements."""
    p = _Program(ir)
    for g in p.order():
        p.subgraph(g)
    build, streams = p.main_graph()
    nvars, nstreams = len(ir.variables), len(ir.streams)
    head = (f"// {title}.cpp: a Poplar program generated by the optgraph compiler (compiler/backends/poplar)\n"
            f"// from an IR with {len(p.order()) + 1} graphs, {nvars} variables and {nstreams} host streams.\n"
            "// Each IR op is one commented block of Poplar / PopLibs calls; edit freely.\n//\n"
            "// Build: cmake -S . -B build && cmake --build build   (after sourcing the Poplar SDK's enable.sh)\n"
            f"// Run:   ./build/{title} [--ipu-model] [--iterations N] [--inputs DIR] [--outputs DIR]\n")
    nht = ir.num_host_transfers
    times = "once" if nht == 1 else f"{nht} times"
    engine = (f"\n  // One engine.run() executes the step {times} (the IR's num_host_transfers, as one PopXL session.run).\n"
              f"  const unsigned stepsPerRun = {nht};\n"
              + ("  Engine engine(graph, Repeat(stepsPerRun, stepProgram));" if nht > 1 else
                 "  Engine engine(graph, stepProgram);"))
    main = MAIN.replace("@BUILD@", build).replace("@ENGINE@", engine)
    main = main.replace("{\n@STREAMS@\n  };", "{\n" + "\n".join(streams) + "\n  };" if streams else "{};")
    source = "\n".join([head, INCLUDES, HELPERS, "// " + "-" * 93, "// The program.\n", *p.parts, main])
    return Emitted(source.replace("\n\n\n", "\n\n"), p.data, p.kernels, p.manifest)


__all__ = ["Emitted", "emit_source", "identifier"]
