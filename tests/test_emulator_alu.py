"""Tests of qpu.emulator.alu: the QPU's ALU, pack/unpack and SFU semantics.

References are independent of the code under test: exact rational arithmetic
(fractions.Fraction) with the rounding done by searching the float32 grid with numpy,
Python integers for the integer ops, byte-by-byte loops for the v8 ops, IEEE binary16
values computed by numpy, hand-computed vectors from the guide's tables, and the SFU
results measured on hardware (VC4C's sfu_accuracy table, embedded below as MEASURED_SFU).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from typing import List, Tuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qpu.emulator import alu
from qpu.emulator.jit import HAVE_NUMBA
from qpu.isa.ops import ADD_OPS_BY_NAME, MUL_OPS_BY_NAME
from qpu.isa.packing import PACK_A_BY_TEXT, PACK_MUL_BY_TEXT, UNPACK_BY_TEXT

U32 = 0xFFFFFFFF
INF = 0x7F800000
NINF = 0xFF800000
FLT_MAX = 0x7F7FFFFF
TWO_M126 = Fraction(1, 2 ** 126)


# ----------------------------------------------------------------------------- helpers

def bits(x: float) -> int:
    return int(np.array([x], np.float32).view(np.uint32)[0])


def flt(b: int) -> float:
    return float(np.array([b], np.uint32).view(np.float32)[0])


def vec(values) -> np.ndarray:
    v = list(values)
    v = (v * 16)[:16] if len(v) < 16 else v
    return np.array([x & U32 for x in v], np.uint32)


def run_add(op: str, a, b=(0,)) -> Tuple[List[int], List[int]]:
    av, bv = vec(a), vec(b)
    out = np.zeros(16, np.uint32)
    carry = np.zeros(16, np.uint8)
    alu.add_alu(ADD_OPS_BY_NAME[op].code, av, bv, out, carry)
    return [int(x) for x in out], [int(x) for x in carry]


def run_mul(op: str, a, b=(0,)) -> Tuple[List[int], List[int]]:
    av, bv = vec(a), vec(b)
    out = np.zeros(16, np.uint32)
    carry = np.zeros(16, np.uint8)
    alu.mul_alu(MUL_OPS_BY_NAME[op].code, av, bv, out, carry)
    return [int(x) for x in out], [int(x) for x in carry]


def add1(op: str, x: int, y: int = 0) -> Tuple[int, int]:
    out, carry = run_add(op, [x], [y])
    return out[0], carry[0]


def mul1(op: str, x: int, y: int = 0) -> Tuple[int, int]:
    out, carry = run_mul(op, [x], [y])
    return out[0], carry[0]


def signed(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x


def exponent(b: int) -> int:
    return (b >> 23) & 0xFF


def ref_value(b: int) -> Fraction:
    """Exact value of a finite, normal-or-zero float32 pattern as the QPU reads it."""
    if exponent(b) == 0:
        return Fraction(0)
    return Fraction(flt(b))


def ref_rtz(q: Fraction) -> int:
    """Round an exact value toward zero onto the float32 grid by walking it with numpy."""
    if q == 0:
        return 0
    sign = 0x80000000 if q < 0 else 0
    mag = abs(q)
    if mag < TWO_M126:
        return 0
    if mag > Fraction(flt(FLT_MAX)):
        return sign | FLT_MAX
    f = np.float32(float(mag))
    zero, inf = np.float32(0), np.float32(np.inf)
    while Fraction(float(f)) > mag:
        f = np.nextafter(f, zero)
    while f < np.finfo(np.float32).max and Fraction(float(np.nextafter(f, inf))) <= mag:
        f = np.nextafter(f, inf)
    return sign | bits(float(f))


SPECIALS = [0, 0x80000000, 1, 0x807FFFFF, 0x007FFFFF, INF, NINF, 0x7FC00000, 0xFFC00000, 0x7F800001,
            FLT_MAX, 0xFF7FFFFF, 0x00800000, 0x80800000, 0x3F800000, 0xBF800000, 0x33800000, 0x4B800000,
            0x7F000000, 0x00800001]
word = st.one_of(st.integers(0, U32), st.sampled_from(SPECIALS),
                 st.floats(width=32, allow_nan=False).map(bits))
lanes = st.lists(word, min_size=16, max_size=16)
ints = st.lists(st.integers(0, U32), min_size=16, max_size=16)


# ----------------------------------------------------------------------------- tables

def test_op_code_tables_come_from_isa():
    assert alu.ADD_FADD == ADD_OPS_BY_NAME["fadd"].code == 1
    assert alu.MUL_V8SUBS == MUL_OPS_BY_NAME["v8subs"].code == 7
    assert alu.ADD_FLOAT_IN[ADD_OPS_BY_NAME["ftoi"].code] == 1
    assert alu.ADD_FLOAT_OUT[ADD_OPS_BY_NAME["ftoi"].code] == 0
    assert alu.ADD_FLOAT_IN[ADD_OPS_BY_NAME["itof"].code] == 0
    assert alu.ADD_FLOAT_OUT[ADD_OPS_BY_NAME["itof"].code] == 1
    assert alu.MUL_FLOAT_IN[MUL_OPS_BY_NAME["fmul"].code] == 1
    assert alu.MUL_FLOAT_IN[MUL_OPS_BY_NAME["mul24"].code] == 0
    assert alu.ADD_VALID[9] == 0 and alu.ADD_VALID[12] == 1


def test_nop_and_reserved_leave_outputs_untouched():
    a = vec(range(16))
    out = vec([0xDEADBEEF])
    carry = np.full(16, 7, np.uint8)
    for op in (0, 9, 10, 11, 25, 29):
        alu.add_alu(op, a, a, out, carry)
    alu.mul_alu(0, a, a, out, carry)
    assert all(int(x) == 0xDEADBEEF for x in out) and all(int(c) == 7 for c in carry)


# ----------------------------------------------------------------------------- integer ops

@given(ints, ints)
def test_integer_ops_against_python(a, b):
    out = {op: run_add(op, a, b) for op in ("add", "sub", "min", "max", "and", "or", "xor", "not",
                                              "shl", "shr", "asr", "ror", "clz")}
    for i, (x, y) in enumerate(zip(a, b)):
        s = y & 31
        sx, sy = signed(x), signed(y)
        expect = {
            # vc4asm doc/instructions.html: add C = unsigned carry, sub C = a < b (unsigned)
            "add": ((x + y) & U32, int(x + y > U32)),
            "sub": ((x - y) & U32, int(x < y)),
            "min": (min(sx, sy) & U32, int(sx > sy)),
            "max": (max(sx, sy) & U32, int(sx > sy)),
            "and": (x & y, 0), "or": (x | y, 0), "xor": (x ^ y, 0), "not": (~x & U32, 0),
            # shifts use the low 5 bits of b; C = the last bit shifted out (none for 0)
            "shl": ((x << s) & U32, (x >> (32 - s)) & 1 if s else 0),
            "shr": (x >> s, (x >> (s - 1)) & 1 if s else 0),
            "asr": ((sx >> s) & U32, (x >> (s - 1)) & 1 if s else 0),
            "ror": (((x >> s) | (x << (32 - s))) & U32, 0),
            "clz": (32 - x.bit_length(), 0),
        }
        for op, (value, carry) in expect.items():
            assert out[op][0][i] == value, (op, hex(x), hex(y))
            assert out[op][1][i] == carry, (op, hex(x), hex(y))


def test_shift_edge_cases():
    assert add1("shl", 1, 32) == (1, 0)           # 32 & 31 = 0: no shift
    assert add1("shl", 0x80000001, 33) == (2, 1)  # by 1, bit 31 shifted out
    assert add1("shr", 0x80000000, 63) == (1, 0)  # by 31
    assert add1("asr", 0x80000000, 31) == (U32, 0)
    assert add1("asr", 3, 0xFFFFFFE1) == (1, 1)   # by 1
    assert add1("ror", 0x12345678, 4) == (0x81234567, 0)
    assert add1("clz", 0)[0] == 32 and add1("clz", 1)[0] == 31 and add1("clz", U32)[0] == 0


@given(ints, ints)
def test_mul24_and_v8_ops_per_byte(a, b):
    mul24 = run_mul("mul24", a, b)
    v8 = {op: run_mul(op, a, b) for op in ("v8muld", "v8min", "v8max", "v8adds", "v8subs")}
    add_v8 = {op: run_add(op, a, b) for op in ("v8adds", "v8subs")}
    for i, (x, y) in enumerate(zip(a, b)):
        p = (x & 0xFFFFFF) * (y & 0xFFFFFF)
        assert mul24[0][i] == p % (1 << 32)
        assert mul24[1][i] == int(p >= 1 << 32)
        ref = {"v8muld": 0, "v8min": 0, "v8max": 0, "v8adds": 0, "v8subs": 0}
        for k in range(4):
            p8, q8 = (x >> 8 * k) & 0xFF, (y >> 8 * k) & 0xFF
            ref["v8muld"] |= ((p8 * q8 + 127) // 255) << 8 * k   # vc4asm instructions.html
            ref["v8min"] |= min(p8, q8) << 8 * k
            ref["v8max"] |= max(p8, q8) << 8 * k
            ref["v8adds"] |= min(p8 + q8, 255) << 8 * k
            ref["v8subs"] |= max(p8 - q8, 0) << 8 * k
        for op, value in ref.items():
            assert v8[op][0][i] == value and v8[op][1][i] == 0, op
        for op in ("v8adds", "v8subs"):
            assert add_v8[op][0][i] == ref[op] and add_v8[op][1][i] == 0


def test_v8muld_matches_py_videocore_hardware_tolerance():
    # py-videocore tests/test_alu.py test_v8sat_ops (run on a Pi): |v8muld - trunc(a*b/255)| <= 1
    a = np.arange(256 * 256) // 256
    b = np.arange(256 * 256) % 256
    for start in range(0, 256 * 256, 16):
        out, _ = run_mul("v8muld", a[start:start + 16].tolist(), b[start:start + 16].tolist())
        ref = (a[start:start + 16] * b[start:start + 16]) // 255
        assert np.all(np.abs(np.array(out) - ref) <= 1)
    assert mul1("v8muld", 0xFF00FF80, 0xFFFF0080)[0] == 0xFF000040


def test_mul24_examples():
    assert mul1("mul24", 0xFF000003, 0x12000005) == (15, 0)          # high bytes ignored
    assert mul1("mul24", 0xFFFFFF, 0xFFFFFF) == ((0xFFFFFF ** 2) & U32, 1)
    assert mul1("mul24", 0x10000, 0x10000) == (0, 1)                  # 2**32 wraps to 0


# ----------------------------------------------------------------------------- float model

def ref_fadd(x: int, y: int) -> int:
    if exponent(y) == 255:
        return (y & 0x80000000) | INF
    if exponent(x) == 255:
        return (x & 0x80000000) | INF
    return ref_rtz(ref_value(x) + ref_value(y))


def ref_fmul(x: int, y: int) -> int:
    if exponent(x) == 0 or exponent(y) == 0:
        return 0
    if exponent(x) == 255 or exponent(y) == 255:
        return ((x ^ y) & 0x80000000) | INF
    return ref_rtz(ref_value(x) * ref_value(y))


@given(lanes, lanes)
def test_fadd_fsub_fmul_against_exact_arithmetic(a, b):
    fadd, fsub, fmul = run_add("fadd", a, b), run_add("fsub", a, b), run_mul("fmul", a, b)
    for i, (x, y) in enumerate(zip(a, b)):
        r = ref_fadd(x, y)
        assert fadd[0][i] == r, (hex(x), hex(y))
        assert fadd[1][i] == int(0 < r < 0x80000000)  # vc4asm: C = result > 0
        r = ref_fadd(x, y ^ 0x80000000)
        assert fsub[0][i] == r, (hex(x), hex(y))
        assert fsub[1][i] == int(0 < r < 0x80000000)
        assert fmul[0][i] == ref_fmul(x, y), (hex(x), hex(y))
        assert fmul[1][i] == 0


# Edges of the row functions' common-case ranges (alu._ordinary_add / _ordinary_mul): the
# smallest magnitude inside, its float32 neighbour below (outside), the largest inside and
# its neighbour above (outside).  A row with one lane outside takes the general path.
ADD_EDGES = [0x0D800000, 0x0D7FFFFF, 0x717FFFFF, 0x71800000]    # 2**-100, 2**100
MUL_EDGES = [0x20000000, 0x1FFFFFFF, 0x5EFFFFFF, 0x5F000000]    # 2**-63, 2**63


def _row_operands(seed: int, lo: int, hi: int, edges: List[int]):
    """Rows of operands with exponent fields in [lo, hi] (all lanes inside the common-case
    range), near-cancelling pairs among them, and rows where one lane is an edge value."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(48):
        a = (rng.integers(lo, hi + 1, 16) << 23) | rng.integers(0, 1 << 23, 16)
        gap = rng.integers(0, 3 if k % 2 else 40, 16)
        b = (np.clip((a >> 23) - gap, lo, hi) << 23) | rng.integers(0, 1 << 23, 16)
        if k % 3 == 0:
            b = a + rng.integers(-2, 3, 16)           # the same magnitude, nearly: cancellation
        a |= rng.integers(0, 2, 16) << 31
        b |= rng.integers(0, 2, 16) << 31
        if k >= 32:
            edge = edges[k % 4] | (int(rng.integers(0, 2)) << 31)
            (a if k % 2 else b)[k % 16] = edge
        rows.append((a.astype(np.uint32), b.astype(np.uint32)))
    return rows


def test_common_case_ranges_are_the_documented_ones():
    inside = [True, False, True, False]
    assert [bool(alu._ordinary_add(np.uint32(x))) for x in ADD_EDGES] == inside
    assert [bool(alu._ordinary_mul(np.uint32(x))) for x in MUL_EDGES] == inside
    for x in SPECIALS:   # zeros, denormals, infinities, NaNs, FLT_MAX: never the common case
        if exponent(x) in (0, 255) or x & 0x7FFFFFFF == FLT_MAX:
            assert not alu._ordinary_add(np.uint32(x)) and not alu._ordinary_mul(np.uint32(x))


@pytest.mark.skipif(not HAVE_NUMBA, reason="the row functions exist under numba only")
def test_add_rows_fadd_fsub_common_case_and_its_edges():
    fadd, fsub = ADD_OPS_BY_NAME["fadd"].code, ADD_OPS_BY_NAME["fsub"].code
    for a, b in _row_operands(11, 27, 226, ADD_EDGES):
        for op, flip in ((fadd, 0), (fsub, 0x80000000)):
            want = [ref_fadd(int(x), int(y) ^ flip) for x, y in zip(a, b)]
            V = np.zeros((4, 16), np.uint32)
            V[0], V[1] = a, b
            assert alu.add_rows(op, V, 0, 1, 2, 3)
            assert [int(x) for x in V[2]] == want, (op, [hex(int(x)) for x in a], [hex(int(y)) for y in b])
            assert alu.add_rows(op, V, 0, 1, 0, 3)     # the result may overwrite an operand
            assert [int(x) for x in V[0]] == want


@pytest.mark.skipif(not HAVE_NUMBA, reason="the row functions exist under numba only")
def test_mul_rows_fmul_common_case_and_its_edges():
    fmul = MUL_OPS_BY_NAME["fmul"].code
    for a, b in _row_operands(12, 64, 189, MUL_EDGES):
        want = [ref_fmul(int(x), int(y)) for x, y in zip(a, b)]
        V = np.zeros((3, 16), np.uint32)
        V[0], V[1] = a, b
        assert alu.mul_rows(fmul, V, 0, 1, 2)
        assert [int(x) for x in V[2]] == want, ([hex(int(x)) for x in a], [hex(int(y)) for y in b])
        assert alu.mul_rows(fmul, V, 0, 1, 1)          # the result may overwrite an operand
        assert [int(x) for x in V[1]] == want


@given(st.lists(st.floats(-(2.0 ** 100), 2.0 ** 100, width=32), min_size=16, max_size=16),
       st.lists(st.floats(-(2.0 ** 100), 2.0 ** 100, width=32), min_size=16, max_size=16))
def test_float_ops_within_one_ulp_of_numpy(a, b):
    """Sanity against numpy's float32 (round to nearest): truncation is at most 1 ulp off,
    never farther from zero, and the same when numpy's result is exact."""
    fa = np.array(a, np.float32)
    fb = np.array(b, np.float32)
    # normal inputs only (the QPU flushes denormals)
    fa[np.abs(fa) < np.finfo(np.float32).tiny] = 0
    fb[np.abs(fb) < np.finfo(np.float32).tiny] = 0
    for op, ref in (("fadd", fa + fb), ("fsub", fa - fb)):
        got = np.array(run_add(op, fa.view(np.uint32).tolist(), fb.view(np.uint32).tolist())[0], np.uint32)
        got_f = got.view(np.float32)
        for g, r in zip(got_f, ref):
            if abs(r) < np.finfo(np.float32).tiny:
                continue
            assert abs(g) <= abs(r) and (g == r or np.nextafter(g, r) == r or np.nextafter(r, g) == g)
    got = np.array(run_mul("fmul", fa.view(np.uint32).tolist(), fb.view(np.uint32).tolist())[0], np.uint32)
    ref = fa.astype(np.float64) * fb.astype(np.float64)
    for g, r in zip(got.view(np.float32), ref):
        if 1.2e-38 < abs(r) < 3.4e38:
            assert abs(g) <= abs(r) and abs(float(g) - r) <= abs(r) * 2.0 ** -23


def test_float_rounding_is_toward_zero():
    # 2**24 + 3 = 16777219 is not a float32: RTZ gives 16777218, round-to-nearest 16777220
    assert add1("fadd", bits(16777216.0), bits(3.0))[0] == bits(16777218.0)
    assert add1("fadd", bits(-16777216.0), bits(-3.0))[0] == bits(-16777218.0)
    # 1 - 2**-30: just below 1.0, so truncation gives the float below 1.0 (0x3f7fffff)
    assert add1("fadd", bits(1.0), bits(-(2.0 ** -30)))[0] == 0x3F7FFFFF
    assert add1("fsub", bits(1.0), bits(2.0 ** -30))[0] == 0x3F7FFFFF
    # (1 + 2**-23)**2 = 1 + 2**-22 + 2**-46 -> 1 + 2**-22
    assert mul1("fmul", 0x3F800001, 0x3F800001)[0] == 0x3F800002
    # (1 + 2**-23) * (1.75 - 2**-23) = 1.75 + 0.75 * 2**-23 - 2**-46: RN would round up
    assert mul1("fmul", 0x3F800001, 0x3FDFFFFF)[0] == 0x3FE00000
    # itof: 16777219 -> 16777218 (RN would give 16777220); 2**31 - 1 -> 2147483520
    assert add1("itof", 16777219)[0] == bits(16777218.0)
    assert add1("itof", 0x7FFFFFFF)[0] == bits(2147483520.0)
    assert add1("itof", 0x80000000)[0] == bits(-2147483648.0)
    assert add1("itof", (-16777219) & U32)[0] == bits(-16777218.0)


def test_float_special_values():
    # addendum: no denormals (flushed to zero) - VC4C: to +0, and -0 is read as +0
    assert add1("fadd", 1, 1) == (0, 0)
    assert add1("fadd", 0x80000000, 0x80000000) == (0, 0)
    assert add1("fadd", 0x00800000, 0x807FFFFF) == (0x00800000, 1)
    assert add1("fsub", 0x00800001, 0x00800000) == (0, 0)         # 2**-149 result -> +0
    assert mul1("fmul", bits(2.0 ** -100), bits(-(2.0 ** -30)))[0] == 0
    assert add1("fadd", bits(-1.0), bits(1.0)) == (0, 0)          # exact zero is +0
    # addendum: "0.0 + NaN = +Inf"; NaN patterns act as infinities of their sign
    assert add1("fadd", 0, 0x7FC00000) == (INF, 1)
    assert add1("fadd", 0, 0xFFC00000) == (NINF, 0)
    assert add1("fadd", INF, bits(-1e38)) == (INF, 1)
    assert add1("fsub", bits(5.0), 0x7FC00000) == (NINF, 0)       # VC4C: x - NaN -> -Inf
    assert add1("fadd", INF, NINF) == (NINF, 0)                    # second operand wins
    assert add1("fsub", INF, INF) == (NINF, 0)
    assert add1("fadd", 0xFFC00000, INF) == (INF, 1)
    assert mul1("fmul", INF, 0) == (0, 0)                           # VC4C: zero beats inf/NaN
    assert mul1("fmul", 0x7FC00000, bits(-2.0)) == (NINF, 0)
    assert mul1("fmul", NINF, NINF) == (INF, 0)
    # overflow under round-toward-zero stays finite
    assert add1("fadd", FLT_MAX, FLT_MAX) == (FLT_MAX, 1)
    assert mul1("fmul", bits(-1e30), bits(1e30))[0] == 0xFF7FFFFF


def _min_key(b: int) -> int:
    mag = b & 0x7FFFFFFF
    return -mag if b & 0x80000000 else mag


@given(lanes, lanes)
def test_fmin_fmax_family(a, b):
    res = {op: run_add(op, a, b) for op in ("fmin", "fmax", "fminabs", "fmaxabs")}
    for i, (x, y) in enumerate(zip(a, b)):
        mx, my = x & 0x7FFFFFFF, y & 0x7FFFFFFF
        # fminabs/fmaxabs: magnitudes, sign cleared, C = |a| > |b| (vc4asm, VC4C "NaN > Inf")
        assert res["fminabs"][0][i] == min(mx, my) and res["fminabs"][1][i] == int(mx > my)
        assert res["fmaxabs"][0][i] == max(mx, my) and res["fmaxabs"][1][i] == int(mx > my)
        if exponent(x) == 0 and exponent(y) == 0:
            gt = mx > my  # VC4C: two zero/denormal operands compare by magnitude
            assert res["fmin"][1][i] == int(gt) and res["fmax"][1][i] == int(gt)
            assert res["fmin"][0][i] in (x, y) and res["fmax"][0][i] in (x, y)
            if mx != my:
                assert res["fmin"][0][i] == (y if gt else x)
                assert res["fmax"][0][i] == (x if gt else y)
            continue
        kx, ky = _min_key(x), _min_key(y)
        assert res["fmin"][1][i] == int(kx > ky) and res["fmax"][1][i] == int(kx > ky)
        if kx != ky:
            assert res["fmin"][0][i] == (x if kx < ky else y)
            assert res["fmax"][0][i] == (x if kx > ky else y)
        # for ordinary numbers this is IEEE min/max (py-videocore test_float_ops, on a Pi)
        if 0 < exponent(x) < 255 and 0 < exponent(y) < 255:
            assert flt(res["fmin"][0][i]) == min(flt(x), flt(y))
            assert flt(res["fmax"][0][i]) == max(flt(x), flt(y))


def test_fmin_fmax_special_cases():
    assert add1("fmax", 0, 0x80000000) == (0x80000000, 0)   # VC4C: zeros equal, fmax -> second
    assert add1("fmax", 0x80000000, 0) == (0, 0)
    assert add1("fmin", 0x80000000, 0) == (0x80000000, 0)   # fmin -> first
    assert add1("fmin", 0x7FC00000, INF) == (INF, 1)         # NaN > Inf
    assert add1("fmin", 0xFFC00000, NINF) == (0xFFC00000, 0)  # -NaN < -Inf
    assert add1("fmax", 0x7FC00000, bits(1.0)) == (0x7FC00000, 1)
    assert add1("fmin", 0x00000005, 0x80000003) == (0x80000003, 1)  # denormals by magnitude
    assert add1("fmin", 5, bits(1.0)) == (5, 0)              # no flush: operand bits selected
    assert add1("fmaxabs", bits(-3.0), bits(2.0)) == (bits(3.0), 1)
    assert add1("fminabs", bits(-3.0), bits(2.0)) == (bits(2.0), 1)


@given(st.lists(st.floats(-2.0 ** 31, 2.0 ** 31, width=32, exclude_max=True), min_size=16, max_size=16))
def test_ftoi_truncates(values):
    # py-videocore tests/test_alu.py test_type_conv (on a Pi): X.astype('int32') == ftoi(X)
    f = np.array(values, np.float32)
    out, carry = run_add("ftoi", f.view(np.uint32).tolist())
    for g, x in zip(out, f):
        expect = 0 if abs(x) < np.finfo(np.float32).tiny else int(np.trunc(x))
        assert g == expect & U32 and not any(carry)


def test_ftoi_out_of_range():
    # VC4C src/asm/OpCodes.cpp OP_FTOI: [INT_MIN, UINT_MAX] convert, +-FLT_MAX -> INT_MIN, else 0
    assert add1("ftoi", bits(2.0 ** 31))[0] == 0x80000000
    assert add1("ftoi", bits(3e9))[0] == 3000000000
    assert add1("ftoi", bits(-(2.0 ** 31)))[0] == 0x80000000
    assert add1("ftoi", bits(-2147483904.0))[0] == 0
    assert add1("ftoi", bits(2.0 ** 32))[0] == 0
    assert add1("ftoi", bits(1e20))[0] == 0
    assert add1("ftoi", FLT_MAX)[0] == 0x80000000 and add1("ftoi", 0xFF7FFFFF)[0] == 0x80000000
    assert add1("ftoi", INF)[0] == 0 and add1("ftoi", 0x7FC00000)[0] == 0
    assert add1("ftoi", bits(-2.9))[0] == (-2) & U32
    assert add1("ftoi", 0x807FFFFF)[0] == 0


# ----------------------------------------------------------------------------- flags

def test_set_flags_respects_mask():
    out = vec([0, 0x80000000, 5, U32] * 4)
    carry = np.array([1, 0] * 8, np.uint8)
    mask = np.array([1] * 8 + [0] * 8, np.uint8)
    z, n, c = (np.full(16, 9, np.uint8) for _ in range(3))
    alu.set_flags(out, carry, mask, z, n, c)
    assert z[:8].tolist() == [1, 0, 0, 0] * 2          # -0.0 (0x80000000) is not zero
    assert n[:8].tolist() == [0, 1, 0, 1] * 2
    assert c[:8].tolist() == [1, 0] * 4
    assert z[8:].tolist() == [9] * 8 and n[8:].tolist() == [9] * 8 and c[8:].tolist() == [9] * 8


# ----------------------------------------------------------------------------- unpack

def half_bits(x: float) -> int:
    return int(np.array([x], np.float16).view(np.uint16)[0])


def unpack(mode: str, x, float_consumer: int = 0, r4: bool = False) -> List[int]:
    out = np.zeros(16, np.uint32)
    code = UNPACK_BY_TEXT[mode] if mode else 0
    if r4:
        alu.unpack_r4(code, vec(x), out)
    else:
        alu.unpack_a(code, vec(x), float_consumer, out)
    return [int(v) for v in out]


def test_unpack_integer_modes():
    x = 0x8A7B6C5D
    assert unpack("", [x])[0] == x
    assert unpack("16a", [x])[0] == 0x00006C5D
    assert unpack("16b", [x])[0] == 0xFFFF8A7B       # sign-extended int16
    assert unpack("8dr", [x])[0] == 0x8A8A8A8A
    assert [unpack(m, [x])[0] for m in ("8a", "8b", "8c", "8d")] == [0x5D, 0x6C, 0x7B, 0x8A]
    assert unpack("8dr", [x], 1)[0] == 0x8A8A8A8A     # 8dr never converts
    assert unpack("8dr", [x], r4=True)[0] == 0x8A8A8A8A


@given(st.lists(st.integers(0, 0xFFFF), min_size=16, max_size=16))
def test_unpack_float16(halves):
    lo = unpack("16a", halves, 1)
    hi = unpack("16b", [h << 16 | 0x1234 for h in halves], 1)
    r4 = unpack("16a", halves, r4=True)
    for h, a, b, c in zip(halves, lo, hi, r4):
        assert a == b == c
        e = (h >> 10) & 0x1F
        if e == 0:
            assert a == (h & 0x8000) << 16          # half zero/denormal -> signed zero
        elif e == 31:
            assert exponent(a) == 255 and a >> 31 == h >> 15
        else:
            assert flt(a) == float(np.array([h], np.uint16).view(np.float16)[0])
    assert unpack("16a", [half_bits(1.5)], 1)[0] == bits(1.5)   # 0x3e00 -> 1.5


def test_unpack_colour_to_float():
    for byte in range(256):
        x = 0x01000304 | (byte << 16)
        got = flt(unpack("8c", [x], 1)[0])
        exact = Fraction(byte, 255)
        # truncated to float32: not above the exact value, less than one float32 ulp below
        assert Fraction(got) <= exact and exact - Fraction(got) < Fraction(got or 1) * Fraction(1, 2 ** 23)
        assert unpack("8c", [x], r4=True)[0] == bits(got)
        assert unpack("8c", [x], 0)[0] == byte
    assert unpack("8a", [0xFF], 1)[0] == bits(1.0) and unpack("8a", [0x00], 1)[0] == 0


# ----------------------------------------------------------------------------- regfile-A pack

def pack(mode: str, value, old=0x11223344, float_result=0, op=-1, a=0, b=0) -> int:
    out = np.zeros(16, np.uint32)
    code = PACK_A_BY_TEXT[mode] if mode else 0
    alu.pack_a(code, vec([value]), vec([old]), float_result, op, vec([a]), vec([b]), out)
    return int(out[0])


def test_pack_a_integer_modes_keep_other_bytes():
    v = 0xCAFEBABE
    assert pack("", v) == v
    assert pack("16a", v) == 0x1122BABE
    assert pack("16b", v) == 0xBABE3344
    assert pack("8888", v) == 0xBEBEBEBE
    assert [pack(m, v) for m in ("8a", "8b", "8c", "8d")] == [0x112233BE, 0x1122BE44, 0x11BE3344, 0xBE223344]
    # saturating variants read the value as a signed integer
    assert pack("16as", 40000) == 0x11227FFF and pack("16bs", (-40000) & U32) == 0x80003344
    assert pack("16as", 1234) == 0x112204D2
    assert pack("8888s", 300) == 0xFFFFFFFF and pack("8888s", U32) == 0
    assert pack("8bs", 77) == 0x11224D44 and pack("8ds", (-5) & U32) == 0x00223344
    assert pack("32s", v) == v                            # not add/sub: unchanged (vc4asm)


def test_pack_32s_add_sub():
    add, sub = ADD_OPS_BY_NAME["add"].code, ADD_OPS_BY_NAME["sub"].code
    imax, imin = 0x7FFFFFFF, 0x80000000

    def p32(op, a, b):
        wrapped = (a + b if op == add else a - b) & U32
        return pack("32s", wrapped, op=op, a=a, b=b)

    # vc4asm extensions.html: add clamps to [-2**31, 2**31-1]
    assert p32(add, imax, 1) == imax and p32(add, imin, U32) == imin and p32(add, 5, 7) == 12
    # sub clamps to [-2**31-1, 2**31]: INT_MAX - INT_MIN -> INT_MIN, INT_MIN - INT_MAX -> INT_MAX (VC4C)
    assert p32(sub, imax, imin) == imin and p32(sub, imin, imax) == imax
    assert p32(sub, imax, U32) == imin                      # 2**31 wraps to the same pattern
    assert p32(sub, 3, 5) == (-2) & U32


@given(st.integers(-(2 ** 31), 2 ** 31 - 1))
def test_pack_32s_doubling_like_py_videocore(x):
    # py-videocore tests/test_packunpack.py test_pack_regA_int_sat (on a Pi): iadd(ra0.pack('32 sat'), x, x)
    add = ADD_OPS_BY_NAME["add"].code
    xs = x & U32
    assert pack("32s", (2 * x) & U32, op=add, a=xs, b=xs) == max(-(2 ** 31), min(2 ** 31 - 1, 2 * x)) & U32
    if -(2 ** 15) <= x < 2 ** 15:
        h = pack("16as", (2 * x) & U32, old=0, op=add, a=xs, b=xs)
        assert h == max(-(2 ** 15), min(2 ** 15 - 1, 2 * x)) & 0xFFFF


def test_pack_after_32_bit_overflow_saturates_first():
    # VC4C OpCodes.h PACK_32_16A ("Tests have shown"): overflowing add/sub results are saturated
    # to 32 bits before packing; 16-bit packs of 0x7fffffff/0x80000000 then give 0x7fff/0x8000.
    add = ADD_OPS_BY_NAME["add"].code
    imax = 0x7FFFFFFF
    wrapped = (imax + imax) & U32
    assert pack("16a", wrapped, op=add, a=imax, b=imax) == 0x11227FFF
    assert pack("16b", 0, op=add, a=0x80000000, b=0x80000000) == 0x80003344
    assert pack("8a", wrapped, op=add, a=imax, b=imax) == 0x112233FF
    assert pack("8as", wrapped, op=add, a=imax, b=imax) == 0x112233FF   # not 0 as wrapping would give
    assert pack("16a", 0x7FFFFFFF, op=add, a=0x7FFFFFFE, b=1) == 0x1122FFFF  # no overflow: truncated


@given(st.floats(width=32, allow_nan=False))
def test_pack_float16_rounds_away_from_zero(x):
    """VC4C OpCodes.cpp PACK_32_16A ("Tests have shown"): away-from-zero rounding, overflow and
    inf/NaN -> +-inf, +-0 and half denormals -> +0; other half keeps the old contents."""
    xb = bits(x)
    got = pack("16a", xb, old=0xABCD0000, float_result=1)
    if math.isinf(x):
        assert got == 0xABCD0000 | (xb >> 16 & 0x8000) | 0x7C00
        return
    assert got >> 16 == 0xABCD
    h = got & 0xFFFF
    assert pack("16as", xb, old=0xABCD0000, float_result=1) == got
    assert pack("16b", xb, old=0x0000ABCD, float_result=1) == (h << 16) | 0xABCD
    hv = float(np.array([h], np.uint16).view(np.float16)[0])
    xv = Fraction(x) if exponent(xb) != 0 else Fraction(0)
    if xv == 0 or abs(xv) < Fraction(2) ** -14 and h == 0:
        assert h == 0
        return
    if h & 0x7FFF == 0x7C00:
        assert abs(xv) > Fraction(65504) and (h >> 15) == (xb >> 31)
        return
    assert (h >> 15) == (xb >> 31)
    assert abs(Fraction(hv)) >= abs(xv)                      # away from zero...
    below = np.nextafter(np.float16(abs(hv)), np.float16(0))
    assert Fraction(float(below)) < abs(xv)                  # ...by less than one step


def test_pack_float16_examples():
    assert pack("16a", bits(1.5), old=0, float_result=1) == 0x3E00        # IEEE binary16 of 1.5
    assert pack("16a", 0x3F800001, old=0, float_result=1) == 0x3C01       # 1 + 2**-23 rounds up
    assert pack("16a", bits(-1.0000001), old=0, float_result=1) == 0xBC01
    assert pack("16a", bits(65504.0), old=0, float_result=1) == 0x7BFF
    assert pack("16a", bits(65505.0), old=0, float_result=1) == 0x7C00     # rounds away -> inf
    assert pack("16a", bits(-1e10), old=0, float_result=1) == 0xFC00
    assert pack("16a", 0x80000000, old=0, float_result=1) == 0             # -0 -> +0
    assert pack("16a", bits(2.0 ** -20), old=0, float_result=1) == 0       # half denormal -> +0
    assert pack("16a", 0xFFC00000, old=0, float_result=1) == 0xFC00        # NaN -> -inf
    assert pack("8a", bits(1.0), float_result=1) == 0x11223300             # 8-bit: integer bits


# ----------------------------------------------------------------------------- mul colour pack

def pmul(mode: str, value: int, old: int = 0x11223344) -> int:
    out = np.zeros(16, np.uint32)
    alu.pack_mul(PACK_MUL_BY_TEXT[mode] if mode else 0, vec([value]), vec([old]), out)
    return int(out[0])


@given(st.floats(width=32, allow_nan=False))
def test_pack_mul_colour(x):
    # guide p.30: c = sat[round(f * 255)]; py-videocore test_pack_mul: saturates, byte placement
    if abs(x) < np.finfo(np.float32).tiny:
        c = 0
    elif math.isinf(x):
        c = 255 if x > 0 else 0
    else:
        c = max(0, min(255, math.floor(Fraction(x) * 255 + Fraction(1, 2))))
    xb = bits(x)
    assert pmul("8888c", xb) == c * 0x01010101
    assert pmul("8ac", xb) == 0x11223300 | c
    assert pmul("8bc", xb) == 0x11220044 | c << 8
    assert pmul("8cc", xb) == 0x11003344 | c << 16
    assert pmul("8dc", xb) == 0x00223344 | c << 24


def test_pack_mul_examples():
    assert pmul("8ac", bits(0.5)) == 0x11223380      # 127.5 -> 128
    assert pmul("8dc", bits(1.0)) == 0xFF223344
    assert pmul("8888c", INF) == U32 and pmul("8888c", NINF) == 0
    assert pmul("", 0x12345678) == 0x12345678
    assert PACK_MUL_BY_TEXT["8bc"] == 5                # errata: code 5 is 8b, not 8a


# ----------------------------------------------------------------------------- SFU

SFU_IN = [0.0, 1.0, 2.0, 3.141593, 2.718282, 1e2, 1e3, 1e5, 0.5, 0.25, 0.125, -1.0, -2.0, -0.5, -1e5, -3.141593]


# Hardware results measured by VC4C's author (doe300/VC4C, "sfu_accuracy"; a copy is in the
# team's reference folder as VC4C-sfu_accuracy.txt): the SFU applied to the inputs of row "In",
# as printed there (7 significant digits).  Kept here so the tests need no file outside the repo.
MEASURED_SFU = {
    "In": [
        0.000000e+00, 1.000000e+00, 2.000000e+00, 3.141593e+00,
        2.718282e+00, 1.000000e+02, 1.000000e+03, 1.000000e+05,
        5.000000e-01, 2.500000e-01, 1.250000e-01, -1.000000e+00,
        -2.000000e+00, -5.000000e-01, -1.000000e+05, -3.141593e+00,
    ],
    "recip/recip": [
        0.000000e+00, 1.000000e+00, 2.000183e+00, 3.141602e+00,
        2.718323e+00, 1.000039e+02, 9.999844e+02, 1.000000e+05,
        5.000458e-01, 2.500229e-01, 1.250114e-01, -1.000000e+00,
        -2.000183e+00, -5.000458e-01, -1.000000e+05, -3.141602e+00,
    ],
    "recip/rsqrt": [
        0.000000e+00, 1.000183e+00, 2.000263e+00, 3.141401e+00,
        2.718352e+00, 1.000000e+02, 9.999553e+02, 9.999923e+04,
        5.000658e-01, 2.500458e-01, 1.250165e-01, 1.000183e+00,
        2.000263e+00, 5.000658e-01, 9.999923e+04, 3.141401e+00,
    ],
    "exp": [
        1.000031e+00, 2.000061e+00, 4.000122e+00, 8.825195e+00,
        6.581055e+00, 1.267689e+30, float("inf"), float("inf"),
        1.414246e+00, 1.189240e+00, 1.090546e+00, 4.999847e-01,
        2.499924e-01, 7.071075e-01, 0.000000e+00, 1.133175e-01,
    ],
    "log": [
        float("-inf"), 0.000000e+00, 1.000000e+00, 1.651428e+00,
        1.442627e+00, 6.643829e+00, 9.965729e+00, 1.660959e+01,
        -9.999847e-01, -1.999985e+00, -2.999985e+00, 0.000000e+00,
        1.000000e+00, -9.999847e-01, 1.660959e+01, 1.651428e+00,
    ],
}


def _measured() -> dict:
    """Rows of VC4C's hardware SFU measurements (MEASURED_SFU)."""
    return MEASURED_SFU


def sfu(fn: int, values) -> np.ndarray:
    values = list(values)
    x = np.array((values * 16)[:16], np.float32)  # 16 lanes, repeating short lists
    out = np.zeros(16, np.uint32)
    alu.sfu(fn, x.view(np.uint32), out)
    return out.view(np.float32)


def fmul_f(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(16, np.uint32)
    alu.mul_alu(alu.MUL_FMUL, a.view(np.uint32), b.view(np.uint32), out, np.zeros(16, np.uint8))
    return out.view(np.float32)


def rel_units(got: float, want: float, unit: float) -> float:
    return abs(got - want) / abs(want) / unit


def test_sfu_register_numbering():
    x = np.full(16, 4.0, np.float32)
    for fn, addr in enumerate(range(52, 56)):
        assert np.array_equal(sfu(fn, x).view(np.uint32), sfu(addr, x).view(np.uint32))


def test_sfu_exp_matches_hardware():
    m = _measured()
    assert np.allclose(m["In"], SFU_IN, rtol=1e-6)
    got = sfu(2, SFU_IN)
    for x, g, w in zip(SFU_IN, got, m["exp"]):
        if w in (0.0, math.inf):
            assert g == w
        elif x >= 0:
            assert float(f"{g:.6e}") == w, x        # exact to the 7 printed digits
        else:
            assert rel_units(g, w, 2.0 ** -15) <= 1.01, x
    # measured minimum accuracy: 11 bits
    assert all(rel_units(g, 2.0 ** x, 2.0 ** -11) <= 1 for x, g in zip(SFU_IN[:6], got[:6]))


def test_sfu_log_matches_hardware():
    m = _measured()
    got = sfu(3, SFU_IN)
    for x, g, w in zip(SFU_IN, got, m["log"]):
        if w == -math.inf:
            assert g == -math.inf
        elif math.log2(abs(x)).is_integer():
            assert float(f"{g:.6e}") == w, x        # log(0.5) = -1 + 2**-16 exactly as measured
        else:
            assert abs(g - w) <= 2.5 * 2.0 ** -16, x
        if x != 0:
            assert abs(g - math.log2(abs(x))) <= 2.0 ** -12 * max(1.0, abs(math.log2(abs(x))))


def test_sfu_recip_and_recipsqrt_match_hardware_round_trips():
    m = _measured()
    x = np.array(SFU_IN, np.float32)
    rr = sfu(0, sfu(0, x))                     # the measured row is recip(recip(x))
    q = sfu(1, x)
    rs = sfu(0, fmul_f(q, q))                  # assumed: recip(rsqrt(x) * rsqrt(x)) ~ |x|
    assert rr[0] == 0.0 and rs[0] == 0.0       # recip(recip(0)) = recip(inf) = 0
    for i in range(1, 16):
        assert rel_units(rr[i], m["recip/recip"][i], 2.0 ** -15) <= 3.5, SFU_IN[i]
        assert rel_units(rr[i], m["recip/recip"][i], 2.0 ** -10) <= 1     # stated: 10 bits
        assert rel_units(rs[i], m["recip/rsqrt"][i], 2.0 ** -15) <= 6.5, SFU_IN[i]
        assert rel_units(rs[i], m["recip/rsqrt"][i], 2.0 ** -12) <= 1     # stated: 12 bits


def test_sfu_special_inputs():
    # py-videocore APPENDIX.rst / tests/test_sfu.py (on a Pi): RECIP(0), RECIPSQRT(0) = inf,
    # RECIPSQRT(x) = 1/sqrt(|x|), LOG(x) = log2(|x|)
    got = {fn: sfu(fn, [0.0, -0.0, 1e-40, -4.0, 4.0, np.inf, -np.inf, 1e38] * 2)
           for fn in range(4)}
    assert np.all(np.isposinf(got[0][:3])) and np.all(np.isposinf(got[1][:3]))
    assert got[1][3] == got[1][4] == 0.5 and got[3][3] == got[3][4] == 2.0
    assert got[0][3] == -0.25 and got[0][5] == 0 and got[1][5] == 0
    assert got[2][5] == np.inf and got[2][6] == 0 and np.isneginf(got[3][0]) and got[3][5] == np.inf
    assert got[0][7] == 0.0                                      # 1/1e38 is below 2**-126: +0
    assert sfu(2, [128.0])[0] == np.inf and sfu(2, [-130.0])[0] == 0.0


@given(st.lists(st.floats(2.0 ** -100, 2.0 ** 100, width=32), min_size=16, max_size=16), st.booleans())
def test_sfu_precision_model(values, negate):
    x = np.array(values, np.float32) * (-1 if negate else 1)
    r, q, lg = sfu(0, x), sfu(1, x), sfu(3, x)
    for xi, ri, qi, li in zip(x.astype(float), r, q, lg):
        # 15 fraction bits: within half a unit of 2**-15 of the exact value
        assert rel_units(ri, 1 / xi, 2.0 ** -16) <= 1.0001
        assert rel_units(qi, 1 / math.sqrt(abs(xi)), 2.0 ** -16) <= 1.0001
        assert (bits(float(ri)) & 0xFF) == 0 and (bits(float(qi)) & 0xFF) == 0
        assert abs(li - math.log2(abs(xi))) <= 4 * 2.0 ** -16
    xe = np.clip(x, -120, 120)
    for xi, ei in zip(xe.astype(float), sfu(2, xe)):
        assert rel_units(ei, 2.0 ** xi, 2.0 ** -15) <= 1.6


# ----------------------------------------------------------------------------- lane movement

@given(ints, st.integers(0, 15))
def test_rotations(values, n):
    x = vec(values)
    out = np.zeros(16, np.uint32)
    alu.rotate_full(x, n, out)
    assert np.array_equal(out, np.roll(x, n))          # py-videocore test_rotate: element 0 -> n
    alu.rotate_quads(x, n, out)
    assert np.array_equal(out, np.concatenate([np.roll(x[q:q + 4], n % 4) for q in range(0, 16, 4)]))
    y = x.copy()
    alu.rotate_full(y, n, y)                              # in place is allowed
    assert np.array_equal(y, np.roll(x, n))


def test_quad_rotation_example_from_addendum():
    out = np.zeros(16, np.uint32)
    alu.rotate_quads(np.arange(16, dtype=np.uint32), 1, out)
    assert out.tolist() == [3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14]


def test_r5_writes():
    x = np.arange(100, 116, dtype=np.uint32)
    out = np.zeros(16, np.uint32)
    alu.r5_quad(x, out)
    assert out.tolist() == [100] * 4 + [104] * 4 + [108] * 4 + [112] * 4
    alu.r5_rep(x, out)
    assert out.tolist() == [100] * 16


@given(st.lists(st.integers(-2, 1), min_size=16, max_size=16), st.lists(st.integers(0, 3), min_size=16, max_size=16))
def test_ldi_per_element(signed_values, unsigned_values):
    def encode(values):
        ls = sum((v & 1) << i for i, v in enumerate(values))
        ms = sum(((v >> 1) & 1) << i for i, v in enumerate(values))
        return ms << 16 | ls
    out = np.zeros(16, np.uint32)
    alu.ldi_per_element(encode(signed_values), 1, out)
    assert out.tolist() == [v & U32 for v in signed_values]
    alu.ldi_per_element(encode(unsigned_values), 0, out)
    assert out.tolist() == unsigned_values


def test_flush_denormals():
    x = vec([1, 0x80000000, 0x807FFFFF, 0x00800000, INF, 0x7FC00000, bits(-2.0), 0])
    out = np.zeros(16, np.uint32)
    alu.flush_denormals(x, out)
    assert out[:8].tolist() == [0, 0, 0, 0x00800000, INF, 0x7FC00000, bits(-2.0), 0]


# ----------------------------------------------------------------------------- both execution paths

_BATTERY = r"""
import json, sys
import numpy as np
from qpu.emulator import alu
rng = np.random.default_rng(1234)
special = np.array([0, 0x80000000, 1, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F7FFFFF, 0x3F800000,
                    0xBF800000, 0x00800000, 0x4B800000, 0xCF000000, 0x4F800000, 0x33800000, 12, 0xFFFFFFFF],
                   np.uint32)
a = np.concatenate([special, rng.integers(0, 2**32, 48, dtype=np.uint64).astype(np.uint32)])
b = np.concatenate([rng.integers(0, 2**32, 48, dtype=np.uint64).astype(np.uint32), special[::-1]])
res = []
o = np.zeros(16, np.uint32); c = np.zeros(16, np.uint8)
for k in range(0, 64, 16):
    x, y = a[k:k + 16], b[k:k + 16]
    for op in range(32):
        o[:] = 0; c[:] = 0; alu.add_alu(op, x, y, o, c); res += o.tolist() + c.tolist()
    for op in range(8):
        o[:] = 0; c[:] = 0; alu.mul_alu(op, x, y, o, c); res += o.tolist() + c.tolist()
    for m in range(8):
        for fc in (0, 1):
            alu.unpack_a(m, x, fc, o); res += o.tolist()
        alu.unpack_r4(m, x, o); res += o.tolist()
    for m in range(16):
        for fr in (0, 1):
            for op in (-1, alu.ADD_ADD, alu.ADD_SUB):
                alu.pack_a(m, x, y, fr, op, x, y, o); res += o.tolist()
        alu.pack_mul(m, x, y, o); res += o.tolist()
    for fn in range(4):
        alu.sfu(fn, x, o); res += o.tolist()
    alu.rotate_full(x, k + 3, o); res += o.tolist()
    alu.rotate_quads(x, k + 1, o); res += o.tolist()
    alu.r5_quad(x, o); res += o.tolist()
    alu.r5_rep(x, o); res += o.tolist()
    alu.ldi_per_element(int(x[0]), k & 1, o); res += o.tolist()
    alu.flush_denormals(x, o); res += o.tolist()
    z = np.zeros(16, np.uint8); n = z.copy(); cc = z.copy()
    alu.set_flags(x, c, y & 1, z, n, cc); res += z.tolist() + n.tolist() + cc.tolist()
json.dump([int(v) for v in res], sys.stdout)
"""


def _battery(no_numba: bool) -> List[int]:
    env = dict(os.environ)
    env["QPU_EMULATOR_NO_NUMBA"] = "1" if no_numba else "0"
    done = subprocess.run([sys.executable, "-c", _BATTERY], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed: only the plain-Python path exists")
def test_numba_and_plain_python_agree():
    assert _battery(no_numba=False) == _battery(no_numba=True)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_py_func_agrees_with_compiled():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2 ** 32, 16, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2 ** 32, 16, dtype=np.uint64).astype(np.uint32)
    for op in range(32):
        o1, o2 = np.zeros(16, np.uint32), np.zeros(16, np.uint32)
        c1, c2 = np.zeros(16, np.uint8), np.zeros(16, np.uint8)
        alu.add_alu(op, a, b, o1, c1)
        alu.add_alu.py_func(op, a, b, o2, c2)
        assert np.array_equal(o1, o2) and np.array_equal(c1, c2), op
    for fn in range(4):
        o1, o2 = np.zeros(16, np.uint32), np.zeros(16, np.uint32)
        alu.sfu(fn, a, o1)
        alu.sfu.py_func(fn, a, o2)
        assert np.array_equal(o1, o2)
