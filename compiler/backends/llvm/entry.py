"""The entry point of a compiled program (its C declaration and contract: abi.py).

  int32_t <prefix>_run(void **vars, void **h2d, void **d2h, void *workspace, int64_t iterations,
                       const optc_runtime *rt)

It checks rt's ABI version, fills the context every graph function receives (status word, stream
tables, iteration number, rt, thread count) and runs the step `iterations` times, stopping after the
iteration in which a runtime check failed.
"""
from __future__ import annotations

from llvmlite import ir

from runtime.native_runtime import ABI_VERSION, BAD_ABI_VERSION

from .loops import for_range
from .types import CTX, CTX_ITERATION, CTX_RUNTIME, CTX_THREADS, I32, I64, PTR, RT_ABI_VERSION, RT_NUM_THREADS, RUNTIME


def _field(b: ir.IRBuilder, struct_ptr: ir.Value, k: int) -> ir.Value:
    return b.gep(struct_ptr, [ir.Constant(I32, 0), ir.Constant(I32, k)])


def define_entry(module: ir.Module, prefix: str, step: ir.Function) -> ir.Function:
    fnty = ir.FunctionType(I32, [PTR.as_pointer()] * 3 + [PTR, I64, RUNTIME.as_pointer()])
    fn = ir.Function(module, fnty, f"{prefix}_run")
    vars_, h2d, d2h, ws, iterations, rt = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    status = b.alloca(I32)
    b.store(ir.Constant(I32, 0), status)
    ctx = b.alloca(CTX)
    for k, v in enumerate([status, h2d, d2h]):
        b.store(v, _field(b, ctx, k))
    b.store(b.bitcast(rt, PTR), _field(b, ctx, CTX_RUNTIME))
    threads = b.alloca(I32)
    b.store(ir.Constant(I32, 0), threads)  # rt == NULL: every default
    has_rt = b.icmp_unsigned("!=", rt, ir.Constant(rt.type, None))
    with b.if_then(has_rt):
        bad = b.icmp_signed("!=", b.load(_field(b, rt, RT_ABI_VERSION)), ir.Constant(I32, ABI_VERSION))
        with b.if_then(bad):
            b.ret(ir.Constant(I32, BAD_ABI_VERSION))
        b.store(b.load(_field(b, rt, RT_NUM_THREADS)), threads)
    n = b.load(threads)
    # a negative count is the caller's mistake: treat it as the default rather than as a huge unsigned one
    b.store(b.select(b.icmp_signed("<", n, ir.Constant(I32, 0)), ir.Constant(I32, 0), n), _field(b, ctx, CTX_THREADS))
    stop = fn.append_basic_block("stop")
    with for_range(b, iterations, "it") as it:
        b.store(it, _field(b, ctx, CTX_ITERATION))
        b.call(step, [vars_, ws, ctx])
        go_on = fn.append_basic_block("it.ok")
        b.cbranch(b.icmp_signed("!=", b.load(status), ir.Constant(I32, 0)), stop, go_on)
        b.position_at_end(go_on)
    b.branch(stop)
    b.position_at_end(stop)
    b.ret(b.load(status))
    return fn
