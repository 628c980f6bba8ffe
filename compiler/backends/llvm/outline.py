"""Each distinct kernel once: an op's whole lowering is outlined into a `noinline` function, one per
signature, and graph functions stay flat lists of calls.

Why: LLVM's optimisation pipeline costs time per instruction it sees. A 16-layer MLP lowered op by op (and
inlined) gave one 31k-line step function, although its layers use a handful of kernel shapes. With
one function per signature, compile time grows with the number of distinct kernels; a layer that
repeats an existing shape adds only call instructions.

A signature is everything the lowering rules read: the op kind, roles and attributes (names and
member labels ignored, as in structural hashing), every operand's shape and dtype, which operands
share a storage and with which version offset, the in-place effects, the op's error code (the
status value a failed check stores). The thread count is not part of it: it is a run-time argument
(the context's thread field), so one kernel serves every count. The outlined
function is `void k(i8* s0, ..., i8* sn, i8* scratch, ctx* c)`: one pointer per distinct storage,
then the caller's scratch area (sized by the first lowering) and the context (status, streams).

Each kernel is a module of its own, so that it is optimised, compiled and cached on its own: a program
that shares kernels with an earlier one (another layer count, a changed baked-in hyper-parameter)
reuses their object files from the compile cache (backend.py) and lowers only what is new.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from compiler.ir import Op
from compiler.ir.hashing import _IGNORED_ATTRS, canon

from .kernels import storages_of
from .types import CTX, PTR

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

# ops that are already one call or one memcpy in their graph's function (or read the graph's stream
# tables by name): outlining them would add a call and save nothing
FLAT_KINDS = frozenset({"Call", "HostLoad", "HostStore", "Init", "Reshape", "Identity"})


def signature(m: "ModuleLowering", op: Op) -> tuple:
    """What the emitted code of `op` depends on (ops with equal signatures share one function)."""
    storages = storages_of(op)
    values = list(op.inputs) + op.results
    first: dict[int, int] = {}
    for v in values:
        first[v.storage] = min(first.get(v.storage, v.version), v.version)
    attrs = tuple(sorted((a, canon(x)) for a, x in op.attrs.items() if a not in _IGNORED_ATTRS))
    operands = tuple((v.spec.shape, v.dtype.name, storages.index(v.storage), v.version - first[v.storage])
                     for v in values)
    return (op.kind, op.roles, attrs, len(op.inputs), len(op.outputs), operands, op.modifies,
            tuple(sorted(op.aliases.items())), tuple(sorted(op.updates)), m.error_codes.get(op.id))


def default_name(sig: tuple) -> str:
    """A kernel's symbol: a hash of its signature (the backend adds the compiler version and target,
    backend.kernel_namer, so that a symbol names one object in the compile cache)."""
    return "optk_" + hashlib.sha256(repr(sig).encode()).hexdigest()[:32]


# a reused kernel's object file and scratch bytes per call, or None: lowered and compiled now
Lookup = Callable[[str], "tuple[bytes, int] | None"]


class Outlined:
    """One outlined kernel: its declaration in the caller's module and the scratch bytes each call needs."""

    def __init__(self, fn: ir.Function, scratch: int) -> None:
        self.fn, self.scratch = fn, scratch


class KernelTable:
    """The program's outlined kernels by signature. Each kernel is an external function `optk_<hash>`
    in an ir.Module of its own (`modules`), or, when `lookup` finds it already compiled (the compile
    cache), an object file that is reused without lowering it again (`objects`). The graphs' module
    only declares them; the loader links all objects together."""

    def __init__(self, name_of: Callable[[tuple], str] = default_name, lookup: Lookup | None = None,
                 on_new: Callable[[str, ir.Module], None] | None = None) -> None:
        self.by_signature: dict[tuple, Outlined] = {}
        self.calls = 0
        self.name_of, self.lookup, self.on_new = name_of, lookup, on_new
        self.modules: dict[str, ir.Module] = {}  # symbol -> module of a kernel lowered now
        self.objects: dict[str, bytes] = {}  # symbol -> object file of a reused kernel
        self.scratch: dict[str, int] = {}  # symbol -> scratch bytes per call

    @property
    def distinct(self) -> int:
        return len(self.by_signature)

    def call(self, m: "ModuleLowering", gl: "GraphLowering", op: Op,
             lower_into: Callable[["GraphLowering", Op], None]) -> None:
        """Emit a call to op's kernel from `gl`, lowering the kernel first if its signature is new and
        no compiled object of it can be reused."""
        key = signature(m, op)
        kern = self.by_signature.get(key)
        storages = storages_of(op)
        if kern is None:
            sym = self.name_of(key)
            fnty = ir.FunctionType(ir.VoidType(), [PTR] * (len(storages) + 1) + [CTX.as_pointer()])
            hit = self.lookup(sym) if self.lookup is not None else None
            if hit is not None:
                self.objects[sym], scratch = hit
            else:
                km = m.kernel_module(sym)
                fn = ir.Function(km, fnty, sym)
                fn.attributes.add("noinline")  # stays a call when kernels are linked into one module (emit.py)
                with m.lowering_into(km):
                    inner = type(gl).for_kernel(m, fn, storages)
                    lower_into(inner, op)
                    inner.b.ret_void()
                scratch = inner.offset
                self.modules[sym] = km
                if self.on_new is not None:
                    self.on_new(sym, km)
            self.scratch[sym] = scratch
            kern = self.by_signature[key] = Outlined(ir.Function(m.module, fnty, sym), scratch)
        self.calls += 1
        first = {v.storage: v for v in reversed(list(op.inputs) + op.results)}
        scratch_ptr = gl.slot(kern.scratch) if kern.scratch else gl.ws
        gl.b.call(kern.fn, [gl.p(first[s]) for s in storages] + [scratch_ptr, gl.ctx])
