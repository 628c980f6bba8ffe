"""MultiKernel (level 3, passes/fuse_horizontal.py): one elementwise kernel over many groups of buffers.

Each group is lowered as the FusedKernel it stands for (compiler/ops/multi_kernel.group_kernels);
groups with the same sizes, dtypes and buffer-sharing pattern share one kernel function. Groups large
enough to split their own loop over two threads do so one after another; the other groups, which
touch disjoint storages, are divided between the two threads by size when there is enough work.
"""
from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from llvmlite import ir

from compiler.ir import Op
from compiler.ops.multi_kernel import group_kernels

from .kernels import PARALLEL_MIN_ELEMENTS, emit_elementwise, storages_of
from .parallel import run_kernels_split
from .special import special

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

# independent groups touching at least this many elements in all are spread over two threads
PARALLEL_MIN_GROUP_ELEMENTS = 1 << 16


def _signature(sub: Op) -> tuple:
    """What the emitted kernel depends on besides the (shared) expression."""
    values = list(sub.inputs) + sub.results
    params = storages_of(sub)
    return (tuple(sub.attrs["shape"]), tuple((v.spec.shape, v.dtype) for v in values),
            tuple(params.index(v.storage) for v in values), tuple(sorted(sub.aliases.items())))


@special("MultiKernel")
def _multi_kernel(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    fns: dict[tuple, ir.Function] = {}
    small: list[tuple[ir.Function, list[ir.Value]]] = []
    weights: list[int] = []
    for sub in group_kernels(op):
        size = prod(sub.attrs["shape"])
        big = m.threads > 1 and size >= PARALLEL_MIN_ELEMENTS
        key = _signature(sub) + (big,)
        fn = fns.get(key)
        if fn is None:
            fn = fns[key] = emit_elementwise(m.module, sub, m.kernel_name(), m.threads if big else 1)
        seen: dict[int, ir.Value] = {}
        for v in list(sub.inputs) + sub.results:
            seen.setdefault(v.storage, gl.p(v))
        args = list(seen.values())
        if big:
            gl.b.call(fn, args)
        else:
            small.append((fn, args))
            weights.append(sum(v.spec.nelms for v in sub.inputs))
    if m.threads > 1 and len(small) >= 2 and sum(weights) >= PARALLEL_MIN_GROUP_ELEMENTS:
        run_kernels_split(gl.b, m.module, small, weights, m.kernel_name() + ".groups")
    else:
        for fn, args in small:
            gl.b.call(fn, args)
