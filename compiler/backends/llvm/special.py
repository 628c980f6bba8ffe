"""Lowering rules for ops that are not elementwise, one function per op kind in one registry
(SPECIAL); this file holds the registry, kernel helpers, data movement and calls. matmul.py,
reduce.py and indexed.py add their kinds to the same registry."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from compiler.ir import DType, Op

from ..rules import RuleTable
from .loops import Space, broadcast_strides, c64, nest
from .types import CTX_D2H, CTX_H2D, CTX_ITERATION, PTR, storage_type, to_compute, to_storage

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

SpecialRule = Callable[["ModuleLowering", "GraphLowering", Op], None]
# elementwise kinds become loops over their primitive expression (rules.py); the rest need a rule here
SPECIAL: RuleTable[str, SpecialRule] = RuleTable("LLVM", "compiler/backends/llvm/special.py", elementwise=True)
special = SPECIAL.rule


def typed(b: ir.IRBuilder, p: ir.Value, dt: DType) -> ir.Value:
    return b.bitcast(p, storage_type(dt).as_pointer())


def load(b: ir.IRBuilder, p: ir.Value, idx: ir.Value, dt: DType) -> ir.Value:
    return to_compute(b, b.load(b.gep(p, [idx])), dt)


def store(b: ir.IRBuilder, v: ir.Value, p: ir.Value, idx: ir.Value, dt: DType) -> None:
    b.store(to_storage(b, v, dt), b.gep(p, [idx]))


def kernel(m: "ModuleLowering", nparams: int) -> tuple[ir.Function, ir.IRBuilder]:
    """A new internal function `void k(i8* noalias ...)`; callers pass pointers to distinct storages
    (or read-only ones), see `operands`."""
    fn = ir.Function(m.module, ir.FunctionType(ir.VoidType(), [PTR] * nparams), m.kernel_name())
    fn.linkage = "internal"
    for a in fn.args:
        a.add_attribute("noalias")
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))


def operands(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> list[ir.Value]:
    """Pointers to op's inputs; an input that shares storage with an input the op writes is copied to
    scratch first, so a kernel's `noalias` parameters never overlap memory it writes."""
    written = {op.inputs[i].storage for i in op.modifies}
    out = []
    for i, v in enumerate(op.inputs):
        p = gl.p(v)
        if i not in op.modifies and v.storage in written:
            tmp = gl.slot(v.spec.nbytes)
            m.copy(gl.b, tmp, p, v.spec.nbytes)
            p = tmp
        out.append(p)
    return out


# ------------------------------------------------------------- data movement
@special("Init")
def _init(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    v = op.outputs[0]
    m.zero(gl.b, gl.p(v), v.spec.nbytes)


@special("Reshape", "Identity")
def _reshape(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    src, dst = op.inputs[0], op.outputs[0]
    if src.storage != dst.storage:
        m.copy(gl.b, gl.p(dst), gl.p(src), dst.spec.nbytes)


def _stream_row(m: "ModuleLowering", gl: "GraphLowering", table: int, names: list[str], name: str,
                nbytes: int, op: Op) -> ir.Value:
    """This transfer's batch of stream `name`: table[k] + (iteration * per + transfer) * nbytes, with `per`
    the stream's transfers per iteration."""
    b = gl.b
    k = names.index(name)
    per = (m.layout.h2d_per if table == CTX_H2D else m.layout.d2h_per)[k]
    base = b.load(b.gep(gl.ctx_field(table), [c64(k)]))
    row = b.add(b.mul(gl.ctx_field(CTX_ITERATION), c64(per)), c64(op.attrs.get("transfer", 0)))
    return b.gep(base, [b.mul(row, c64(nbytes))])


@special("HostLoad")
def _host_load(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    v = op.outputs[0]
    src = _stream_row(m, gl, CTX_H2D, m.layout.h2d, op.attrs["stream"], v.spec.nbytes, op)
    m.copy(gl.b, gl.p(v), src, v.spec.nbytes)


@special("HostStore")
def _host_store(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    v = op.inputs[0]
    dst = _stream_row(m, gl, CTX_D2H, m.layout.d2h, op.attrs["stream"], v.spec.nbytes, op)
    m.copy(gl.b, dst, gl.p(v), v.spec.nbytes)


def call_args(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> ir.Value:
    """The pointer array a graph function takes: inputs, then outputs. Where the callee could write a
    buffer it also reads through another input, that other input gets a copy: the interpreter's
    call-by-value semantics. When one storage is passed to several by-reference inputs, the last of
    them writes back (as the interpreter's write-back in input order), so the others get copies."""
    b = gl.b
    callee = op.called
    assert callee is not None
    arr = b.alloca(PTR, size=len(op.inputs) + len(op.outputs))
    last_ref: dict[int, int] = {op.inputs[i].storage: i for i in sorted(callee.by_ref)}
    for i, v in enumerate(op.inputs):
        p = gl.p(v)
        if v.storage in last_ref and last_ref[v.storage] != i:
            tmp = gl.slot(v.spec.nbytes)
            m.copy(b, tmp, p, v.spec.nbytes)
            p = tmp
        b.store(p, b.gep(arr, [c64(i)]))
    for j, v in enumerate(op.outputs):
        b.store(gl.p(v), b.gep(arr, [c64(len(op.inputs) + j)]))
    return arr


@special("Call")
def _call(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    assert op.called is not None
    gl.b.call(m.graph_fns[op.called.id], [call_args(m, gl, op), gl.ws, gl.ctx])


@special("Transpose")
def _transpose(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x, y = op.inputs[0], op.outputs[0]
    perm = op.attrs.get("perm") or tuple(reversed(range(len(x.shape))))
    in_strides = broadcast_strides(x.shape, x.shape)
    fn, b = kernel(m, 2)
    src, dst = typed(b, fn.args[0], x.dtype), typed(b, fn.args[1], y.dtype)
    space = Space.make(y.shape, [tuple(in_strides[p] for p in perm), broadcast_strides(y.shape, y.shape)])
    if y.spec.nelms:
        with nest(b, space) as (i, o):
            b.store(b.load(b.gep(src, [i])), b.gep(dst, [o]))
    b.ret_void()
    gl.b.call(fn, [gl.p(x), gl.p(y)])
