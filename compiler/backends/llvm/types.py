"""How each dtype lives in LLVM: a storage type in memory and a compute type in registers.

float16 and bfloat16 values are computed as float32 and rounded back after every node,
which is exactly what numpy does for float16 (and ml_dtypes for bfloat16).
"""
from __future__ import annotations

from llvmlite import ir

from compiler.ir import DType

from . import isa

F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
PTR = ir.PointerType(I8)
# what every graph function gets besides its buffers: {int32_t *status; void **h2d; void **d2h;
# int64_t iteration; const optc_runtime *rt (may be NULL); int32_t threads (0 = OpenMP default)}
CTX = ir.LiteralStructType([I32.as_pointer(), PTR.as_pointer(), PTR.as_pointer(), I64, PTR, I32])
CTX_STATUS, CTX_H2D, CTX_D2H, CTX_ITERATION, CTX_RUNTIME, CTX_THREADS = range(6)
# the C struct optc_runtime (runtime/native_runtime.py): {int32_t abi_version, num_threads; void *collective_ctx,
# *collective_hooks}
RUNTIME = ir.LiteralStructType([I32, I32, PTR, PTR])
RT_ABI_VERSION, RT_NUM_THREADS, RT_COLLECTIVE_CTX, RT_COLLECTIVE_HOOKS = range(4)

_INT_BITS = {DType.int8: 8, DType.uint8: 8, DType.int16: 16, DType.uint16: 16, DType.int32: 32,
             DType.uint32: 32, DType.int64: 64, DType.uint64: 64}


def storage_type(dt: DType) -> ir.Type:
    if dt is DType.float16:
        return F16
    if dt is DType.bfloat16:
        return I16
    if dt is DType.float32:
        return F32
    if dt is DType.float64:
        return F64
    if dt is DType.bool:
        return I8
    return ir.IntType(_INT_BITS[dt])


def compute_type(dt: DType) -> ir.Type:
    if dt in (DType.float16, DType.bfloat16, DType.float32):
        return F32
    if dt is DType.float64:
        return F64
    if dt is DType.bool:
        return I1
    return ir.IntType(_INT_BITS[dt])


def _c32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def f16_to_f32(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """float16 (storage) -> float32, exactly: a conversion instruction where the target has one (isa.py's
    f16c), else integer arithmetic that vectorises like it (instead of a libgcc call per element)."""
    if isa.of(b.module).f16c:
        return b.fpext(v, F32)
    h = b.zext(b.bitcast(v, I16), I32)
    sign = b.shl(b.and_(h, _c32(0x8000)), _c32(16))
    o = b.shl(b.and_(h, _c32(0x7FFF)), _c32(13))  # exponent and mantissa in float32's places
    e = b.and_(o, _c32(0x0F800000))
    o = b.add(o, _c32(112 << 23))  # rebias the exponent: 127 - 15
    special = b.add(o, _c32(112 << 23))  # inf / NaN: all-ones exponent (NaN payload kept)
    # zero and subnormals: a float32 whose exponent makes the mantissa bits count in units of 2^-24
    sub = b.bitcast(b.fsub(b.bitcast(b.add(o, _c32(1 << 23)), F32), b.bitcast(_c32(113 << 23), F32)), I32)
    o = b.select(b.icmp_unsigned("==", e, _c32(0x0F800000)), special,
                 b.select(b.icmp_unsigned("==", e, _c32(0)), sub, o))
    return b.bitcast(b.or_(o, sign), F32)


def f32_to_f16(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """float32 -> float16 (storage) rounded to nearest even, overflow to inf, NaN stays a quiet NaN:
    an instruction where the target has one (isa.py's f16c), else integer and float32 arithmetic."""
    if isa.of(b.module).f16c:
        return b.fptrunc(v, F16)
    x = b.bitcast(v, I32)
    sign = b.lshr(b.and_(x, _c32(0x80000000)), _c32(16))
    x = b.and_(x, _c32(0x7FFFFFFF))
    nan = b.or_(_c32(0x7E00), b.lshr(b.and_(x, _c32(0x007FFFFF)), _c32(13)))
    big = b.select(b.icmp_unsigned(">", x, _c32(0x7F800000)), nan, _c32(0x7C00))  # NaN, else inf
    # below 2^-14 (float16 subnormals and zero): adding 0.5 rounds the value into the mantissa bits of
    # 0.5 + v, to nearest even by the float32 addition itself
    magic = (127 - 15 + 23 - 10 + 1) << 23
    small = b.sub(b.bitcast(b.fadd(b.bitcast(x, F32), b.bitcast(_c32(magic), F32)), I32), _c32(magic))
    odd = b.and_(b.lshr(x, _c32(13)), _c32(1))  # ties to even: round up on exactly half only when odd
    normal = b.lshr(b.add(b.add(x, _c32(((15 - 127) << 23) + 0xFFF)), odd), _c32(13))
    o = b.select(b.icmp_unsigned(">=", x, _c32((127 + 16) << 23)), big,
                 b.select(b.icmp_unsigned("<", x, _c32(113 << 23)), small, normal))
    return b.bitcast(b.trunc(b.or_(o, sign), I16), F16)


def bf16_to_f32(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    return b.bitcast(b.shl(b.zext(v, I32), ir.Constant(I32, 16)), F32)


def f32_to_bf16(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """Round to nearest even; NaN stays a (quiet) NaN. Integer arithmetic on every ISA, also where the
    table records bfloat16 instructions (isa.Isa.bf16): AVX512-BF16's VCVTNEPS2BF16 treats subnormal
    inputs as zero, numpy / ml_dtypes round them, and the reference must agree bit for bit."""
    bits = b.bitcast(v, I32)
    lsb = b.and_(b.lshr(bits, ir.Constant(I32, 16)), ir.Constant(I32, 1))
    rounded = b.add(bits, b.add(ir.Constant(I32, 0x7FFF), lsb))
    is_nan = b.fcmp_unordered("uno", v, v)
    quiet = b.or_(bits, ir.Constant(I32, 0x00400000))
    out = b.select(is_nan, quiet, rounded)
    return b.trunc(b.lshr(out, ir.Constant(I32, 16)), I16)


def f64_to_f16_exact(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """float64 -> float16 rounded once to nearest even (as numpy does), without a libgcc helper: round
    to float32 *to odd* first (truncate, then set the sticky bit if inexact), which makes the second
    rounding to float16 exact because float32 keeps more than two extra bits."""
    fabs = b.module.declare_intrinsic("llvm.fabs", [F64])
    t = b.fptrunc(x, F32)
    back = b.fpext(t, F64)
    bits = b.bitcast(t, I32)
    too_big = b.fcmp_ordered(">", b.call(fabs, [back]), b.call(fabs, [x]))
    bits = b.select(too_big, b.sub(bits, ir.Constant(I32, 1)), bits)
    inexact = b.fcmp_ordered("!=", back, x)
    bits = b.select(inexact, b.or_(bits, ir.Constant(I32, 1)), bits)
    return f32_to_f16(b, b.bitcast(bits, F32))


def to_compute(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    """A loaded storage value -> its compute representation."""
    if dt is DType.float16:
        return f16_to_f32(b, v)
    if dt is DType.bfloat16:
        return bf16_to_f32(b, v)
    if dt is DType.bool:
        return b.icmp_unsigned("!=", v, ir.Constant(I8, 0))
    return v


def to_storage(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    if dt is DType.float16:
        return f32_to_f16(b, v)
    if dt is DType.bfloat16:
        return f32_to_bf16(b, v)
    if dt is DType.bool:
        return b.zext(v, I8)
    return v


def round_f16_in_f32(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """float32 -> float16 -> float32 in one step, for ISAs without conversion instructions: the value is
    rounded in place in float32's encoding instead of being packed into 16 bits and unpacked (about a
    quarter of the instructions of that round trip, and bit-identical to it: checked on all 2^32 inputs in
    tests/backends/llvm/test_f16_rounding.py). Normal float16 range: the 13 mantissa bits float16 lacks
    are rounded off to nearest even (a carry may step the exponent; reaching 65536 is overflow to inf);
    float16's subnormal range, below 2^-14, is a fixed step of 2^-24, which adding and subtracting 0.5
    rounds to (float32's step at 0.5 is 2^-24); NaN becomes the quiet NaN the round trip gives."""
    x = b.bitcast(v, I32)
    sign = b.and_(x, _c32(0x80000000))
    a = b.and_(x, _c32(0x7FFFFFFF))
    odd = b.and_(b.lshr(a, _c32(13)), _c32(1))
    normal = b.and_(b.add(a, b.add(odd, _c32(0xFFF))), _c32(0xFFFFE000))
    normal = b.select(b.icmp_unsigned(">=", normal, _c32((127 + 16) << 23)), _c32(0x7F800000), normal)
    half = ir.Constant(F32, 0.5)
    small = b.bitcast(b.fsub(b.fadd(b.bitcast(a, F32), half), half), I32)
    nan = b.and_(b.or_(a, _c32(0x00400000)), _c32(0xFFFFE000))
    o = b.select(b.icmp_unsigned("<", a, _c32(113 << 23)), small, normal)
    o = b.select(b.icmp_unsigned(">", a, _c32(0x7F800000)), nan, o)
    return b.bitcast(b.or_(o, sign), F32)


def round_to(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    """Round a float32 compute value to dt's precision (no-op for full-precision types)."""
    if dt is DType.float16:
        if not isa.of(b.module).f16c:
            return round_f16_in_f32(b, v)
        return f16_to_f32(b, f32_to_f16(b, v))
    if dt is DType.bfloat16:
        return bf16_to_f32(b, f32_to_bf16(b, v))
    return v


def const(dt: DType, value: float | int | bool) -> ir.Constant:
    """A constant in dt's compute type, already rounded to dt (as numpy's asarray(value, dt) does)."""
    import numpy as np

    if dt is DType.bool:
        return ir.Constant(I1, int(bool(value)))
    if dt.is_float:
        return ir.Constant(compute_type(dt), float(np.asarray(value, dtype=dt.numpy).astype(np.float64)))
    return ir.Constant(compute_type(dt), int(np.asarray(value).astype(dt.numpy)))
