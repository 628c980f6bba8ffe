"""MultiKernel (level 3, passes/fuse_horizontal.py): one elementwise kernel over many groups of buffers.

Each group is the FusedKernel it stands for (compiler/ops/multi_kernel.group_kernels), lowered as a loop
body over a range of its outer index (kernels.emit_body); groups with the same sizes, dtypes and
buffer-sharing pattern share one body. With enough work the groups' element spaces are laid end to
end and cut into fixed-size blocks shared out among the threads (parallel.split_ranges; a group may
be cut inside), so every thread gets the same amount of work whatever the sizes of the groups;
single-element results (an optimizer's step) are stored once per group after the region.
"""
from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from llvmlite import ir

from compiler.ir import Op
from compiler.ops.multi_kernel import group_kernels

from .kernels import emit_body, storages_of
from .loops import c64
from .parallel import split_ranges
from .special import special
from .thresholds import PARALLEL_MIN_GROUP_ELEMENTS

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering

I1 = ir.IntType(1)


def _signature(sub: Op) -> tuple:
    """What the emitted loop body depends on besides the (shared) expression."""
    values = list(sub.inputs) + sub.results
    params = storages_of(sub)
    return (tuple(sub.attrs["shape"]), tuple((v.spec.shape, v.dtype) for v in values),
            tuple(params.index(v.storage) for v in values), tuple(sorted(sub.aliases.items())))


@special("MultiKernel")
def _multi_kernel(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    bodies: dict[tuple, tuple[ir.Function, int]] = {}
    parts: list[tuple[ir.Function, list[ir.Value], int, int]] = []
    for sub in group_kernels(op):
        key = _signature(sub)
        if key not in bodies:
            bodies[key] = emit_body(m.module, sub, m.kernel_name() + ".body")
        body, outer = bodies[key]
        seen: dict[int, ir.Value] = {}
        for v in list(sub.inputs) + sub.results:
            seen.setdefault(v.storage, gl.p(v))
        size = prod(sub.attrs["shape"])
        parts.append((body, list(seen.values()), outer, max(size // max(outer, 1), 1)))
    b = gl.b
    if sum(n * inner for _, _, n, inner in parts) >= PARALLEL_MIN_GROUP_ELEMENTS:
        split_ranges(m.module, b, gl.threads(), parts, m.kernel_name() + ".groups")
        for body, args, _, _ in parts:  # the single-element results, once per group
            b.call(body, args + [c64(0), c64(0), ir.Constant(I1, 1)])
    else:
        for body, args, outer, _ in parts:
            b.call(body, args + [c64(0), c64(outer), ir.Constant(I1, 1)])
