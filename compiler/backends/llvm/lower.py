"""Lower a whole Ir to one LLVM module: a function per graph, a kernel per elementwise op.

ABI of the module (see abi.py for the C header):
  int32_t <prefix>_run(void **vars, void **h2d, void **d2h, void *ws, int64_t iterations)
runs the main graph `iterations` times. `vars` holds one pointer per variable (in
`Layout.var_ids` order), `h2d`/`d2h` one pointer per stream (iterations x stream bytes,
in `Layout.h2d`/`Layout.d2h` order), and `ws` is a 64-byte aligned workspace of
`Layout.ws_size` bytes for intermediates.
Subgraphs become `void g(void **args, void *ws)` with args = inputs then outputs;
by-reference inputs are written in place through the caller's pointer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from llvmlite import ir

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import get

from . import special
from .kernels import emit_elementwise
from .parallel import independent_calls, run_calls_split
from .types import I8, I32, I64, PTR

ALIGN = 64
# groups of independent calls touching at least this many elements run on two threads
PARALLEL_MIN_CALL_ELEMENTS = 1 << 16


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Layout:
    prefix: str
    var_ids: list[int]
    var_specs: list
    var_names: list[str]
    h2d: list[str]
    d2h: list[str]
    ws_size: int = 0
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)


class GraphLowering:
    """State while emitting one graph's function: where each storage lives."""

    def __init__(self, mod: "ModuleLowering", g: Graph, fn: ir.Function) -> None:
        self.mod, self.g, self.fn = mod, g, fn
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.ptr: dict[int, ir.Value] = {}
        self.ws: ir.Value | None = None
        self.base = 0
        self.offset = 0

    def slot(self, nbytes: int) -> ir.Value:
        """A 64-byte aligned scratch buffer in this graph's workspace region."""
        at = self.base + self.offset
        self.offset += _align(max(nbytes, 1))
        return self.b.gep(self.ws, [ir.Constant(I64, at)])

    def p(self, v: Value) -> ir.Value:
        try:
            return self.ptr[v.storage]
        except KeyError:
            raise RuntimeError(f"LLVM lowering: no buffer for {v.name!r} (%{v.id}) in graph {self.g.id!r}") from None


class ModuleLowering:
    def __init__(self, irx: Ir, prefix: str = "optc", threads: int = 2) -> None:
        self.ir = irx
        self.threads = threads
        self.prefix = prefix
        self.module = ir.Module(name=prefix)
        var_ids = list(irx.variables)
        vals = [irx.main.values[i] for i in var_ids]
        self.layout = Layout(prefix, var_ids, [v.spec for v in vals], [v.name for v in vals],
                             sorted(n for n, s in irx.streams.items() if s.direction == "h2d"),
                             sorted(n for n, s in irx.streams.items() if s.direction == "d2h"))
        self.graph_fns: dict[str, ir.Function] = {}
        self._kernels = 0
        self._consts: dict[int, ir.GlobalVariable] = {}
        self.memcpy = self.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        self.memset = self.module.declare_intrinsic("llvm.memset", [PTR, I64])
        # offset of the second thread's workspace copy, known once every graph is laid out
        self.ws_half = ir.GlobalVariable(self.module, I64, f"{prefix}_ws_half")
        self.ws_half.linkage = "internal"

    # ------------------------------------------------------------- building
    def build(self) -> ir.Module:
        graphs = self.ir.reachable_graphs()
        for k, g in enumerate(graphs):
            if g is self.ir.main:
                continue
            fnty = ir.FunctionType(ir.VoidType(), [PTR.as_pointer(), PTR])
            fn = ir.Function(self.module, fnty, f"{self.prefix}_graph{k}")
            fn.linkage = "internal"
            self.graph_fns[g.id] = fn
        main_ty = ir.FunctionType(ir.VoidType(), [PTR.as_pointer()] * 3 + [PTR, I64])
        main = ir.Function(self.module, main_ty, f"{self.prefix}_step")
        main.linkage = "internal"
        for g in graphs:
            self._define(g, main if g is self.ir.main else self.graph_fns[g.id])
        self._define_run(main)
        half = _align(self.layout.ws_size)
        self.ws_half.initializer = ir.Constant(I64, half)
        self.ws_half.global_constant = True
        self.layout.ws_size = 2 * half  # a copy for the second thread of parallel call groups
        return self.module

    def _define_run(self, step: ir.Function) -> None:
        from .loops import for_range

        fnty = ir.FunctionType(I32, [PTR.as_pointer()] * 3 + [PTR, I64])
        fn = ir.Function(self.module, fnty, f"{self.prefix}_run")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        with for_range(b, fn.args[4], "it") as it:
            b.call(step, [fn.args[0], fn.args[1], fn.args[2], fn.args[3], it])
        b.ret(ir.Constant(I32, 0))

    def kernel_name(self) -> str:
        self._kernels += 1
        return f"{self.prefix}_kernel{self._kernels}"

    def const_ptr(self, b: ir.IRBuilder, v: Value) -> ir.Value:
        gv = self._consts.get(v.id)
        if gv is None:
            data = np.ascontiguousarray(self.ir.constants[v.id]).reshape(-1).view(np.uint8)
            arr_t = ir.ArrayType(I8, max(len(data), 1))
            gv = ir.GlobalVariable(self.module, arr_t, f"{self.prefix}_const{v.id}")
            gv.global_constant = True
            gv.linkage = "internal"
            gv.align = ALIGN
            gv.initializer = ir.Constant(arr_t, bytearray(data.tobytes()) or bytearray(1))
            self._consts[v.id] = gv
        return b.bitcast(gv, PTR)

    def _define(self, g: Graph, fn: ir.Function) -> None:
        gl = GraphLowering(self, g, fn)
        b = gl.b
        is_main = g is self.ir.main
        gl.ws = fn.args[3] if is_main else fn.args[1]
        gl.base = self.layout.ws_size
        slot = gl.slot
        modified = {op.inputs[i].storage for op in g.ops for i in op.modifies}
        if is_main:
            for k, vid in enumerate(self.layout.var_ids):
                v = g.values[vid]
                gl.ptr[v.storage] = b.load(b.gep(fn.args[0], [ir.Constant(I64, k)]))
        else:
            for i, v in enumerate(g.inputs):
                p = b.load(b.gep(fn.args[0], [ir.Constant(I64, i)]))
                if i not in g.by_ref and v.storage in modified:  # call by value: never write the caller's copy
                    local = slot(v.spec.nbytes)
                    self.copy(b, local, p, v.spec.nbytes)
                    p = local
                gl.ptr[v.storage] = p
        for v in g.values.values():
            if v.kind == "constant":
                gl.ptr[v.storage] = self.const_ptr(b, v)
        plan = g.info.get("memory_plan")
        if plan:  # liveness-based offsets from the memory_plan pass; scratch slots go after its peak
            planned_base = gl.base + gl.offset
            gl.offset += _align(plan["peak_bytes"])
            for s, off in plan["offsets"].items():
                if s not in gl.ptr:
                    gl.ptr[s] = b.gep(gl.ws, [ir.Constant(I64, planned_base + off)])
        for op in g.ops:
            for v in op.results:
                if v.version == 0 and v.storage not in gl.ptr:
                    gl.ptr[v.storage] = slot(v.spec.nbytes)
        self.emit_ops(gl, g.ops)
        self.layout.regions[g.id] = (gl.base, gl.offset)
        self.layout.ws_size = gl.base + gl.offset
        if not is_main:
            n_in = len(g.inputs)
            for j, v in enumerate(g.outputs):
                dst = b.load(b.gep(fn.args[0], [ir.Constant(I64, n_in + j)]))
                self.copy(b, dst, gl.p(v), v.spec.nbytes)
        b.ret_void()

    # ------------------------------------------------------------- helpers
    def copy(self, b: ir.IRBuilder, dst: ir.Value, src: ir.Value, nbytes: int | ir.Value) -> None:
        n = ir.Constant(I64, nbytes) if isinstance(nbytes, int) else nbytes
        b.call(self.memcpy, [dst, src, n, ir.Constant(ir.IntType(1), 0)])

    def zero(self, b: ir.IRBuilder, dst: ir.Value, nbytes: int) -> None:
        b.call(self.memset, [dst, ir.Constant(I8, 0), ir.Constant(I64, nbytes), ir.Constant(ir.IntType(1), 0)])

    def emit_ops(self, gl: GraphLowering, ops: list[Op]) -> None:
        k = 0
        while k < len(ops):
            n = independent_calls(ops, k) if self.threads > 1 else 0
            run = ops[k:k + n]
            work = [sum(v.spec.nelms for v in op.inputs) for op in run]
            if n >= 2 and sum(work) >= PARALLEL_MIN_CALL_ELEMENTS:
                arrays = [special.call_args(self, gl, op) for op in run]
                fns = [self.graph_fns[op.called.id] for op in run]  # type: ignore[union-attr]
                ws_copy = gl.b.gep(gl.ws, [gl.b.load(self.ws_half)])
                run_calls_split(gl.b, self.module, fns, arrays, gl.ws, ws_copy, work, self.kernel_name() + ".calls")
                k += n
            else:
                self.emit_op(gl, ops[k])
                k += 1

    def emit_op(self, gl: GraphLowering, op: Op) -> None:
        rule = special.SPECIAL.get(op.kind)
        if rule is not None:
            rule(self, gl, op)
            return
        if get(op.kind).decompose is None:
            raise NotImplementedError(
                f"the LLVM backend has no lowering for {op.label} ({op.kind}); run it with "
                "Session(ir, 'interpreter') or add a rule in compiler/backends/llvm/special.py")
        kfn = emit_elementwise(self.module, op, self.kernel_name(), self.threads)
        seen: list[int] = []
        for v in list(op.inputs) + op.results:
            if v.storage not in seen:
                seen.append(v.storage)
        args = []
        for s in seen:
            v = next(x for x in list(op.inputs) + op.results if x.storage == s)
            args.append(gl.p(v))
        gl.b.call(kfn, args)


def lower(irx: Ir, prefix: str = "optc", threads: int = 2) -> tuple[ir.Module, Layout]:
    m = ModuleLowering(irx, prefix, threads)
    return m.build(), m.layout
