"""Parallel regions through the OpenMP runtime (GCC's libgomp; why: docs/threads.md).

`parallel(...)` outlines a work function `work(captured..., tid, nt)` and calls it once per thread
of an OpenMP team: `GOMP_parallel(thunk, &captured, threads, 0)`, where the thunk unpacks the
captured values and asks the runtime for its thread number and the team size. libgomp keeps its
worker threads between regions, so a region costs a wake-up, not a thread start. With a thread
count of 1 (rt->num_threads == 1, or inside a region: graphs called from a call group) the work
function is called directly, without the runtime.

Work is always cut into pieces whose bounds depend only on the program (fixed-size blocks, tiles
or calls), never on the thread count; the count only decides which thread runs which pieces. Every
piece runs the same machine code whichever thread runs it, and partial results are combined in a
fixed order after the region, so results are bit-identical for every thread count.

On top of `parallel`: `split_loop` (a loop body over [0, n) in vector-aligned blocks),
`split_ranges` (MultiKernel groups laid end to end), `split_calls` (independent graph calls, each
thread with its own workspace lane) and `share` (a thread's contiguous share of n pieces).
"""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from .loops import c64
from .types import I32, I64, PTR

I1 = ir.IntType(1)
VOID = ir.VoidType()
# the outlined function libgomp calls on every thread: void fn(void *data)
THUNK = ir.FunctionType(VOID, [PTR])

# Emits a work function's body: (builder, captured values, thread number, team size), both i64.
Emit = Callable[[ir.IRBuilder, list[ir.Value], ir.Value, ir.Value], None]


def _decl(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, fnty, name)


def parallel(module: ir.Module, b: ir.IRBuilder, threads: ir.Value, captured: list[ir.Value], emit: Emit,
             name: str) -> None:
    """Run emit's code on every thread of a team of `threads` (i32; 0 = the runtime's default) and
    return when all have finished. `captured` are the caller's values the work needs."""
    work = ir.Function(module, ir.FunctionType(VOID, [v.type for v in captured] + [I64, I64]), name + ".work")
    work.linkage = "internal"
    wb = ir.IRBuilder(work.append_basic_block("entry"))
    emit(wb, list(work.args[:len(captured)]), work.args[-2], work.args[-1])
    wb.ret_void()

    argty = ir.LiteralStructType([v.type for v in captured] or [PTR])
    thunk = ir.Function(module, THUNK, name + ".omp")
    thunk.linkage = "internal"
    tb = ir.IRBuilder(thunk.append_basic_block("entry"))
    sp = tb.bitcast(thunk.args[0], argty.as_pointer())
    vals = [tb.load(tb.gep(sp, [ir.Constant(I32, 0), ir.Constant(I32, k)])) for k in range(len(captured))]
    tid = tb.call(_decl(module, "omp_get_thread_num", ir.FunctionType(I32, [])), [])
    nt = tb.call(_decl(module, "omp_get_num_threads", ir.FunctionType(I32, [])), [])
    tb.call(work, vals + [tb.zext(tid, I64), tb.zext(nt, I64)])
    tb.ret_void()

    one = b.icmp_signed("==", threads, ir.Constant(I32, 1))
    with b.if_else(one) as (direct, team):
        with direct:
            b.call(work, list(captured) + [c64(0), c64(1)])
        with team:
            entry = ir.IRBuilder(b.function.entry_basic_block)
            entry.position_at_start(b.function.entry_basic_block)
            st = entry.alloca(argty)  # in the entry block: a region inside a loop must not grow the stack
            for k, v in enumerate(captured):
                b.store(v, b.gep(st, [ir.Constant(I32, 0), ir.Constant(I32, k)]))
            gomp = _decl(module, "GOMP_parallel", ir.FunctionType(VOID, [THUNK.as_pointer(), PTR, I32, I32]))
            b.call(gomp, [thunk, b.bitcast(st, PTR), threads, ir.Constant(I32, 0)])


def share(b: ir.IRBuilder, n: int | ir.Value, tid: ir.Value, nt: ir.Value) -> tuple[ir.Value, ir.Value]:
    """Thread tid's contiguous share [lo, hi) of n pieces (shares differ by at most one piece)."""
    n = c64(n) if isinstance(n, int) else n
    return b.udiv(b.mul(n, tid), nt), b.udiv(b.mul(n, b.add(tid, c64(1))), nt)


def block_of(outer: int, inner: int) -> int:
    """Outer indices per block of a loop over [0, outer) x inner elements: at least BLOCK_ELEMENTS
    elements, a multiple of 64 outer indices when rows are single elements, so every block but the
    last starts and ends on a vector boundary."""
    rows = max(-(-BLOCK_ELEMENTS // max(inner, 1)), 1)
    return min(-(-rows // 64) * 64 if inner == 1 else rows, max(outer, 1))


# smallest piece of work one thread takes from a split loop (a few microseconds of streaming)
BLOCK_ELEMENTS = 4096


def split_loop(module: ir.Module, b: ir.IRBuilder, threads: ir.Value, body: ir.Function, args: list[ir.Value],
               outer: int, inner: int, name: str) -> None:
    """body(*args, lo, hi, store_uniform=0) over [0, outer) in blocks of block_of(outer, inner) outer
    indices, the blocks shared out among the threads; then body(*args, 0, 0, 1) stores the
    single-element results once."""
    blk = block_of(outer, inner)
    nblocks = -(-outer // blk)

    def emit(wb: ir.IRBuilder, cap: list[ir.Value], tid: ir.Value, nt: ir.Value) -> None:
        lo, hi = share(wb, nblocks, tid, nt)
        lo = wb.mul(lo, c64(blk))
        hi = wb.mul(hi, c64(blk))
        hi = wb.select(wb.icmp_signed("<", hi, c64(outer)), hi, c64(outer))
        with wb.if_then(wb.icmp_signed("<", lo, hi)):
            wb.call(body, cap + [lo, hi, ir.Constant(I1, 0)])

    parallel(module, b, threads, args, emit, name)
    b.call(body, args + [c64(0), c64(0), ir.Constant(I1, 1)])


def split_ranges(module: ir.Module, b: ir.IRBuilder, threads: ir.Value,
                 parts: list[tuple[ir.Function, list[ir.Value], int, int]], name: str) -> None:
    """Loop bodies body(*pointers, lo, hi, store_uniform=0) over outer indices [0, n) of each part
    (body, pointers, n, elements per outer index), their element spaces laid end to end in blocks of
    BLOCK_ELEMENTS and the blocks shared out among the threads; a block boundary inside a part is
    moved up to a whole outer index (a multiple of 64 for flat parts), the same for every thread
    count. The bodies touch disjoint storages (MultiKernel groups). Single-element results are not
    stored here: call body(..., 0, 0, 1) afterwards."""
    total = sum(n * inner for _, _, n, inner in parts)
    nblocks = max(-(-total // BLOCK_ELEMENTS), 1)
    flat: list[ir.Value] = []
    offsets: list[int] = []
    for _, ptrs, _, _ in parts:
        offsets.append(len(flat))
        flat += ptrs

    def emit(wb: ir.IRBuilder, cap: list[ir.Value], tid: ir.Value, nt: ir.Value) -> None:
        blo, bhi = share(wb, nblocks, tid, nt)
        c_lo = wb.mul(blo, c64(BLOCK_ELEMENTS))  # this thread's element range [c_lo, c_hi)
        c_hi = wb.mul(bhi, c64(BLOCK_ELEMENTS))
        at = 0
        for k, (body, ptrs, n, inner) in enumerate(parts):
            lo, hi = (_outer_cut(wb, c, at, n, inner) for c in (c_lo, c_hi))
            with wb.if_then(wb.icmp_signed("<", lo, hi)):
                wb.call(body, cap[offsets[k]:offsets[k] + len(ptrs)] + [lo, hi, ir.Constant(I1, 0)])
            at += n * inner

    parallel(module, b, threads, flat, emit, name)


def _outer_cut(b: ir.IRBuilder, c: ir.Value, start: int, n: int, inner: int) -> ir.Value:
    """Where element position c of the laid-out spaces falls in a part starting at `start` with n
    outer indices of `inner` elements: ceil((c - start) / inner), rounded up to a multiple of 64 for
    flat parts of >= 128 indices, clamped to [0, n]. Monotone in c, so neighbouring threads' ranges
    meet exactly."""
    rel = b.sub(c, c64(start))
    rel = b.select(b.icmp_signed("<", rel, c64(0)), c64(0), rel)
    q = b.sdiv(b.add(rel, c64(inner - 1)), c64(inner))
    if inner == 1 and n >= 128:
        q = b.mul(b.sdiv(b.add(q, c64(63)), c64(64)), c64(64))
    return b.select(b.icmp_signed("<", q, c64(n)), q, c64(n))


def independent_calls(ops: list, start: int, planned: dict[int, tuple[int, int]] | None = None) -> int:
    """How many Call ops from ops[start] on can run concurrently: none writes what another touches,
    none reads another's outputs, and no two touch different storages that the memory plan placed in
    overlapping bytes (liveness-based sharing assumes one op at a time)."""
    planned = planned or {}
    touched: set[int] = set()
    written: set[int] = set()
    produced: set[int] = set()
    ranges: list[tuple[int, int, int]] = []  # (lo, hi, storage) of planned storages the group touches
    k = start
    while k < len(ops) and ops[k].kind == "Call":
        op = ops[k]
        reads = {v.storage for v in op.inputs}
        writes = {op.inputs[i].storage for i in op.modifies}
        outs = {v.storage for v in op.outputs}
        mine = [(*planned[s], s) for s in reads | writes | outs if s in planned]
        if writes & touched or reads & written or reads & produced or outs & touched or any(
                lo < h and l0 < hi and s != t for lo, hi, s in mine for l0, h, t in ranges):
            break
        touched |= reads | writes | outs
        written |= writes | outs
        produced |= outs
        ranges += mine
        k += 1
    return k - start


def split_calls(module: ir.Module, b: ir.IRBuilder, threads: ir.Value, calls: list[tuple[ir.Function, ir.Value]],
                ws: ir.Value, lane_bytes: ir.Value, lanes: int, ctx: ir.Value, ctx_type: ir.Type, threads_field: int,
                weights: list[int], name: str) -> None:
    """Run graph calls fn(args, ws_lane, ctx_lane) for (fn, args) in calls: the calls are cut into
    min(team size, lanes) contiguous parts of about equal weight; part p runs on thread p with the
    workspace lane ws + p * lane_bytes and a copy of the context whose thread count is 1 (a graph
    called here runs its own kernels on its thread). The calls must be independent."""
    mids, acc = [], 0
    weights = [max(w, 1) for w in weights]
    total = sum(weights)
    for w in weights:  # twice each call's weight midpoint: part = mid * parts // (2 * total)
        mids.append(2 * acc + w)
        acc += w
    flat = [ws, lane_bytes, ctx] + [a for _, a in calls]

    def emit(wb: ir.IRBuilder, cap: list[ir.Value], tid: ir.Value, nt: ir.Value) -> None:
        ws_, lane_bytes_, ctx_ = cap[:3]
        nparts = wb.select(wb.icmp_signed("<", nt, c64(lanes)), nt, c64(lanes))
        mine = wb.alloca(ctx_type)
        wb.store(wb.load(ctx_), mine)
        wb.store(ir.Constant(I32, 1), wb.gep(mine, [ir.Constant(I32, 0), ir.Constant(I32, threads_field)]))
        lane = wb.gep(ws_, [wb.mul(tid, lane_bytes_)])
        for k, (fn, _) in enumerate(calls):
            owner = wb.udiv(wb.mul(c64(mids[k]), nparts), c64(2 * total))
            with wb.if_then(wb.icmp_signed("==", owner, tid)):
                wb.call(fn, [cap[3 + k], lane, mine])

    parallel(module, b, threads, flat, emit, name)
