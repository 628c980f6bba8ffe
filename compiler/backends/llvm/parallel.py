"""Two threads for native code: `run_two` runs one list of calls on a new pthread while another runs on
the caller, then joins (or runs both on the caller if no thread can be created). On top of it: a loop
split in halves (`run_split`), groups of independent graph calls (`run_calls_split`) and MultiKernel
groups cut into equal halves (`run_ranges_split`). Loop bodies are `body(p0..pn, lo, hi, store_uniform)`;
the halves run with store_uniform = 0 and a final call with an empty range stores the single-element
results once, after the join.
"""
from __future__ import annotations

from llvmlite import ir

from .loops import c64
from .types import I32, I64, PTR

I1 = ir.IntType(1)


def _decl(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, fnty, name)


def run_split(module: ir.Module, b: ir.IRBuilder, body: ir.Function, args: list[ir.Value], outer: int) -> None:
    """body(*args, lo, hi, store_uniform) over [0, outer): each half on its own thread, then the
    single-element results stored once."""
    mid = (outer // 2 + 63) // 64 * 64 if outer >= 128 else outer // 2  # keep the split vector-aligned
    off = ir.Constant(I1, 0)
    run_two(b, module, [(body, args, [c64(0), c64(mid), off])], [(body, args, [c64(mid), c64(outer), off])],
            body.name + ".thunk")
    b.call(body, args + [c64(0), c64(0), ir.Constant(I1, 1)])


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


def run_calls_split(b: ir.IRBuilder, module: ir.Module, fns: list[ir.Function], arrays: list[ir.Value],
                    ws: ir.Value, ws_copy: ir.Value, ctx: ir.Value, weights: list[int], name: str) -> None:
    """Run graph calls fns[k](arrays[k], ws, ctx): the later part (by weight) on a second thread with its
    own workspace copy."""
    mid = split_point(weights)
    run_two(b, module, [(fns[k], [arrays[k], ws, ctx], []) for k in range(mid)],
            [(fns[k], [arrays[k], ws_copy, ctx], []) for k in range(mid, len(fns))], name)


def split_point(weights: list[int]) -> int:
    """Where to cut a list of jobs so both parts carry about half the total weight (1 <= cut < len)."""
    total, acc, mid = sum(weights), 0, len(weights) - 1
    for k, w in enumerate(weights):
        acc += w
        if acc * 2 >= total:
            mid = k + 1
            break
    return min(max(mid, 1), len(weights) - 1)


def run_ranges_split(b: ir.IRBuilder, module: ir.Module, parts: list[tuple[ir.Function, list[ir.Value], int, int]],
                     name: str) -> None:
    """Run loop bodies body(*pointers, lo, hi, store_uniform=0) over outer indices [0, n) for each part
    (body, pointers, n, elements per outer index), their element spaces laid end to end and cut in two
    halves (at a multiple of 64 inside a flat part): the second half on a new thread. The bodies touch
    disjoint storages (MultiKernel groups). Single-element results are not stored here: call
    body(..., 0, 0, 1) afterwards."""
    half = sum(n * inner for _, _, n, inner in parts) // 2
    first: list[tuple[int, int, int]] = []  # (part, lo, hi) in outer indices
    second: list[tuple[int, int, int]] = []
    at = 0
    for k, (_, _, n, inner) in enumerate(parts):
        cut = min(max(-(-(half - at) // inner), 0), n)
        if 0 < cut < n and inner == 1 and n >= 128:
            cut = min((cut + 63) // 64 * 64, n)
        if cut > 0:
            first.append((k, 0, cut))
        if cut < n:
            second.append((k, cut, n))
        at += n * inner
    def calls(ranges: list[tuple[int, int, int]]) -> list[Job]:
        return [(parts[k][0], parts[k][1], [c64(lo), c64(hi), ir.Constant(I1, 0)]) for k, lo, hi in ranges]
    run_two(b, module, calls(first), calls(second), name)


# a call: (function, pointer arguments, constant arguments after them)
Job = tuple[ir.Function, list[ir.Value], list[ir.Constant]]


def run_two(b: ir.IRBuilder, module: ir.Module, here: list[Job], there: list[Job], name: str) -> None:
    """Run the calls `there` on a new thread while the calls `here` run on this one, then join; if no
    thread can be created, run `there` here afterwards. The two lists must not touch the same memory
    (except reading it)."""
    ptrs = [a for _, args, _ in there for a in args]
    argty = ir.LiteralStructType([PTR] * max(len(ptrs), 1))
    thunk_ty = ir.FunctionType(PTR, [PTR])
    thunk = ir.Function(module, thunk_ty, name)
    thunk.linkage = "internal"
    tb = ir.IRBuilder(thunk.append_basic_block("entry"))
    sp = tb.bitcast(thunk.args[0], argty.as_pointer())
    j = 0
    for fn, args, extra in there:
        loaded = [tb.bitcast(tb.load(tb.gep(sp, [ir.Constant(I32, 0), ir.Constant(I32, j + i)])), a.type)
                  for i, a in enumerate(args)]
        tb.call(fn, loaded + extra)
        j += len(args)
    tb.ret(ir.Constant(PTR, None))
    st = b.alloca(argty)
    for i, a in enumerate(ptrs):
        b.store(b.bitcast(a, PTR), b.gep(st, [ir.Constant(I32, 0), ir.Constant(I32, i)]))
    create = _decl(module, "pthread_create", ir.FunctionType(I32, [I64.as_pointer(), PTR, thunk_ty.as_pointer(), PTR]))
    join = _decl(module, "pthread_join", ir.FunctionType(I32, [I64, PTR.as_pointer()]))
    tid = b.alloca(I64)
    rc = b.call(create, [tid, ir.Constant(PTR, None), thunk, b.bitcast(st, PTR)])
    ok = b.icmp_signed("==", rc, ir.Constant(I32, 0))
    for fn, args, extra in here:
        b.call(fn, args + extra)
    with b.if_else(ok) as (then, otherwise):
        with then:
            b.call(join, [b.load(tid), ir.Constant(PTR.as_pointer(), None)])
        with otherwise:  # no thread: run the rest here
            for fn, args, extra in there:
                b.call(fn, args + extra)
