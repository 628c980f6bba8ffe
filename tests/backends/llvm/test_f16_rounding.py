"""float16 rounding of float32 values on ISAs without conversion instructions (x86-64-v2): the one-step
rounding in float32's encoding (types.round_f16_in_f32) against the float16 round trip it replaces
(f32_to_f16 then f16_to_f32, the integer sequences) and numpy, bit for bit. The fast test covers every
sign and exponent with mantissas around each rounding boundary; the slow one all 2^32 inputs."""
from __future__ import annotations

import ctypes
from dataclasses import replace

import numpy as np
import pytest
from llvmlite import ir

from compiler.backends.llvm import isa, target
from compiler.backends.llvm.jobs import to_object
from compiler.backends.llvm.loops import for_range
from compiler.backends.llvm.types import F32, I64, f16_to_f32, f32_to_f16, round_f16_in_f32
from runtime.cpu_check import host
from runtime.loader import load_object

on_x86 = pytest.mark.skipif(host()[0] != "x86_64", reason="x86-64-v2 code runs natively on an x86-64 host only")
NO_F16C = replace(isa.ISAS["sse4"], f16c=False)


def _compiled(fn) -> tuple[ctypes.CFUNCTYPE, object]:
    """y[i] = fn(x[i]) over n float32 values, vectorised for x86-64-v2 as kernels are."""
    module = ir.Module(name="f16_rounding")
    isa.bind(module, NO_F16C)
    f = ir.Function(module, ir.FunctionType(ir.VoidType(), [F32.as_pointer(), F32.as_pointer(), I64]), "run")
    b = ir.IRBuilder(f.append_basic_block("entry"))
    x, y, n = f.args
    with for_range(b, n) as i:
        b.store(fn(b, b.load(b.gep(x, [i]))), b.gep(y, [i]))
    b.ret_void()
    obj = to_object(str(module), target.target_machine(target.resolve("x86-64-v2")))
    address, engine = load_object(obj, "run")
    return ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(address), engine


@pytest.fixture(scope="module")
def both():
    new = _compiled(round_f16_in_f32)
    old = _compiled(lambda b, v: f16_to_f32(b, f32_to_f16(b, v)))

    def run(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = bits.view(np.float32)
        outs = []
        for fn, _ in (new, old):
            y = np.empty_like(x)
            fn(x.ctypes.data, y.ctypes.data, x.size)
            outs.append(y.view(np.uint32))
        return outs[0], outs[1]
    return run


def _check(run, bits: np.ndarray, with_numpy: bool = True) -> None:
    got, old = run(bits)
    bad = got != old
    assert not bad.any(), (f"{bad.sum()} of {bits.size} differ from the round trip, e.g. "
                           f"{[hex(v) for v in bits[bad][:4]]} -> {[hex(v) for v in got[bad][:4]]}, "
                           f"expected {[hex(v) for v in old[bad][:4]]}")
    if not with_numpy:
        return
    x = bits.view(np.float32)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).astype(np.float32).view(np.uint32)
    num = ~np.isnan(x)
    assert np.array_equal(got[num], want[num])
    assert np.isnan(got[~num].view(np.float32)).all()


@on_x86
def test_every_exponent_around_every_rounding_boundary(both):
    """Both signs, all 256 exponents, mantissas whose 13 low bits sit at and around the tie (with odd and
    even kept bits), plus a stride through all 2^32 patterns."""
    high = np.arange(1 << 19, dtype=np.uint32) << np.uint32(13)  # sign, exponent, the 10 kept mantissa bits
    low = np.uint32([0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF])
    bits = (high[:, None] | low[None, :]).ravel()
    stride = np.arange(0, 1 << 32, 997, dtype=np.uint64).astype(np.uint32)
    _check(both, np.concatenate([bits, stride]))


@on_x86
@pytest.mark.slow  # all 2^32 float32 values (numpy's float16 cast, slow on NaN, only in the test above)
def test_all_float32_values(both):
    step = np.arange(1 << 24, dtype=np.uint32)
    for start in range(0, 1 << 32, step.size):
        _check(both, step + np.uint32(start), with_numpy=False)
