"""Bulk check of the compiled fmul lane code against an independent numpy reference.

The emulator's fast fmul (alu._fmul32, used by mul_alu, mul_rows and the loop's fmul_row)
truncates the exact double product to float32 precision.  The reference here rounds the same
exact product to nearest with numpy and steps back toward zero with ``np.nextafter`` where that
went away from zero, then applies the QPU rules the hypothesis tests in test_emulator_alu.py
check against exact rational arithmetic: an operand with exponent 0 gives +0 (VC4C), exponent
255 gives an infinity of the product's sign, results below 2**-126 are +0 and finite results
beyond FLT_MAX are +-FLT_MAX.  The operands are biased to the places where rounding and range
limits matter: products near 2**-126 and 2**128, mantissas with few bits (exact products) and
all-ones mantissas.
"""

from __future__ import annotations

import numpy as np
import pytest

from qpu.emulator import alu
from qpu.emulator.jit import HAVE_NUMBA
from qpu.isa.ops import MUL_OPS_BY_NAME

FMUL = MUL_OPS_BY_NAME["fmul"].code
MIN_NORMAL = 2.0 ** -126
FLT_MAX = float(np.finfo(np.float32).max)


def reference_fmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """QPU fmul of uint32 patterns, vectorised numpy: round to nearest, then toward zero."""
    ea = (a >> 23) & 0xFF
    eb = (b >> 23) & 0xFF
    with np.errstate(all="ignore"):
        p = a.view(np.float32).astype(np.float64) * b.view(np.float32).astype(np.float64)  # exact
        r = p.astype(np.float32)
        away = np.abs(r.astype(np.float64)) > np.abs(p)
        r = np.where(away, np.nextafter(r, np.float32(0)), r)
        r = np.where(np.abs(p) >= 2.0 ** 128, np.copysign(np.float32(FLT_MAX), p).astype(np.float32), r)
        r = np.where(np.abs(r.astype(np.float64)) < MIN_NORMAL, np.float32(0), r)
    out = r.astype(np.float32).view(np.uint32).copy()
    special = (ea == 255) | (eb == 255)
    out[special] = ((a[special] ^ b[special]) & 0x80000000) | 0x7F800000
    out[(ea == 0) | (eb == 0)] = 0
    return out


def edge_operands(n: int, seed: int):
    rng = np.random.default_rng(seed)
    ea = rng.integers(0, 256, n)
    # exponent sums around the bottom (2**-126) and the top (2**128) of the float32 range
    target = np.where(rng.random(n) < 0.5, 1, 255) + rng.integers(-3, 4, n)
    eb = (target - ea + 127) % 256
    ma = rng.integers(0, 1 << 23, n).astype(np.uint32)
    mb = rng.integers(0, 1 << 23, n).astype(np.uint32)
    few = rng.random(n) < 0.3
    ma[few] &= np.uint32(0x7F0000)
    mb[few] &= np.uint32(0x7F0001)
    ma[rng.random(n) < 0.1] = 0x7FFFFF
    sa = rng.integers(0, 2, n).astype(np.uint32) << 31
    sb = rng.integers(0, 2, n).astype(np.uint32) << 31
    a = sa | (ea.astype(np.uint32) << 23) | ma
    b = sb | (eb.astype(np.uint32) << 23) | mb
    return a.astype(np.uint32), b.astype(np.uint32)


SPECIAL = np.array([0, 0x80000000, 1, 0x807FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000,
                    0xFF800000, 0x7FC00000, 0xFFC00001, 0x3F800000, 0xBF800000, 0x3F7FFFFF, 0x3F800001, 0x00FFFFFF,
                    0x7F000000, 0x1F800000, 0x20000000, 0x1FFFFFFF, 0x5F800000, 0x5F7FFFFF, 0x60000000], np.uint32)


@pytest.mark.skipif(not HAVE_NUMBA, reason="the fast float lanes exist under numba only")
def test_mul_alu_fmul_matches_reference_in_bulk():
    rng = np.random.default_rng(5)
    parts = [edge_operands(200_000, 6),
             (rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32),
              rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32)),
             (np.repeat(SPECIAL, len(SPECIAL)), np.tile(SPECIAL, len(SPECIAL)))]
    for a, b in parts:
        out = np.zeros_like(a)
        carry = np.ones(len(a), np.uint8)
        alu.mul_alu(FMUL, a, b, out, carry)
        want = reference_fmul(a, b)
        bad = np.nonzero(out != want)[0]
        assert len(bad) == 0, [(hex(a[i]), hex(b[i]), hex(out[i]), hex(want[i])) for i in bad[:5]]
        assert not carry.any()


@pytest.mark.skipif(not HAVE_NUMBA, reason="the fast float lanes exist under numba only")
def test_mul_rows_fmul_matches_reference():
    a, b = edge_operands(16 * 64, 7)
    V = np.zeros((3, 16), np.uint32)
    for k in range(0, len(a), 16):
        V[0], V[1] = a[k:k + 16], b[k:k + 16]
        assert alu.mul_rows(FMUL, V, 0, 1, 2)
        assert (V[2] == reference_fmul(a[k:k + 16], b[k:k + 16])).all()
        assert alu.mul_rows(FMUL, V, 0, 1, 0)          # the result may overwrite an operand
        assert (V[0] == V[2]).all()
