"""Loop-nest helpers for llvmlite: counted loops and strided iteration spaces."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from math import prod
from typing import Iterator

from llvmlite import ir

from .types import I64


@contextmanager
def for_range(b: ir.IRBuilder, count: ir.Value | int, name: str = "i", start: ir.Value | int | None = None
              ) -> Iterator[ir.Value]:
    """for (i = start; i < count; ++i) { body }  — the builder is left after the loop."""
    if isinstance(count, int):
        count = ir.Constant(I64, count)
    if start is None or isinstance(start, int):
        start = ir.Constant(I64, start or 0)
    pre = b.block
    head = b.append_basic_block(f"{name}.head")
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, count), body, done)
    b.position_at_end(body)
    yield i
    nxt = b.add(i, ir.Constant(I64, 1), name=f"{name}.next")
    i.add_incoming(nxt, b.block)
    b.branch(head)
    b.position_at_end(done)


def c64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def broadcast_strides(shape: tuple[int, ...], space: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a row-major tensor of `shape` read across iteration `space` (0 = broadcast)."""
    if len(shape) > len(space):
        raise ValueError(f"shape {shape} has more dims than the iteration space {space}")
    padded = (1,) * (len(space) - len(shape)) + tuple(shape)
    strides, acc = [], 1
    for d in reversed(range(len(space))):
        if padded[d] == space[d]:
            strides.append(acc if space[d] != 1 else 0)
        elif padded[d] == 1:
            strides.append(0)
        else:
            raise ValueError(f"shape {shape} does not broadcast to {space}")
        acc *= padded[d]
    return tuple(reversed(strides))


@dataclass
class Space:
    """An iteration space with per-operand strides, after collapsing dims that can be merged."""

    dims: tuple[int, ...]
    strides: list[tuple[int, ...]]

    @staticmethod
    def make(space: tuple[int, ...], strides: list[tuple[int, ...]]) -> "Space":
        dims = [d for d in space]
        ss = [list(s) for s in strides]
        # drop size-1 dims
        keep = [k for k, d in enumerate(dims) if d != 1]
        dims = [dims[k] for k in keep]
        ss = [[s[k] for k in keep] for s in ss]
        d = len(dims) - 2
        while d >= 0:  # merge dim d into d+1 when every operand walks them as one
            if all(s[d] == s[d + 1] * dims[d + 1] for s in ss):
                dims[d + 1] *= dims[d]
                del dims[d]
                for s in ss:
                    del s[d]
            d -= 1
        return Space(tuple(dims), [tuple(s) for s in ss])

    @property
    def size(self) -> int:
        return prod(self.dims)


@contextmanager
def nest(b: ir.IRBuilder, space: Space, lo: ir.Value | None = None, hi: ir.Value | None = None
         ) -> Iterator[list[ir.Value]]:
    """Loops over `space` (the outermost dim limited to [lo, hi) when given); yields each operand's
    element index at the innermost body."""
    idx = [c64(0) for _ in space.strides]

    def rec(level: int) -> Iterator[list[ir.Value]]:
        if level == len(space.dims):
            yield idx
            return
        bounds = (lo, hi) if level == 0 and lo is not None else (None, space.dims[level])
        with for_range(b, bounds[1], f"d{level}", start=bounds[0]) as i:
            saved = list(idx)
            for k, s in enumerate(space.strides):
                if s[level]:
                    idx[k] = b.add(idx[k], b.mul(i, c64(s[level])) if s[level] != 1 else i)
            yield from rec(level + 1)
            idx[:] = saved

    gen = rec(0)
    yield next(gen)
    for _ in gen:  # pragma: no cover - rec yields exactly once
        pass
