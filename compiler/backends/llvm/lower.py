"""Lower a whole Ir to one LLVM module: a function per graph, a kernel per op (the C ABI: abi.py).

Every graph becomes `void g(void **args, void *ws, ctx *c)`. For the main graph `args` are the
variables; for a subgraph its inputs then its outputs: by-reference inputs are written in place
through the caller's pointer, by-value inputs the callee modifies are copied first. `ws` is the
calling thread's workspace, in which each graph owns a fixed region (its memory plan, then scratch
slots); `c` carries the status word, the stream tables and the iteration number.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
from llvmlite import ir

from compiler.ir import Graph, Ir, Op, Value
from compiler.ops import get
from compiler.ops.collectives import KINDS as COLLECTIVES
from runtime.artifact import Manifest

from . import collectives, epilogue, indexed, isa, matmul, movement, multi, reduce, special  # noqa: F401  (each registers its op kinds)
from .abi import error_sites, layout_of
from .entry import define_entry
from .kernels import emit_elementwise
from .loops import c64
from .outline import FLAT_KINDS, KernelTable
from .parallel import independent_calls, split_calls
from .target import host_target
from .thresholds import PARALLEL_MIN_CALL_ELEMENTS
from .types import CTX, CTX_STATUS, CTX_THREADS, I8, I32, I64, PTR

ALIGN = 64
# the most workspace lanes (threads running graph calls of one group at once) a program provides
MAX_CALL_LANES = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class GraphLowering:
    """State while emitting one graph's function: where each storage lives."""

    def __init__(self, mod: "ModuleLowering", g: Graph, fn: ir.Function) -> None:
        self.mod, self.g, self.fn = mod, g, fn
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.args, self.ws, self.ctx = fn.args
        self.ptr: dict[int, ir.Value] = {}
        self.planned: dict[int, tuple[int, int]] = {}  # storage -> byte range in this graph's region
        self.base = mod.layout.ws_size
        self.offset = 0

    @classmethod
    def for_kernel(cls, mod: "ModuleLowering", fn: ir.Function, storages: list[int]) -> "GraphLowering":
        """The scope of an outlined kernel `fn(s0..sn, scratch, ctx)` (outline.py): storage k is
        parameter k and scratch slots are offsets from the caller's scratch pointer."""
        self = cls.__new__(cls)
        self.mod, self.g, self.fn = mod, None, fn
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.ptr = dict(zip(storages, fn.args))
        self.ws, self.ctx = fn.args[-2], fn.args[-1]
        self.planned, self.base, self.offset = {}, 0, 0
        return self

    def slot(self, nbytes: int) -> ir.Value:
        """A 64-byte aligned scratch buffer in this graph's workspace region."""
        at = self.base + self.offset
        self.offset += _align(max(nbytes, 1))
        return self.b.gep(self.ws, [c64(at)])

    def p(self, v: Value) -> ir.Value:
        try:
            return self.ptr[v.storage]
        except KeyError:
            raise RuntimeError(f"LLVM lowering: no buffer for {v.name!r} (%{v.id}) in graph {self.g.id!r}") from None

    def ctx_field(self, k: int) -> ir.Value:
        return self.b.load(self.b.gep(self.ctx, [ir.Constant(I32, 0), ir.Constant(I32, k)]))

    def status(self) -> ir.Value:
        """The status word as an i8* kernel argument (kernels store an error code into it)."""
        return self.b.bitcast(self.ctx_field(CTX_STATUS), PTR)

    def threads(self) -> ir.Value:
        """The run-time thread count (i32; 0 = the OpenMP runtime's default)."""
        return self.ctx_field(CTX_THREADS)

    def arg(self, k: int) -> ir.Value:
        return self.b.load(self.b.gep(self.args, [c64(k)]))


GRAPH_FN = ir.FunctionType(ir.VoidType(), [PTR.as_pointer(), PTR, CTX.as_pointer()])


class ModuleLowering:
    def __init__(self, irx: Ir, prefix: str = "optc", target_isa: isa.Isa | None = None,
                 kernels: KernelTable | None = None) -> None:
        self.ir = irx
        self.prefix = prefix
        self.module = ir.Module(name=prefix)
        self.isa = target_isa or host_target().isa
        isa.bind(self.module, self.isa)  # kernels read their parameters from it
        self.layout = layout_of(irx, prefix)
        self.error_codes = {op.id: k + 1 for k, op in enumerate(error_sites(irx))}
        self.graph_fns: dict[str, ir.Function] = {}
        self.collective_graphs = graphs_with_collectives(irx)
        self._kernels = 0
        self._consts: dict[int, ir.GlobalVariable] = {}
        # one function per distinct op signature, each in a module of its own (outline.py)
        self.kernels = kernels if kernels is not None else KernelTable()
        self.memcpy = self.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        self.memset = self.module.declare_intrinsic("llvm.memset", [PTR, I64])
        # call groups: how many threads may run calls at once, and the bytes between their workspace
        # lanes (the called graphs' regions, copied once per lane after the last graph is laid out)
        self.lanes = 1
        self.lane_bytes = ir.GlobalVariable(self.module, I64, f"{prefix}_lane_bytes")
        self.lane_bytes.linkage = "internal"
        self.main_end = 0

    def build(self) -> ir.Module:
        graphs = self.ir.reachable_graphs()
        for k, g in enumerate(graphs):
            name = f"{self.prefix}_step" if g is self.ir.main else f"{self.prefix}_graph{k}"
            self.graph_fns[g.id] = ir.Function(self.module, GRAPH_FN, name)
            self.graph_fns[g.id].linkage = "internal"
            # a graph function is a flat list of kernel calls: nothing in it repays optimisation, and
            # O3 over thousands of calls cost ~17 ms per MLP layer (measured), more than all kernels
            self.graph_fns[g.id].attributes.add("noinline")
            self.graph_fns[g.id].attributes.add("optnone")
        for g in graphs:  # main first: the called graphs' regions follow main's
            self._define(g, self.graph_fns[g.id])
            if g is self.ir.main:
                self.main_end = self.layout.ws_size
        define_entry(self.module, self.prefix, self.graph_fns[self.ir.main.id])
        # lane p of a call group runs with ws + p * lane: a called graph's region at offset r >=
        # main_end then lies at r + p * lane, clear of main's region and of every other lane
        lane = _align(self.layout.ws_size - self.main_end)
        self.lane_bytes.initializer = ir.Constant(I64, lane)
        self.lane_bytes.global_constant = True
        self.layout.ws_size = _align(self.layout.ws_size) + (self.lanes - 1) * lane
        return self.module

    def kernel_name(self) -> str:
        self._kernels += 1
        return f"{self.prefix}_kernel{self._kernels}"

    def kernel_module(self, name: str) -> ir.Module:
        """A module of its own for one outlined kernel (outline.py): compiled and cached apart."""
        module = ir.Module(name=name)
        isa.bind(module, self.isa)
        return module

    @contextmanager
    def lowering_into(self, module: ir.Module) -> Iterator[None]:
        """Rules emit into `module` (their helper functions and intrinsic declarations land there)."""
        saved = self.module, self.memcpy, self.memset
        self.module = module
        self.memcpy = module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        self.memset = module.declare_intrinsic("llvm.memset", [PTR, I64])
        try:
            yield
        finally:
            self.module, self.memcpy, self.memset = saved

    def error_code(self, op: Op) -> ir.Constant:
        return ir.Constant(I32, self.error_codes[op.id])

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
        modified = {op.inputs[i].storage for op in g.ops for i in op.modifies}
        if g is self.ir.main:
            for k, vid in enumerate(self.layout.var_ids):
                gl.ptr[g.values[vid].storage] = gl.arg(k)
        else:
            for i, v in enumerate(g.inputs):
                p = gl.arg(i)
                if i not in g.by_ref and v.storage in modified:  # call by value: never write the caller's copy
                    local = gl.slot(v.spec.nbytes)
                    self.copy(b, local, p, v.spec.nbytes)
                    p = local
                gl.ptr[v.storage] = p
        for v in g.values.values():
            if v.kind == "constant":
                gl.ptr[v.storage] = self.const_ptr(b, v)
        plan = g.memory_plan
        sizes: dict[int, int] = {}
        for v in g.values.values():
            sizes[v.storage] = max(sizes.get(v.storage, 0), v.spec.nbytes)
        if plan:  # liveness-based offsets from the memory_plan pass; scratch slots go after its peak
            planned_base = gl.base + gl.offset
            gl.offset += _align(plan.peak_bytes)
            for s, off in plan.offsets.items():
                if s not in gl.ptr:
                    gl.ptr[s] = b.gep(gl.ws, [c64(planned_base + off)])
                    gl.planned[s] = (off, off + _align(sizes.get(s, 1)))
        for op in g.ops:
            for v in op.results:
                if v.version == 0 and v.storage not in gl.ptr:
                    gl.ptr[v.storage] = gl.slot(v.spec.nbytes)
        self.emit_ops(gl, g.ops)
        self.layout.ws_size = gl.base + gl.offset
        if g is not self.ir.main:
            n_in = len(g.inputs)
            for j, v in enumerate(g.outputs):
                self.copy(b, gl.arg(n_in + j), gl.p(v), v.spec.nbytes)
        b.ret_void()

    # ------------------------------------------------------------- helpers
    def copy(self, b: ir.IRBuilder, dst: ir.Value, src: ir.Value, nbytes: int | ir.Value) -> None:
        n = c64(nbytes) if isinstance(nbytes, int) else nbytes
        b.call(self.memcpy, [dst, src, n, ir.Constant(ir.IntType(1), 0)])

    def zero(self, b: ir.IRBuilder, dst: ir.Value, nbytes: int) -> None:
        b.call(self.memset, [dst, ir.Constant(I8, 0), c64(nbytes), ir.Constant(ir.IntType(1), 0)])

    def emit_ops(self, gl: GraphLowering, ops: list[Op]) -> None:
        k = 0
        while k < len(ops):
            # only the main graph splits call groups: a called graph already runs in a workspace lane
            n = independent_calls(ops, k, gl.planned) if gl.g is self.ir.main else 0
            if any(op.called is not None and op.called.id in self.collective_graphs for op in ops[k:k + n]):
                n = 0  # a replica meets the others at collectives from one thread, in program order
            run = ops[k:k + n]
            work = [sum(v.spec.nelms for v in op.inputs) for op in run]
            if n >= 2 and sum(work) >= PARALLEL_MIN_CALL_ELEMENTS:
                lanes = min(n, MAX_CALL_LANES)
                self.lanes = max(self.lanes, lanes)
                calls = [(self.graph_fns[op.called.id], special.call_args(self, gl, op)) for op in run]  # type: ignore[union-attr]
                split_calls(self.module, gl.b, gl.threads(), calls, gl.ws, gl.b.load(self.lane_bytes), lanes,
                            gl.ctx, CTX, CTX_THREADS, work, self.kernel_name() + ".calls")
                k += n
            elif collectives.all_reduce_run(ops, k) > 1:  # small tensors share one collective call
                n = collectives.all_reduce_run(ops, k)
                collectives.emit_all_reduce_run(self, gl, ops[k:k + n])
                k += n
            else:
                self.emit_op(gl, ops[k])
                k += 1

    def emit_op(self, gl: GraphLowering, op: Op) -> None:
        if op.kind in FLAT_KINDS:
            self.lower_op(gl, op)
        else:
            self.kernels.call(self, gl, op, self.lower_op)

    def lower_op(self, gl: GraphLowering, op: Op) -> None:
        rule = special.SPECIAL.get(op.kind)
        if rule is not None:
            rule(self, gl, op)
            return
        if get(op.kind).decompose is None:
            raise NotImplementedError(special.SPECIAL.missing(f"{op.label} ({op.kind})", op.kind)
                                      + "; or run it with Session(ir, 'interpreter')")
        kfn = emit_elementwise(self.module, op, self.kernel_name())
        seen: dict[int, Value] = {}
        for v in list(op.inputs) + op.results:
            seen.setdefault(v.storage, v)
        gl.b.call(kfn, [gl.p(v) for v in seen.values()] + [gl.threads()])


def graphs_with_collectives(irx: Ir) -> set[str]:
    """Ids of the graphs that run a collective, directly or through calls."""
    out: set[str] = set()
    for g in reversed(irx.reachable_graphs()):  # callees first (callers-first order reversed)
        if any(op.kind in COLLECTIVES or (op.called is not None and op.called.id in out) for op in g.ops):
            out.add(g.id)
    return out


def lower(irx: Ir, prefix: str = "optc", target_isa: isa.Isa | None = None,
          kernels: KernelTable | None = None) -> tuple[ir.Module, Manifest]:
    """The graphs' module (graph functions, entry point, declarations of the outlined kernels) and the
    manifest; the kernels' own modules are in `kernels` (outline.KernelTable)."""
    m = ModuleLowering(irx, prefix, target_isa, kernels)
    return m.build(), m.layout
