"""Bit-exact semantics of the QPU's add ALU, mul ALU, pack/unpack units and SFU.

PUBLIC API (the emulator core calls only these; the contract is stable)
=======================================================================
All vectors are numpy arrays of the 16 SIMD lanes: values ``uint32[16]`` (raw
32-bit patterns, floats included), flags ``uint8[16]`` (0 or 1).  Every function
is ``@njit`` (emulator/jit.py) and also runs as plain Python.  Outputs are
written into caller-owned arrays; ``out`` may be the same array as an input
(results are computed into locals first).  Nothing raises: reserved codes are
the caller's business (they are rule violations found by the core).

Op codes are the numbers of qpu/isa/ops.py (``ADD_*`` / ``MUL_*`` constants
below are read from that table at import time).

``add_alu(op, a, b, out, carry)``
    Add-ALU op ``op`` (0..31) on ``a``, ``b``: ``out`` = result, ``carry`` = the C
    flag the op produces (vc4asm doc/instructions.html).  For ``nop`` and the
    reserved codes ``out`` and ``carry`` are left untouched: a nop writes
    nothing (the core must not write or set flags for it).
``mul_alu(op, a, b, out, carry)``
    The same for the mul ALU (op 0..7).  ``nop`` leaves ``out``/``carry``
    untouched too; the vc4asm addendum's "secret previous mul result" of a mul
    nop with a destination is for the core to model if it wants to.
``set_flags(out, carry, mask, z, n, c)``
    For each lane with ``mask != 0``: Z = (out == 0), N = bit 31 of out,
    C = carry.  Lanes with mask == 0 keep their flags (addendum: flags only
    update where the condition is true).  The core decides which ALU sets them
    (addendum: the mul ALU only when the add ALU executes nop).
``unpack_a(mode, x, float_consumer, out)``
    Regfile-A unpack (pm = 0, guide Table 6), mode 0..7; ``float_consumer``
    non-zero when an op consuming the value is a float op (``*_FLOAT_IN``).
``unpack_r4(mode, x, out)``
    r4 unpack (pm = 1, guide Table 8 with the 8b/8c/8d errata), mode 0..7.
``pack_a(mode, value, old, float_result, op, a, b, out)``
    Regfile-A pack (pm = 0, Table 7), mode 0..15.  ``value`` is the ALU
    result, ``old`` the register's previous contents (bytes a mode does not
    write keep them), ``float_result`` non-zero when the producing op has a
    float result (``*_FLOAT_OUT``).  ``op`` is the add-ALU op code that
    produced ``value`` and ``a``, ``b`` its operands (the 32s mode needs the
    unwrapped sum); pass ``op = -1`` when the mul ALU produced it.
``pack_mul(mode, value, old, out)``
    Mul-ALU colour pack (pm = 1, Table 9 with errata), mode 0, 3..7: float
    -> 8-bit colour in the selected byte(s); other bytes keep ``old``.  Mode 0
    and the reserved codes copy ``value`` unchanged.
``sfu(op, x, out)``
    SFU result (what r4 receives): ``op`` = the write address 52..55
    (sfu_recip, sfu_recipsqrt, sfu_exp, sfu_log) or 0..3; only its low two
    bits are used.  Reduced precision as measured on hardware (see below).
``rotate_full(x, n, out)`` / ``rotate_quads(x, n, out)``
    Mul-output rotation by ``n`` (element 0 moves to element ``n mod 16``),
    over the whole vector, or within each quad by ``n mod 4`` (addendum
    "Horizontal vector rotation").
``r5_quad(x, out)`` / ``r5_rep(x, out)``
    What r5 receives from a write through regfile A (element 0 of each quad
    copied to the quad) / regfile B (element 0 to all lanes) (addendum
    "Writing to r5").
``ldi_per_element(imm, signed, out)``
    The 16 lane values of a per-element load immediate (guide p.33): bit i
    of ``imm`` is lane i's LS bit, bit 16+i its MS bit; ``signed`` non-zero
    gives -2..1, else 0..3.
``flush_denormals(x, out)``
    Float patterns with exponent 0 (denormals, -0) -> +0, other words unchanged.

Float model in one line: IEEE binary32 with denormals and -0 read as +0, exponent-255
patterns (inf and NaN alike) read as infinities of their sign, round toward zero, tiny
results +0; see the block comment below for sources and the exact corner cases.

Constants: ``ADD_FLOAT_IN``/``ADD_FLOAT_OUT`` (uint8[32]) and
``MUL_FLOAT_IN``/``MUL_FLOAT_OUT`` (uint8[8]): 1 when the op reads / produces
floats (from ops.py ``in_kind``/``out_kind``); ``ADD_VALID``/``MUL_VALID``:
1 for defined op codes.  ``SFU_RECIP``..``SFU_LOG`` = 0..3.
"""

from __future__ import annotations

import math

import numpy as np

from qpu.isa.ops import ADD_OPS, ADD_OPS_BY_NAME, MUL_OPS, MUL_OPS_BY_NAME, Kind
from qpu.isa.packing import PACK_A_BY_TEXT, PACK_A_MODES, PACK_MUL_MODES, UNPACK_BY_TEXT
from qpu.isa.registers import NAMES, Space

from .jit import HAVE_NUMBA, njit

# Lane values as wide signed integers: int64 under numba (int() of a uint32 stays uint32 there,
# and uint/int mixes turn into floats), Python int in plain mode (no overflow, faster).
_lane = np.int64 if HAVE_NUMBA else int

# ---------------------------------------------------------------------------------------------
# Model summary and sources (details at each function).
#
# Floats ("Section 3: QPU Instruction Set - no inf, nan, denormal support" of the vc4asm
# addendum, refined by the hardware notes in doe300/VC4C src/asm/OpCodes.cpp and
# src/intrinsics/Operators.h, whose author tested on a Pi):
#   * inputs with exponent 0 (zero, denormal, -0) are +0;
#   * inputs with exponent 255 are infinities of their sign, whatever the mantissa: the QPU
#     has no NaN ("0.0 + NaN = +Inf"); results never have a NaN pattern;
#   * fadd/fsub/fmul/itof round toward zero (VC4C's emulator "truncate to zero"; VC4CL reports
#     the device as round-to-zero only).  A finite result beyond FLT_MAX is +-FLT_MAX, as IEEE
#     round-toward-zero gives (not measured: no source says);
#   * results below 2**-126 and all zero results are +0 (VC4C: "denorms seem to be always
#     flushed to +0.0");
#   * inf + -inf gives the infinity of the second operand (VC4C: with NaN operands "the sign
#     of the NaN is taken", second operand first; fsub negates it); 0 * inf = +0 (VC4C:
#     "multiplication with zero beats any NaN/Inf").
#   * fmin/fmax/fminabs/fmaxabs select an operand's bits (no flush); the order is
#     -NaN < -Inf < ... < +Inf < +NaN (VC4C "NaN > Inf"), +0 == -0, and two zero/denormal
#     operands compare by magnitude (VC4C: "for subnormal, the min/max calculation is for
#     some reason done on the absolute value").
# C flags: vc4asm doc/instructions.html "Opcodes" table (add: unsigned carry; sub: a < b
# unsigned; min/max/fmin/fmax/...abs: a > b; shl/shr/asr: last bit shifted out; fadd/fsub:
# result > 0 incl. +NaN patterns; all other ops 0).  Where VC4C differs it is noted.
# ---------------------------------------------------------------------------------------------


def _add(name: str) -> int:
    return ADD_OPS_BY_NAME[name].code


def _mul(name: str) -> int:
    return MUL_OPS_BY_NAME[name].code


# Op codes, read from qpu/isa/ops.py (numba freezes module-level ints as constants).
ADD_NOP, ADD_FADD, ADD_FSUB, ADD_FMIN, ADD_FMAX = (_add(n) for n in ("nop", "fadd", "fsub", "fmin", "fmax"))
ADD_FMINABS, ADD_FMAXABS, ADD_FTOI, ADD_ITOF = (_add(n) for n in ("fminabs", "fmaxabs", "ftoi", "itof"))
ADD_ADD, ADD_SUB, ADD_SHR, ADD_ASR, ADD_ROR, ADD_SHL = (_add(n) for n in ("add", "sub", "shr", "asr", "ror", "shl"))
ADD_MIN, ADD_MAX, ADD_AND, ADD_OR, ADD_XOR = (_add(n) for n in ("min", "max", "and", "or", "xor"))
ADD_NOT, ADD_CLZ, ADD_V8ADDS, ADD_V8SUBS = (_add(n) for n in ("not", "clz", "v8adds", "v8subs"))
MUL_NOP, MUL_FMUL, MUL_MUL24, MUL_V8MULD = (_mul(n) for n in ("nop", "fmul", "mul24", "v8muld"))
MUL_V8MIN, MUL_V8MAX, MUL_V8ADDS, MUL_V8SUBS = (_mul(n) for n in ("v8min", "v8max", "v8adds", "v8subs"))
assert (MUL_V8MULD, MUL_V8MIN, MUL_V8MAX, MUL_V8ADDS, MUL_V8SUBS) == (3, 4, 5, 6, 7)  # _mul_op's range test


def _kind_table(ops: dict, size: int, attr: str) -> np.ndarray:
    table = np.zeros(size, np.uint8)
    for code, info in ops.items():
        table[code] = 1 if getattr(info, attr) is Kind.FLOAT else 0
    return table


ADD_FLOAT_IN = _kind_table(ADD_OPS, 32, "in_kind")
ADD_FLOAT_OUT = _kind_table(ADD_OPS, 32, "out_kind")
MUL_FLOAT_IN = _kind_table(MUL_OPS, 8, "in_kind")
MUL_FLOAT_OUT = _kind_table(MUL_OPS, 8, "out_kind")
ADD_VALID = np.array([1 if c in ADD_OPS else 0 for c in range(32)], np.uint8)
MUL_VALID = np.array([1 if c in MUL_OPS else 0 for c in range(8)], np.uint8)

# SFU write addresses 52..55 (qpu/isa/registers.py); the low two bits select the function.
SFU_RECIP = NAMES[Space.WRITE_A]["sfu_recip"] & 3
SFU_RECIPSQRT = NAMES[Space.WRITE_A]["sfu_recipsqrt"] & 3
SFU_EXP = NAMES[Space.WRITE_A]["sfu_exp"] & 3
SFU_LOG = NAMES[Space.WRITE_A]["sfu_log"] & 3
assert (SFU_RECIP, SFU_RECIPSQRT, SFU_EXP, SFU_LOG) == (0, 1, 2, 3)

# Unpack codes (qpu/isa/packing.py; identical numbering for regfile A and r4).
UNPACK_NOP = 0
UNPACK_16A, UNPACK_16B, UNPACK_8DR = UNPACK_BY_TEXT["16a"], UNPACK_BY_TEXT["16b"], UNPACK_BY_TEXT["8dr"]
UNPACK_8A = UNPACK_BY_TEXT["8a"]  # 8a..8d are UNPACK_8A + byte index
assert [UNPACK_BY_TEXT[t] for t in ("8a", "8b", "8c", "8d")] == [UNPACK_8A + i for i in range(4)]

# Regfile-A pack modes as arrays indexed by code: which byte(s) / half they write, saturation.
PACK_A_32S = PACK_A_BY_TEXT["32s"]
_PACK_A_BYTE = np.array([PACK_A_MODES[c].byte_lane for c in range(16)], np.int64)
_PACK_A_HALF = np.array([PACK_A_MODES[c].half for c in range(16)], np.int64)
_PACK_A_SAT = np.array([1 if PACK_A_MODES[c].saturate else 0 for c in range(16)], np.int64)
# Mul colour pack: byte written per code, -1 for "no pack" and the reserved codes.
_PACK_MUL_BYTE = np.array([PACK_MUL_MODES[c].byte_lane if c in PACK_MUL_MODES else -1 for c in range(16)],
                          np.int64)

# 2**(e - 150) for each float32 exponent field e: a normal pattern's value is
# (mantissa | 1 << 23) * _POW2[e] (exact in double).
_POW2 = np.array([2.0 ** (e - 150) for e in range(256)], np.float64)

_SIGN = 0x80000000
_MAG = 0x7FFFFFFF
_INF = 0x7F800000
_FLT_MAX = 0x7F7FFFFF
_U32 = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Scalar helpers (Python ints in plain mode, int64 under numba).  Floats are handled through
# their bit patterns and exact double arithmetic, so no array views or host rounding modes.
# ---------------------------------------------------------------------------------------------

@njit
def _signed(x: int) -> int:
    """A uint32 pattern as a signed 32-bit integer."""
    return x - ((x >> 31) << 32)


@njit
def _as_float(bits: int) -> float:
    """The value the float ALUs read: exponent 0 -> +0.0, exponent 255 -> +-inf (addendum)."""
    e = (bits >> 23) & 0xFF
    if e == 0:
        return 0.0
    if e == 255:
        v = np.inf
    else:
        v = float((bits & 0x7FFFFF) | 0x800000) * _POW2[e]
    if bits & _SIGN:
        return -v
    return v


@njit
def _rtz_bits(v: float) -> int:
    """float32 pattern of ``v`` rounded toward zero; below 2**-126 -> +0, overflow -> +-FLT_MAX.

    Works on the double's own bits (``v`` is never a double denormal here): truncating the
    52-bit fraction to 23 bits is rounding toward zero.
    """
    if v == 0.0:
        return 0
    d = np.float64(v).view(np.int64)
    sign = ((d >> 63) & 1) << 31
    e = (d >> 52) & 0x7FF
    if e == 0x7FF:
        return sign | _INF
    e -= 896  # float32 biased exponent (1023 - 127 = 896)
    if e <= 0:
        return 0
    if e >= 255:
        return sign | _FLT_MAX
    return sign | (e << 23) | ((d >> 29) & 0x7FFFFF)


@njit
def _exact_bits(v: float) -> int:
    """float32 pattern of a value with at most 24 significant bits; overflow -> +-inf, tiny -> +0."""
    if abs(v) >= 3.402823669209385e38:  # 2**128
        if v < 0.0:
            return _SIGN | _INF
        return _INF
    return _rtz_bits(v)


@njit
def _fadd_bits(x: int, y: int) -> int:
    """x + y with the QPU's float model (fsub passes y with its sign bit flipped)."""
    if (y >> 23) & 0xFF == 255:
        return (y & _SIGN) | _INF
    if (x >> 23) & 0xFF == 255:
        return (x & _SIGN) | _INF
    a = _as_float(x)
    b = _as_float(y)
    s = a + b
    # TwoSum: s + err is the exact sum (a and b are float32 values, so err is exact too).
    bv = s - a
    err = (a - (s - bv)) + (b - bv)
    r = _rtz_bits(s)
    if err != 0.0 and (r & _MAG) != 0 and _as_float(r) == s and (err < 0.0) != (s < 0.0):
        # s is a float32 value but the exact sum lies just inside it: one step toward zero.
        mag = (r & _MAG) - 1
        if mag < 0x800000:
            return 0
        r = (r & _SIGN) | mag
    return r


@njit
def _fmul_bits(x: int, y: int) -> int:
    ex = (x >> 23) & 0xFF
    ey = (y >> 23) & 0xFF
    if ex == 0 or ey == 0:
        return 0  # VC4C: a zero operand gives +0 even against inf/NaN
    if ex == 255 or ey == 255:
        return ((x ^ y) & _SIGN) | _INF
    return _rtz_bits(_as_float(x) * _as_float(y))  # the double product is exact (24 x 24 bits)


@njit
def _ftoi(x: int) -> int:
    """Float to int32, truncating toward zero (py-videocore tests/test_alu.py test_type_conv).

    Out of range (VC4C src/asm/OpCodes.cpp, OP_FTOI, from hardware tests): values in
    [INT_MIN, UINT_MAX] convert (2**31..2**32-1 give their unsigned pattern), +-FLT_MAX gives
    INT_MIN, everything else (larger, inf, NaN) gives 0.
    """
    e = (x >> 23) & 0xFF
    if e == 0 or e == 255:
        return 0
    if (x & _MAG) == _FLT_MAX:
        return _SIGN
    v = _as_float(x)
    if v >= 4294967296.0 or v <= -2147483649.0:
        return 0
    return int(v) & _U32  # int() truncates toward zero


@njit
def _key(x: int) -> int:
    """Total order of float patterns used by fmin/fmax: -NaN < -Inf < ... < -0 == +0 < ... < +NaN."""
    mag = x & _MAG
    if x & _SIGN:
        return -mag
    return mag


@njit
def _fminmax(op: int, x: int, y: int):
    """fmin/fmax/fminabs/fmaxabs: (result pattern, carry = x > y)."""
    if op == ADD_FMINABS or op == ADD_FMAXABS:
        mx = x & _MAG
        my = y & _MAG
        gt = mx > my
        if op == ADD_FMINABS:
            return (my if gt else mx), gt
        return (my if my > mx else mx), gt
    if ((x >> 23) & 0xFF) == 0 and ((y >> 23) & 0xFF) == 0:
        # Both zero or denormal: compared by magnitude (VC4C), zeros equal.
        mx = x & _MAG
        my = y & _MAG
        gt = mx > my
        if op == ADD_FMIN:
            if mx == 0 and my == 0:
                return x, False
            return (x if mx < my else y), gt
        return (x if gt else y), gt
    kx = _key(x)
    ky = _key(y)
    gt = kx > ky
    if op == ADD_FMIN:
        return (y if ky < kx else x), gt
    return (y if kx < ky else x), gt


@njit
def _clz(x: int) -> int:
    n = 0
    bit = 0x80000000
    while bit != 0 and (x & bit) == 0:
        n += 1
        bit >>= 1
    return n  # clz(0) = 32 (VC4C helper.h: "Tests show that VC4 returns 32 for clz(0)")


@njit
def _v8(op: int, x: int, y: int) -> int:
    """Per-byte ops; ``op`` is the mul-ALU code (the add ALU's v8adds/v8subs map onto them)."""
    r = 0
    for k in range(4):
        p = (x >> (8 * k)) & 0xFF
        q = (y >> (8 * k)) & 0xFF
        if op == MUL_V8ADDS:
            v = min(p + q, 255)
        elif op == MUL_V8SUBS:
            v = max(p - q, 0)
        elif op == MUL_V8MIN:
            v = min(p, q)
        elif op == MUL_V8MAX:
            v = max(p, q)
        else:  # v8muld: vc4asm doc/instructions.html "(source1 * source2 + 127) / 255" per byte
            v = (p * q + 127) // 255
        r |= v << (8 * k)
    return r


@njit
def _add_op(op: int, x: int, y: int):
    """One lane of the add ALU: (result, carry)."""
    if op == ADD_ADD:
        s = x + y
        return s & _U32, s > _U32
    if op == ADD_SUB:
        return (x - y) & _U32, x < y
    if op == ADD_FADD or op == ADD_FSUB:
        if op == ADD_FSUB:
            y = y ^ _SIGN
        r = _fadd_bits(x, y)
        return r, r != 0 and (r & _SIGN) == 0
    if op == ADD_OR:
        return x | y, False
    if op == ADD_AND:
        return x & y, False
    if op == ADD_XOR:
        return x ^ y, False
    if op == ADD_SHL:
        s = y & 31
        if s == 0:
            return x, False
        return (x << s) & _U32, ((x >> (32 - s)) & 1) == 1
    if op == ADD_SHR:
        s = y & 31
        if s == 0:
            return x, False
        return x >> s, ((x >> (s - 1)) & 1) == 1
    if op == ADD_ASR:
        s = y & 31
        if s == 0:
            return x, False
        return (_signed(x) >> s) & _U32, ((x >> (s - 1)) & 1) == 1
    if op == ADD_ROR:
        s = y & 31
        if s == 0:
            return x, False
        return ((x >> s) | (x << (32 - s))) & _U32, False
    if op == ADD_MIN or op == ADD_MAX:
        gt = _signed(x) > _signed(y)
        if op == ADD_MIN:
            return (y if gt else x), gt
        return (x if gt else y), gt
    if op == ADD_FMIN or op == ADD_FMAX or op == ADD_FMINABS or op == ADD_FMAXABS:
        return _fminmax(op, x, y)
    if op == ADD_FTOI:
        return _ftoi(x), False
    if op == ADD_ITOF:
        return _rtz_bits(float(_signed(x))), False  # vc4asm: C = 0 (VC4C says C = x > 0)
    if op == ADD_NOT:
        return (~x) & _U32, False
    if op == ADD_CLZ:
        return _clz(x), False
    if op == ADD_V8ADDS:
        return _v8(MUL_V8ADDS, x, y), False
    if op == ADD_V8SUBS:
        return _v8(MUL_V8SUBS, x, y), False
    return -1, False  # nop / reserved: caller leaves the lane alone


@njit
def _mul_op(op: int, x: int, y: int):
    """One lane of the mul ALU: (result, carry)."""
    if op == MUL_FMUL:
        return _fmul_bits(x, y), False
    if op == MUL_MUL24:
        p = (x & 0xFFFFFF) * (y & 0xFFFFFF)
        # C: VC4C says "product > 0xFFFFFFFF"; vc4asm's table prints "> 0xffffff", which would
        # make C = 1 for most ordinary products.  The 32-bit carry-out is the one implemented.
        return p & _U32, p > _U32
    if MUL_V8MULD <= op <= MUL_V8SUBS:
        return _v8(op, x, y), False
    return -1, False


# ---------------------------------------------------------------------------------------------
# Public vector API
# ---------------------------------------------------------------------------------------------

@njit
def add_alu_generic(op, a, b, out, carry) -> None:
    """Reference add ALU: ``_add_op`` per lane (the op switch inside the lane loop).  Slow; the
    tests check ``add_alu`` against it."""
    if op < 0 or op > 31 or ADD_VALID[op] == 0 or op == ADD_NOP:
        return
    for i in range(out.shape[0]):
        r, c = _add_op(op, _lane(a[i]), _lane(b[i]))
        out[i] = r
        carry[i] = 1 if c else 0


@njit
def mul_alu_generic(op, a, b, out, carry) -> None:
    """Reference mul ALU: ``_mul_op`` per lane; the tests check ``mul_alu`` against it."""
    if op < 1 or op > 7:
        return
    for i in range(out.shape[0]):
        r, c = _mul_op(op, _lane(a[i]), _lane(b[i]))
        out[i] = r
        carry[i] = 1 if c else 0


# ---------------------------------------------------------------------------------------------
# Lane loops, one per op: the op switch runs once per 16-lane operation, and each loop body is
# short and free of calls and branches, so LLVM unrolls or vectorises it under numba.  The
# float loops compute with the host's IEEE arithmetic (float32 -> double is exact, the double
# product of two float32 values is exact) and correct its round-to-nearest result toward zero
# (fmul: truncates the exact double product's mantissa instead, which needs fewer vector
# instructions than rounding and correcting; tests/test_emulator_fmul_bulk.py); they are
# bit-identical to the per-lane reference above (tests/test_emulator_alu.py checks
# them against it and against exact rational arithmetic).  Plain Python uses the per-lane
# bit-pattern helpers, which are faster there.
# ---------------------------------------------------------------------------------------------

_FAST_FLOAT = HAVE_NUMBA
FAST_FLOAT = _FAST_FLOAT     # for the emulator loop: fadd_row / fmul_row exist only under numba

# float32 constants of the lane loops below.  The helpers spell them as literals (numba makes
# module-level numpy scalars memory loads, which LLVM then repeats in every loop iteration);
# these module values are for checking the literals.
_F32_MIN_NORMAL = np.float32(2.0 ** -126)
_F32_MAX = np.float32(np.finfo(np.float32).max)
_F32_BELOW = np.float32(1.0 - 2.0 ** -24)   # x * _F32_BELOW (to nearest) = x's neighbour toward zero
assert float(_F32_MIN_NORMAL) == 1.1754943508222875e-38 and float(_F32_MAX) == 3.4028234663852886e38
assert float(_F32_BELOW) == 0.9999999403953552


def _inline(func):
    """``njit`` whose calls numba inlines into its callers (``inline='always'``): the lane
    helpers below, so no loop depends on LLVM deciding to inline them, and the row versions
    the emulator loop calls, where a call would cost as much as the 16-lane operation."""
    if HAVE_NUMBA:
        import numba
        return numba.njit(inline="always", nogil=True, cache=True)(func)
    return func


@_inline
def _f32(x):
    """The float32 a 32-bit pattern encodes (a bit cast)."""
    return np.uint32(x).view(np.float32)


@_inline
def _bits32(f):
    """The pattern of a float32 (a bit cast)."""
    return np.float32(f).view(np.uint32)


@_inline
def _toward_zero(r, down):
    """``r`` (a normal float32 or 0) or, when ``down``, its neighbour toward zero; results below
    2**-126 are +0.  x * (1 - 2**-24) rounded to nearest is x's lower neighbour for every
    normal x except 2**-126, whose lower neighbour is denormal and flushes anyway."""
    min_normal = np.float32(1.1754943508222875e-38)
    zero = np.float32(0.0)
    if down:
        r = zero if abs(r) == min_normal else r * np.float32(0.9999999403953552)
    if abs(r) < min_normal:
        r = zero
    return r


@_inline
def _sum_toward_zero(fa, fb):
    """(r, s, err) for two float32 values: s = fa + fb rounded to nearest and err its exact
    error (TwoSum), r = the sum rounded toward zero with results below 2**-126 +0: the exact
    sum lies toward zero from s exactly when err and s have opposite signs."""
    zero = np.float32(0.0)
    s = fa + fb
    bb = s - fa
    err = (fa - (s - bb)) + (fb - bb)
    return _toward_zero(s, (err != zero) & ((err < zero) != (s < zero))), s, err


@_inline
def _truncated_product(fa, fb):
    """The double product of two float32 values (exact) with its 29 lowest mantissa bits
    cleared: rounded toward zero to float32 precision (a sign-magnitude truncation)."""
    p = np.float64(fa) * np.float64(fb)
    return np.uint64(np.float64(p).view(np.uint64) & np.uint64(0xFFFFFFFFE0000000)).view(np.float64)


@_inline
def _fadd32(x, y):
    """fadd of two patterns, the QPU's way, on the host's float32 arithmetic: (pattern, exact).

    The float32 sum ``s`` is rounded to nearest; TwoSum gives its exact error ``err``, so the
    exact sum lies toward zero from ``s`` exactly when err and s have opposite signs: then
    the result is s's neighbour toward zero.  ``exact`` is False in the rare lanes where
    TwoSum itself overflowed (operands near FLT_MAX); the caller recomputes those.
    Inputs with exponent 0 are +0, exponent 255 infinities of their sign (y's wins); finite
    sums beyond FLT_MAX are +-FLT_MAX (see the block comment at the top).
    """
    flt_max = np.float32(3.4028234663852886e38)
    min_normal = np.float32(1.1754943508222875e-38)
    zero = np.float32(0.0)
    fa = _f32(x)
    fb = _f32(y)
    a_inf = not abs(fa) <= flt_max          # exponent 255: inf or a NaN pattern
    b_inf = not abs(fb) <= flt_max
    if abs(fa) < min_normal:
        fa = zero
    if abs(fb) < min_normal:
        fb = zero
    r, s, err = _sum_toward_zero(fa, fb)
    s_inf = not abs(s) <= flt_max
    if s_inf:
        r = np.copysign(flt_max, s)
    exact = (abs(err) <= flt_max) | s_inf | a_inf | b_inf
    if a_inf:
        r = np.copysign(np.float32(np.inf), fa)
    if b_inf:
        r = np.copysign(np.float32(np.inf), fb)
    return _bits32(r), exact


@_inline
def _fmul32(x, y):
    """fmul of two patterns, the QPU's way: the double product of two normal float32 values is
    exact and a normal double; clearing its 29 lowest mantissa bits rounds it toward zero to
    float32 precision (a sign-magnitude truncation), so the float32 conversion is exact when
    the result is in the float32 normal range.  Below 2**-126 the result is +0 (2**-126 is a
    truncation point: nothing at or above it truncates below it); from 2**128 on it is
    +-FLT_MAX (products in [FLT_MAX, 2**128) truncate to FLT_MAX)."""
    flt_max = np.float32(3.4028234663852886e38)
    min_normal = np.float32(1.1754943508222875e-38)
    fa = _f32(x)
    fb = _f32(y)
    pt = _truncated_product(fa, fb)
    r = np.float32(pt)
    if abs(pt) < np.float64(1.1754943508222875e-38):
        r = np.float32(0.0)
    if not abs(pt) <= np.float64(3.4028234663852886e38):
        r = np.copysign(flt_max, r)
    if (not abs(fa) <= flt_max) | (not abs(fb) <= flt_max):
        r = np.copysign(np.float32(np.inf), fa) * np.copysign(np.float32(1.0), fb)
    if (abs(fa) < min_normal) | (abs(fb) < min_normal):
        r = np.float32(0.0)     # VC4C: a zero operand gives +0 even against inf/NaN
    return _bits32(r)


@_inline
def _itof32(x):
    """itof: the int32 is exact as a double; rounded to float32 toward zero."""
    v = np.float64(np.int32(np.uint32(x)))
    p32 = np.float32(v)
    return _bits32(_toward_zero(p32, abs(np.float64(p32)) > abs(v)))


@njit
def _fadd_lanes(a, b, out, carry, flip) -> None:
    """fadd (flip = 0) / fsub (flip = the sign bit: b negated) on every lane (_fadd32).
    ``out`` may be ``a`` or ``b``: whether every lane is exact is found before writing."""
    exact = True
    for i in range(out.shape[0]):
        r, e = _fadd32(a[i], b[i] ^ np.uint32(flip))
        exact &= e
    for i in range(out.shape[0]):
        if exact:
            r, e = _fadd32(a[i], b[i] ^ np.uint32(flip))
        else:
            r = _fadd_bits(_lane(a[i]), _lane(b[i]) ^ flip)
        out[i] = r
        carry[i] = (r != 0) & (r < 0x80000000)


@njit
def _fmul_lanes(a, b, out, carry) -> None:
    for i in range(out.shape[0]):
        out[i] = _fmul32(a[i], b[i])
        carry[i] = 0


@njit
def _itof_lanes(a, out, carry) -> None:
    for i in range(out.shape[0]):
        out[i] = _itof32(a[i])
        carry[i] = 0


@njit
def _fminmax_lanes(op, a, b, out, carry) -> None:
    for i in range(out.shape[0]):
        r, c = _fminmax(op, _lane(a[i]), _lane(b[i]))
        out[i] = r
        carry[i] = 1 if c else 0


@njit
def _v8adds_word(x: int, y: int) -> int:
    """Per-byte saturating add of two words: bytes 0/2 and 1/3 summed in 16-bit fields."""
    r = 0
    for sh in (0, 8):
        s = ((x >> sh) & 0x00FF00FF) + ((y >> sh) & 0x00FF00FF)
        s |= ((s >> 8) & 0x00010001) * 0xFF       # a carry out of a byte saturates it
        r |= (s & 0x00FF00FF) << sh
    return r


@njit
def _v8subs_word(x: int, y: int) -> int:
    """Per-byte subtract clamped at 0: bit 8 of each 16-bit field says no borrow."""
    r = 0
    for sh in (0, 8):
        d = (((x >> sh) & 0x00FF00FF) | 0x01000100) - ((y >> sh) & 0x00FF00FF)
        keep = ((d >> 8) & 0x00010001) * 0xFF
        r |= (d & keep) << sh
    return r


@njit
def _v8minmax_word(x: int, y: int, want_max: bool) -> int:
    """Per-byte min or max: bit 8 of (p | 256) - q says p >= q."""
    r = 0
    for sh in (0, 8):
        p = (x >> sh) & 0x00FF00FF
        q = (y >> sh) & 0x00FF00FF
        ge = (((p | 0x01000100) - q) >> 8) & 0x00010001
        pick_p = ge * 0xFF if want_max else (ge ^ 0x00010001) * 0xFF
        r |= ((p & pick_p) | (q & (pick_p ^ 0x00FF00FF))) << sh
    return r


@njit
def add_alu(op, a, b, out, carry) -> None:
    """Add-ALU ``op`` on 16 lanes; nop/reserved leave ``out`` and ``carry`` untouched.

    The op is decided once; each op has its own lane loop (see the block comment above).
    """
    n = out.shape[0]
    if op == ADD_FADD or op == ADD_FSUB:
        if _FAST_FLOAT:
            _fadd_lanes(a, b, out, carry, _SIGN if op == ADD_FSUB else 0)
        else:
            flip = _SIGN if op == ADD_FSUB else 0
            for i in range(n):
                r = _fadd_bits(_lane(a[i]), _lane(b[i]) ^ flip)
                out[i] = r
                carry[i] = 1 if (r != 0 and (r & _SIGN) == 0) else 0
    elif op == ADD_ADD:
        for i in range(n):
            s = _lane(a[i]) + _lane(b[i])
            out[i] = s & _U32
            carry[i] = s >> 32
    elif op == ADD_SUB:
        for i in range(n):
            x = _lane(a[i])
            y = _lane(b[i])
            out[i] = (x - y) & _U32
            carry[i] = 1 if x < y else 0
    elif op == ADD_OR:
        for i in range(n):
            out[i] = a[i] | b[i]
            carry[i] = 0
    elif op == ADD_AND:
        for i in range(n):
            out[i] = a[i] & b[i]
            carry[i] = 0
    elif op == ADD_XOR:
        for i in range(n):
            out[i] = a[i] ^ b[i]
            carry[i] = 0
    elif op == ADD_SHL:
        for i in range(n):
            x = _lane(a[i])
            s = _lane(b[i]) & 31
            out[i] = (x << s) & _U32
            carry[i] = (x >> (32 - s)) & 1      # the last bit shifted out; 0 for s = 0
    elif op == ADD_SHR or op == ADD_ASR:
        for i in range(n):
            x = _lane(a[i])
            s = _lane(b[i]) & 31
            if op == ADD_SHR:
                out[i] = x >> s
            else:
                out[i] = (_signed(x) >> s) & _U32
            carry[i] = ((x << 1) >> s) & 1      # bit s-1 of x; 0 for s = 0
    elif op == ADD_ROR:
        for i in range(n):
            x = _lane(a[i])
            s = _lane(b[i]) & 31
            out[i] = ((x >> s) | (x << (32 - s))) & _U32
            carry[i] = 0
    elif op == ADD_MIN or op == ADD_MAX:
        for i in range(n):
            x = _lane(a[i])
            y = _lane(b[i])
            gt = _signed(x) > _signed(y)
            if op == ADD_MIN:
                out[i] = y if gt else x
            else:
                out[i] = x if gt else y
            carry[i] = 1 if gt else 0
    elif op == ADD_FMIN or op == ADD_FMAX or op == ADD_FMINABS or op == ADD_FMAXABS:
        _fminmax_lanes(op, a, b, out, carry)
    elif op == ADD_ITOF:
        if _FAST_FLOAT:
            _itof_lanes(a, out, carry)
        else:
            for i in range(n):
                out[i] = _rtz_bits(float(_signed(_lane(a[i]))))
                carry[i] = 0
    elif op == ADD_NOT:
        for i in range(n):
            out[i] = (~_lane(a[i])) & _U32
            carry[i] = 0
    elif op == ADD_V8ADDS:
        for i in range(n):
            out[i] = _v8adds_word(_lane(a[i]), _lane(b[i]))
            carry[i] = 0
    elif op == ADD_V8SUBS:
        for i in range(n):
            out[i] = _v8subs_word(_lane(a[i]), _lane(b[i]))
            carry[i] = 0
    elif op == ADD_FTOI or op == ADD_CLZ:
        for i in range(n):
            r, c = _add_op(op, _lane(a[i]), _lane(b[i]))
            out[i] = r
            carry[i] = 1 if c else 0
    # nop and the reserved codes: nothing


@njit
def mul_alu(op, a, b, out, carry) -> None:
    """Mul-ALU ``op`` on 16 lanes; nop/reserved leave ``out`` and ``carry`` untouched."""
    n = out.shape[0]
    if op == MUL_FMUL:
        if _FAST_FLOAT:
            _fmul_lanes(a, b, out, carry)
        else:
            for i in range(n):
                out[i] = _fmul_bits(_lane(a[i]), _lane(b[i]))
                carry[i] = 0
    elif op == MUL_MUL24:
        for i in range(n):
            p = (_lane(a[i]) & 0xFFFFFF) * (_lane(b[i]) & 0xFFFFFF)
            out[i] = p & _U32
            carry[i] = 1 if p > _U32 else 0
    elif op == MUL_V8MIN or op == MUL_V8MAX:
        for i in range(n):
            out[i] = _v8minmax_word(_lane(a[i]), _lane(b[i]), op == MUL_V8MAX)
            carry[i] = 0
    elif op == MUL_V8ADDS:
        for i in range(n):
            out[i] = _v8adds_word(_lane(a[i]), _lane(b[i]))
            carry[i] = 0
    elif op == MUL_V8SUBS:
        for i in range(n):
            out[i] = _v8subs_word(_lane(a[i]), _lane(b[i]))
            carry[i] = 0
    elif op == MUL_V8MULD:
        for i in range(n):
            out[i] = _v8(MUL_V8MULD, _lane(a[i]), _lane(b[i]))
            carry[i] = 0


# Lanes of a V row.  A literal trip count lets LLVM unroll the row loops below completely
# (V.shape[1], also 16, is a run-time value to it: loops with remainder handling).
_ROW_LANES = 16

# ---------------------------------------------------------------------------------------------
# Row versions for the emulator loop: the common ops on rows of one 2-D array, without the
# carry (the loop asks for it, through add_alu / mul_alu, only when flags are set).  One
# array argument instead of four keeps the call cheap.  They return False for the ops they
# do not cover (then the loop calls add_alu / mul_alu).  The lane bodies are the same
# helpers as above; tests check both against the per-lane references.
# ---------------------------------------------------------------------------------------------

# The common-case paths below take operands whose magnitudes lie far enough inside the
# normal float32 range that no special case can arise.  fadd: |x| in [2**-100, 2**100):
# sums and TwoSum's terms stay finite; only a sum that cancels to below 2**-126 needs the
# flush.  fmul: |x| in [2**-63, 2**63): every product is a normal float32 value below 2**126.
# (abs() of a NaN compares false: NaN, infinities, zeros and denormals are all outside.)
# A row takes the common path only when all 16 lanes' operands are inside: in the loop the
# test costs a few vector compares; in a micro-benchmark of the rows the common path is
# about 1.2x (fadd) and 1.7x (fmul) faster than the general one, and SGEMM on the emulator
# about 1.1x (benchmarks/loop_ab.py).


@_inline
def _ordinary_add(x):
    """Whether pattern ``x`` is an operand of _fadd32_ordinary."""
    f = abs(_f32(x))
    return (f >= np.float32(7.888609052210118e-31)) & (f < np.float32(1.2676506002282294e30))


@_inline
def _ordinary_mul(x):
    """Whether pattern ``x`` is an operand of _fmul32_ordinary."""
    f = abs(_f32(x))
    return (f >= np.float32(1.0842021724855044e-19)) & (f < np.float32(9.223372036854776e18))


@_inline
def _fadd32_ordinary(x, y):
    """_fadd32 for operands that pass _ordinary_add: no zero, denormal, infinite or NaN
    operand and no overflow anywhere, so of _fadd32's special cases only the flush of a
    result below 2**-126 remains (tests/test_emulator_alu.py checks rows at the range's
    edges against exact arithmetic)."""
    return _bits32(_sum_toward_zero(_f32(x), _f32(y))[0])


@_inline
def _fmul32_ordinary(x, y):
    """_fmul32 for operands that pass _ordinary_mul: the truncated exact product is a normal
    float32 value, so no special case remains."""
    return _bits32(np.float32(_truncated_product(_f32(x), _f32(y))))


@_inline
def _fadd_row(V, a, b, o, flip, t) -> None:
    """V[o] = fadd (flip 0) / fsub (flip = sign bit) of rows V[a], V[b]; ``o`` may be ``a`` or
    ``b``.  The lanes go to the scratch row V[t] first, and only the right ones go on to V[o]:
    the common-case lanes (_fadd32_ordinary) when every operand passed _ordinary_add, else
    _fadd32's when it was exact in every lane, else the per-lane reference's."""
    ordinary = True
    for i in range(_ROW_LANES):
        x = V[a, i]
        y = V[b, i] ^ flip
        ordinary &= _ordinary_add(x) & _ordinary_add(y)
        V[t, i] = _fadd32_ordinary(x, y)
    if not ordinary:
        exact = True
        for i in range(_ROW_LANES):
            r, e = _fadd32(V[a, i], V[b, i] ^ flip)
            exact &= e
            V[t, i] = r
        if not exact:
            for i in range(_ROW_LANES):
                V[t, i] = _fadd_bits(_lane(V[a, i]), _lane(V[b, i] ^ flip))
    copy_row_values(V, o, t)


@_inline
def copy_row_values(V, d, s) -> None:
    """V[d] = V[s], all 16 lanes loaded before any is stored: LLVM then moves them as two
    32-byte vectors (a lane loop moves single words: it cannot rule out overlapping rows)."""
    (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15) = (
        V[s, 0], V[s, 1], V[s, 2], V[s, 3], V[s, 4], V[s, 5], V[s, 6], V[s, 7],
        V[s, 8], V[s, 9], V[s, 10], V[s, 11], V[s, 12], V[s, 13], V[s, 14], V[s, 15])
    (V[d, 0], V[d, 1], V[d, 2], V[d, 3], V[d, 4], V[d, 5], V[d, 6], V[d, 7],
     V[d, 8], V[d, 9], V[d, 10], V[d, 11], V[d, 12], V[d, 13], V[d, 14], V[d, 15]) = (
        v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15)


@_inline
def fadd_row(V, a, b, o, t) -> None:
    """V[o] = fadd of rows V[a], V[b]; ``o`` may be ``a`` or ``b``; V[t] is a scratch row
    different from all three (numba only)."""
    _fadd_row(V, a, b, o, np.uint32(0), t)


@_inline
def fmul_row(V, a, b, o) -> None:
    """V[o] = fmul of rows V[a], V[b]; ``o`` may be ``a`` or ``b`` (numba only).  Unless it is,
    the common-case lanes (_fmul32_ordinary) are written first and kept when every operand
    passed _ordinary_mul; else (or when it is) _fmul32 computes every lane."""
    if o != a and o != b:
        # the common case first (every lane in the range where fewer special cases exist),
        # written straight to V[o]: the operands are still there if it does not apply
        ordinary = True
        for i in range(_ROW_LANES):
            x = V[a, i]
            y = V[b, i]
            ordinary &= _ordinary_mul(x) & _ordinary_mul(y)
            V[o, i] = _fmul32_ordinary(x, y)
        if ordinary:
            return
    for i in range(_ROW_LANES):
        V[o, i] = _fmul32(V[a, i], V[b, i])


@_inline
def add_rows(op, V, a, b, o, t) -> bool:
    """V[o] = add-ALU ``op`` of V[a], V[b] for fadd, fsub, itof and the integer ops; ``o`` may
    be ``a`` or ``b``; V[t] is a scratch row different from all three (fadd/fsub)."""
    n = _ROW_LANES
    if op == ADD_FADD or op == ADD_FSUB:
        if not _FAST_FLOAT:
            return False
        _fadd_row(V, a, b, o, np.uint32(_SIGN if op == ADD_FSUB else 0), t)
    elif op == ADD_ADD:
        for i in range(n):
            V[o, i] = (_lane(V[a, i]) + _lane(V[b, i])) & _U32
    elif op == ADD_SUB:
        for i in range(n):
            V[o, i] = (_lane(V[a, i]) - _lane(V[b, i])) & _U32
    elif op == ADD_OR:
        for i in range(n):
            V[o, i] = V[a, i] | V[b, i]
    elif op == ADD_AND:
        for i in range(n):
            V[o, i] = V[a, i] & V[b, i]
    elif op == ADD_XOR:
        for i in range(n):
            V[o, i] = V[a, i] ^ V[b, i]
    elif op == ADD_SHL:
        for i in range(n):
            V[o, i] = (_lane(V[a, i]) << (_lane(V[b, i]) & 31)) & _U32
    elif op == ADD_SHR:
        for i in range(n):
            V[o, i] = _lane(V[a, i]) >> (_lane(V[b, i]) & 31)
    elif op == ADD_ASR:
        for i in range(n):
            V[o, i] = (_signed(_lane(V[a, i])) >> (_lane(V[b, i]) & 31)) & _U32
    elif op == ADD_ITOF:
        if not _FAST_FLOAT:
            return False
        for i in range(n):
            V[o, i] = _itof32(V[a, i])
    else:
        return False
    return True


@_inline
def mul_rows(op, V, a, b, o) -> bool:
    """V[o] = mul-ALU ``op`` of V[a], V[b] for fmul and mul24."""
    n = _ROW_LANES
    if op == MUL_FMUL:
        if not _FAST_FLOAT:
            return False
        fmul_row(V, a, b, o)
    elif op == MUL_MUL24:
        for i in range(n):
            V[o, i] = (_lane(V[a, i]) & 0xFFFFFF) * (_lane(V[b, i]) & 0xFFFFFF) & _U32
    else:
        return False
    return True


@njit
def set_flags(out, carry, mask, z, n, c) -> None:
    """Z = (out == 0) (all 32 bits: -0.0 is not zero, VC4C ElementFlags), N = bit 31, C = carry,
    for lanes with mask != 0 (addendum "set flags": only where the condition is true)."""
    for i in range(out.shape[0]):
        if mask[i] != 0:
            v = _lane(out[i])
            z[i] = 1 if v == 0 else 0
            n[i] = (v >> 31) & 1
            c[i] = 1 if carry[i] != 0 else 0


@njit
def _f16_to_f32(h: int) -> int:
    """Half -> float pattern.  Half zero/denormal -> signed zero (no denormals on the QPU;
    the exact treatment of half denormals is not documented anywhere), exponent 31 -> 255."""
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        return sign
    if e == 31:
        return sign | _INF | (m << 13)
    return sign | ((e + 112) << 23) | (m << 13)


@njit
def _f32_to_f16(x: int) -> int:
    """Float -> half pattern as VC4C measured (src/asm/OpCodes.cpp, PACK_32_16A, "Tests have
    shown"): +-0 -> +0, NaN/inf -> +-inf, rounding away from zero (src/HalfType.cpp), results
    that overflow -> +-inf, results in the half denormal range -> +0."""
    e = (x >> 23) & 0xFF
    sign = (x >> 16) & 0x8000
    if e == 0:
        return 0
    if e == 255:
        return sign | 0x7C00
    frac = x & 0x7FFFFF
    m = frac >> 13
    if frac & 0x1FFF:
        m += 1
    he = e - 112
    if m == 0x400:
        m = 0
        he += 1
    if he >= 31:
        return sign | 0x7C00
    if he <= 0:
        return 0
    return sign | (he << 10) | m


@njit
def _colour(byte: int) -> int:
    """8-bit colour -> float32 pattern of byte/255, truncated (VC4C expandColor; the binary
    expansion of b/255 repeats the byte, so the double quotient never sits on a float32 tie)."""
    return _rtz_bits(byte / 255.0)


@njit
def _unpack_one(mode: int, x: int, as_float: bool) -> int:
    if mode == UNPACK_16A or mode == UNPACK_16B:
        h = x & 0xFFFF if mode == UNPACK_16A else x >> 16
        if as_float:
            return _f16_to_f32(h)
        return (h - ((h >> 15) << 16)) & _U32  # sign-extend int16
    if mode == UNPACK_8DR:
        return (x >> 24) * 0x01010101
    if UNPACK_8A <= mode <= UNPACK_8A + 3:
        byte = (x >> (8 * (mode - UNPACK_8A))) & 0xFF
        if as_float:
            return _colour(byte)
        return byte
    return x


@njit
def unpack_a(mode, x, float_consumer, out) -> None:
    """Regfile-A unpack (guide Table 6 p.31; py-videocore tests/test_packunpack.py checks every
    mode on hardware): 16a/16b float16 -> float32 for a float consumer, else sign-extended int16;
    8dr replicates byte 3; 8a..8d give byte/255 as float for a float consumer, else the byte."""
    as_float = float_consumer != 0
    for i in range(out.shape[0]):
        out[i] = _unpack_one(mode, _lane(x[i]), as_float)


@njit
def unpack_r4(mode, x, out) -> None:
    """r4 unpack (guide Table 8 p.32, rows 5-7 read 8b/8c/8d per py-videocore APPENDIX.rst):
    the 16-bit and colour modes always produce floats; 8dr replicates byte 3."""
    for i in range(out.shape[0]):
        out[i] = _unpack_one(mode, _lane(x[i]), True)


@njit
def _sat32(op: int, x: int, y: int):
    """(saturated value, overflowed) of add/sub for the 32s pack (vc4asm doc/extensions.html:
    add clamps the true sum to [-2**31, 2**31-1]; sub clamps to [-2**31-1, 2**31], i.e. an
    overflowing difference saturates to the opposite extreme, confirmed by VC4C OpCodes.h
    PACK_32_32: "INT_MIN - INT_MAX -> INT_MAX while INT_MAX - INT_MIN -> INT_MIN")."""
    if op == ADD_ADD:
        t = _signed(x) + _signed(y)
        lo = -2147483648
        hi = 2147483647
    else:
        t = _signed(x) - _signed(y)
        lo = -2147483649
        hi = 2147483648
    ovf = t < -2147483648 or t > 2147483647
    if t < lo:
        t = lo
    elif t > hi:
        t = hi
    return t & _U32, ovf


@njit
def pack_a(mode, value, old, float_result, op, a, b, out) -> None:
    """Regfile-A pack (guide Table 7 p.31-32).

    Bytes a mode does not write keep ``old`` (vc4asm doc/extensions.html byte masks; VC4C:
    "Only the Half-Word specified is actually written").  Integer results of add/sub are
    saturated to 32 bits before any pack when they overflow (VC4C OpCodes.h, "Tests have shown
    that the operation's result is saturated to 32-bit signed integer first"), and a 16-bit
    non-saturating pack of such a saturated value gives 0x7fff/0x8000 (VC4C, same place).
    32s on other ops leaves the value unchanged (vc4asm: "other instructions seem not to
    support this pack mode").  Float results in 16-bit modes become float16 (both 16a and
    16as); the 8-bit modes always work on the bits as an integer (vc4asm: 8-bit float
    conversion is a mul-ALU pack).  Not modelled: VC4C's note that 16as/8as "sometimes" give
    0 on a 32-bit overflow.
    """
    is_float = float_result != 0
    satop = (not is_float) and (op == ADD_ADD or op == ADD_SUB)
    byte_lane = _PACK_A_BYTE[mode]
    half = _PACK_A_HALF[mode]
    sat = _PACK_A_SAT[mode]
    for i in range(out.shape[0]):
        v = _lane(value[i])
        o = _lane(old[i])
        if mode == 0:
            out[i] = v
            continue
        ovf = False
        if satop:
            v, ovf = _sat32(op, _lane(a[i]), _lane(b[i]))
        if mode == PACK_A_32S:
            out[i] = v
            continue
        if half >= 0:
            if is_float:
                h = _f32_to_f16(v)
            elif sat != 0:
                s = _signed(v)
                h = (min(max(s, -32768), 32767)) & 0xFFFF
            elif ovf:
                h = 0x7FFF if v == 0x7FFFFFFF else 0x8000
            else:
                h = v & 0xFFFF
            if half == 0:
                out[i] = (o & 0xFFFF0000) | h
            else:
                out[i] = (o & 0x0000FFFF) | (h << 16)
            continue
        if sat != 0:
            byte = min(max(_signed(v), 0), 255)
        else:
            byte = v & 0xFF
        if byte_lane == 4:
            out[i] = byte * 0x01010101
        else:
            shift = 8 * byte_lane
            out[i] = (o & (_U32 ^ (0xFF << shift))) | (byte << shift)


@njit
def _colour_byte(x: int) -> int:
    """Mul colour pack c = sat[round(f * 255)] (guide p.30).  Saturation is confirmed by
    py-videocore test_pack_mul (inputs outside [0, 1] clip); the rounding is not measured
    (that test allows +-1): round half up on the exact product."""
    f = _as_float(x)
    if f <= 0.0:
        return 0
    if f >= 1.0:
        return 255
    return int(math.floor(f * 255.0 + 0.5))


@njit
def pack_mul(mode, value, old, out) -> None:
    """Mul-ALU colour pack (pm = 1, guide Table 9 with the 8b/8c/8d errata): the float result
    becomes an 8-bit colour written to one byte (others keep ``old``, vc4asm extensions.html)
    or to all four (8888).  Mode 0 and the reserved codes copy ``value`` unchanged."""
    lane = _PACK_MUL_BYTE[mode] if 0 <= mode < 16 else -1
    for i in range(out.shape[0]):
        v = _lane(value[i])
        if lane < 0:
            out[i] = v
            continue
        c = _colour_byte(v)
        if lane == 4:
            out[i] = c * 0x01010101
        else:
            shift = 8 * lane
            out[i] = (_lane(old[i]) & (_U32 ^ (0xFF << shift))) | (c << shift)


# ---------------------------------------------------------------------------------------------
# SFU.  Functions (py-videocore APPENDIX.rst, /work/shared/reference/README.md): RECIP = 1/x,
# RECIPSQRT = 1/sqrt(|x|), EXP = 2**x, LOG = log2(|x|); RECIP(0) = RECIPSQRT(0) = +inf.
# Precision model fitted to the hardware measurements in VC4C doc/sfu_accuracy.txt
# (tests/test_emulator_alu.py checks the fit):
#   * every measured recip/recipsqrt/exp result has exactly 15 fraction bits of mantissa;
#     recip and recipsqrt are modelled as the exact value rounded to 15 fraction bits;
#   * exp: for x >= 0 the exact 2**x plus one unit of 2**-15 (relative), rounded to 15
#     fraction bits: this reproduces all ten measured results for x >= 0 exactly (e.g.
#     exp(0) = 1 + 2**-15); for x < 0 the hardware evidently works differently (exp(-1) =
#     0.5 - 2**-16) and the unbiased rounding used there matches the three measured results
#     within one unit;
#   * log: a fixed-point result with 16 fraction bits: the mantissa's log2 truncated, minus 3
#     units (all five measured non-power-of-two results lie 1.8 to 4.5 units below the exact
#     value), not below 0; negative results are one unit above (ones'-complement negation).
#     This reproduces every measured power-of-two input exactly (log(0.5) = -1 + 2**-16) and
#     the others within 2 units of 2**-16 (the hardware's table is not known).
# Zero/denormal inputs are +0, exponent-255 inputs +-inf, as for the ALUs.
# ---------------------------------------------------------------------------------------------

@njit
def _round_mantissa(v: float, frac_bits: int, bias: float) -> float:
    """Positive ``v`` with its mantissa rounded (half up) to ``frac_bits`` fraction bits after
    adding ``bias`` units of the last place."""
    m, e = math.frexp(v)
    scale = float(1 << (frac_bits + 1))
    q = math.floor(m * scale + bias + 0.5)
    return math.ldexp(float(q), e - frac_bits - 1)


@njit
def _sfu_one(fn: int, x: int) -> int:
    e = (x >> 23) & 0xFF
    neg = (x & _SIGN) != 0
    if fn == SFU_RECIP:
        if e == 0:
            return _INF
        if e == 255:
            return 0
        r = _round_mantissa(1.0 / abs(_as_float(x)), 15, 0.0)
        return _exact_bits(-r if neg else r)
    if fn == SFU_RECIPSQRT:
        if e == 0:
            return _INF
        if e == 255:
            return 0
        return _exact_bits(_round_mantissa(1.0 / math.sqrt(abs(_as_float(x))), 15, 0.0))
    if fn == SFU_EXP:
        if e == 0:
            return _exact_bits(_round_mantissa(1.0, 15, 1.0))
        if e == 255:
            return 0 if neg else _INF
        v = _as_float(x)
        if v >= 128.0:
            return _INF
        if v < -127.0:
            return 0
        return _exact_bits(_round_mantissa(2.0 ** v, 15, 0.0 if v < 0.0 else 1.0))
    # SFU_LOG
    if e == 0:
        return _SIGN | _INF
    if e == 255:
        return _INF
    ue = e - 127
    mant = 1.0 + (x & 0x7FFFFF) / 8388608.0
    f = max(int(math.floor(math.log2(mant) * 65536.0)) - 3, 0)
    fixed = ue * 65536 + f
    if ue < 0:
        fixed += 1
    return _rtz_bits(fixed / 65536.0)  # exact: at most 7 + 16 significant bits


@njit
def sfu(op, x, out) -> None:
    """SFU result for 16 lanes; ``op`` = write address 52..55 or 0..3 (low two bits used)."""
    fn = op & 3
    for i in range(out.shape[0]):
        out[i] = _sfu_one(fn, _lane(x[i]))


# ---------------------------------------------------------------------------------------------
# Lane movement
# ---------------------------------------------------------------------------------------------

@njit
def _reverse(out, lo, hi) -> None:
    """Reverse out[lo:hi] in place (no temporary array: the core's loop runs without numba's
    reference-counted allocator, so these helpers must not allocate)."""
    hi -= 1
    while lo < hi:
        t = out[lo]
        out[lo] = out[hi]
        out[hi] = t
        lo += 1
        hi -= 1


@njit
def _rotate_up(out, lo, size, n) -> None:
    """Rotate out[lo:lo+size] so element i moves to i+n (mod size), by three reversals."""
    n = n % size
    if n:
        _reverse(out, lo, lo + size)
        _reverse(out, lo, lo + n)
        _reverse(out, lo + n, lo + size)


@njit
def rotate_full(x, n, out) -> None:
    """Full mul-output rotation: element i moves to element (i + n) mod 16 (guide Table 5:
    "rotated by 1 upwards (so element 0 moves to element 1)"; py-videocore test_rotate).
    ``out`` may be ``x``."""
    size = out.shape[0]
    for i in range(size):
        out[i] = x[i]
    _rotate_up(out, 0, size, n)


@njit
def rotate_quads(x, n, out) -> None:
    """Rotation within each quad by n mod 4 (addendum "Horizontal vector rotation": when a source
    is not an accumulator r0-r3, [0..15] rotated by 1 reads [3,0,1,2, 7,4,5,6, ...]).
    ``out`` may be ``x``."""
    size = out.shape[0]
    for i in range(size):
        out[i] = x[i]
    for base in range(0, size, 4):
        _rotate_up(out, base, 4, n & 3)


@njit
def r5_quad(x, out) -> None:
    """r5 written through regfile A: element 0 of each quad fills the quad (addendum "Writing to r5").
    ``out`` may be ``x``: each quad's element 0 is read before the quad is written."""
    for base in range(0, out.shape[0], 4):
        v = x[base]
        for i in range(base, base + 4):
            out[i] = v


@njit
def r5_rep(x, out) -> None:
    """r5 written through regfile B: element 0 fills all lanes (addendum "Writing to r5")."""
    v = x[0]
    for i in range(out.shape[0]):
        out[i] = v


@njit
def ldi_per_element(imm, signed, out) -> None:
    """Per-element load immediate (guide p.33, Figure 5): lane i's value has its LS bit at bit i
    and its MS bit at bit 16 + i of ``imm``; signed gives -2..1 (as uint32), unsigned 0..3."""
    imm = _lane(imm)
    for i in range(out.shape[0]):
        v = ((imm >> i) & 1) | (((imm >> (16 + i)) & 1) << 1)
        if signed != 0 and v >= 2:
            v = (v - 4) & _U32
        out[i] = v


@njit
def flush_denormals(x, out) -> None:
    """Exponent-0 float patterns (denormals, -0) -> +0, everything else unchanged (VC4C
    Operators.h flushDenorms: "denorms seem to be always flushed to +0.0")."""
    for i in range(out.shape[0]):
        v = _lane(x[i])
        out[i] = 0 if (v >> 23) & 0xFF == 0 else v
