"""Lowering of data movement: Slice (and its view/grad forms), Concat, and the view kinds of
Transpose/Reshape. Each is a strided copy: a loop nest over the output with the input's element
strides (a slice: the input's strides times the step, from the start element)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from compiler.ir import Op
from compiler.ops.movement import slice_dims

from .loops import Space, c64, nest
from .special import SPECIAL, kernel, special, typed

if TYPE_CHECKING:
    from .lower import GraphLowering, ModuleLowering


def _strided_copy(m: "ModuleLowering", gl: "GraphLowering", src: object, dst: object, dtype: object,
                  shape: tuple[int, ...], src_strides: tuple[int, ...], src_offset: int,
                  dst_strides: tuple[int, ...], dst_offset: int) -> None:
    """dst[dst_offset + sum(i*dst_strides)] = src[src_offset + sum(i*src_strides)] over `shape`."""
    if not all(shape):
        return
    fn, b = kernel(m, 2)
    s, d = typed(b, fn.args[0], dtype), typed(b, fn.args[1], dtype)  # type: ignore[arg-type]
    s, d = b.gep(s, [c64(src_offset)]), b.gep(d, [c64(dst_offset)])
    with nest(b, Space.make(shape, [src_strides, dst_strides])) as (i, o):
        b.store(b.load(b.gep(s, [i])), b.gep(d, [o]))
    b.ret_void()
    gl.b.call(fn, [src, dst])


def _row_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a row-major tensor, size-1 dims included (unlike broadcast_strides)."""
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))


@special("Slice", "SliceInplace")
def _slice(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    x, y = op.inputs[0], op.outputs[0]
    dims = slice_dims(x.shape, op.attrs)
    base = _row_major(x.shape)
    strides = tuple(st * d[2] for st, d in zip(base, dims))
    offset = sum(st * d[0] for st, d in zip(base, dims))
    _strided_copy(m, gl, gl.p(x), gl.p(y), x.dtype, y.shape, strides, offset, _row_major(y.shape), 0)


@special("SliceGrad")
def _slice_grad(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    dy, dx = op.inputs[0], op.outputs[0]
    m.zero(gl.b, gl.p(dx), dx.spec.nbytes)
    dims = slice_dims(dx.shape, op.attrs)
    base = _row_major(dx.shape)
    strides = tuple(st * d[2] for st, d in zip(base, dims))
    offset = sum(st * d[0] for st, d in zip(base, dims))
    _strided_copy(m, gl, gl.p(dy), gl.p(dx), dy.dtype, dy.shape, _row_major(dy.shape), 0, strides, offset)


@special("Concat", "ConcatInplace")
def _concat(m: "ModuleLowering", gl: "GraphLowering", op: Op) -> None:
    y = op.outputs[0]
    ax = op.attrs["axis"] % len(y.shape)
    ystr = _row_major(y.shape)
    start = 0
    for x in op.inputs:
        _strided_copy(m, gl, gl.p(x), gl.p(y), x.dtype, x.shape, _row_major(x.shape), 0, ystr, start * ystr[ax])
        start += x.shape[ax]


SPECIAL["TransposeInplace"] = SPECIAL["Transpose"]
SPECIAL["ReshapeInplace"] = SPECIAL["Reshape"]
SPECIAL["Detach"] = SPECIAL["Identity"]
SPECIAL["DetachInplace"] = SPECIAL["Identity"]
