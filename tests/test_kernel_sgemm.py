"""SGEMM kernel (qpu.kernels.sgemm) on the strict emulator, against numpy.

References: numpy's float64 product (random operands, error bound for the QPU's
round-toward-zero float ops) and exact integer products (small integers: every
product and partial sum is exact in float32, so the QPU must match bit for bit).
"""

from __future__ import annotations

import numpy as np
import pytest

from qpu import check
from qpu.kernels.sgemm import (
    DEFAULT_UNROLL,
    TILE_COLS,
    TILE_ROWS,
    default_unroll,
    gflops,
    issue_stats,
    plan_sgemm,
    sgemm,
    sgemm_program,
)
from qpu.runtime import Driver


@pytest.fixture(scope="module")
def drv():
    with Driver(backend="emulator") as d:
        yield d


def _operands(rng, m, n, k, integers=False):
    if integers:
        draw = lambda *shape: rng.integers(-8, 9, size=shape).astype(np.float32)  # noqa: E731
    else:
        draw = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return draw(m, k), draw(k, n), draw(m, n)


def _assert_close(got, a, b, c0, alpha, beta):
    """|got - exact| <= 1e-5 * sqrt(K) * (|alpha| |A||B| + |beta| |C0|), elementwise.

    The bound scales with the magnitude of the summed terms, not of the result, so that
    cancellation does not make it meaningless.  Round-toward-zero adds at most 2**-23
    relative per operation, K * 2**-23 in the worst case (4.3e-5 for K = 363), which
    1e-5 * sqrt(K) covers for the sizes tested (1.9e-4 for K = 363).
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = alpha * (a64 @ b64) + beta * c0.astype(np.float64)
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + abs(beta) * np.abs(c0.astype(np.float64))
    k = a.shape[1]
    bound = 1e-5 * np.sqrt(k) * scale + 1e-30
    err = np.abs(got.astype(np.float64) - exact)
    worst = np.unravel_index(np.argmax(err / bound), err.shape)
    assert np.all(err <= bound), f"error {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"


def _clean(report):
    """The strict emulator raised on any error; also no warning may have been found."""
    assert report is not None
    assert report.hazards == [], [str(h) for h in report.hazards]
    assert report.job.completed
    assert report.job.host_interrupts == 1          # only the first QPU interrupts the host
    assert report.job.semaphores == [0] * 16        # every release was matched


@pytest.mark.parametrize("m,n,k,alpha,beta,n_qpus", [
    (16, 64, 4, 1.0, 0.0, 1),          # exactly one tile, one loop iteration
    (1, 1, 1, 1.0, 0.0, 1),            # smallest: everything is padding but one element
    (20, 70, 37, 0.75, 0.0, 1),        # M, N, K not multiples of the tile / unroll
    (20, 70, 37, -1.25, 0.5, 1),       # beta != 0: the C gather
    (17, 65, 363, 1.0, 0.0, 2),        # K of the reference shape
    (33, 130, 9, 2.0, -1.5, 12),       # more QPUs asked than tiles (9): 9 used
    (48, 256, 6, 1.0, 1.0, 12),        # 12 tiles on 12 QPUs
    (40, 200, 19, 0.5, 0.0, 5),        # uneven tiles per QPU (12 tiles on 5)
])
def test_sgemm_matches_numpy(drv, m, n, k, alpha, beta, n_qpus):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a, b, c0 = _operands(rng, m, n, k)
    c = c0.copy()
    out, report = sgemm(drv, a, b, c, alpha=alpha, beta=beta, n_qpus=n_qpus)
    assert out is c                      # updated in place
    _assert_close(out, a, b, c0, alpha, beta)
    _clean(report)
    assert report.num_qpus == plan_sgemm(m, n, k, n_qpus).n_qpus


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_sgemm_exact_on_integers(drv, beta):
    """Small integers: all products and sums are exact in float32, so any indexing or
    accumulation mistake shows as a wrong value, with no tolerance to hide it."""
    rng = np.random.default_rng(7)
    m, n, k = 35, 150, 101
    a, b, c0 = _operands(rng, m, n, k, integers=True)
    out, report = sgemm(drv, a, b, c0.copy(), alpha=0.5, beta=beta, n_qpus=4)
    expected = 0.5 * (a.astype(np.int64) @ b.astype(np.int64)) + beta * c0.astype(np.int64)
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    _clean(report)


def test_one_and_twelve_qpus_agree_bit_for_bit(drv):
    """A tile's arithmetic does not depend on which QPU computes it."""
    rng = np.random.default_rng(3)
    a, b, c0 = _operands(rng, 50, 300, 45)
    one, _ = sgemm(drv, a, b, c0.copy(), alpha=1.5, beta=-0.25, n_qpus=1)
    twelve, report = sgemm(drv, a, b, c0.copy(), alpha=1.5, beta=-0.25, n_qpus=12)
    np.testing.assert_array_equal(one, twelve)
    assert report.num_qpus == 12
    _clean(report)


@pytest.mark.parametrize("unroll", [1, 2, 3])
def test_other_unrolls(drv, unroll):
    rng = np.random.default_rng(unroll)
    a, b, c0 = _operands(rng, 18, 66, 11)
    out, report = sgemm(drv, a, b, c0.copy(), alpha=1.0, beta=1.0, n_qpus=3, unroll=unroll)
    _assert_close(out, a, b, c0, 1.0, 1.0)
    _clean(report)


def test_beta_zero_ignores_old_c(drv):
    """BLAS: with beta == 0, C is write-only (NaN in it must not leak into the result)."""
    rng = np.random.default_rng(5)
    a, b, _ = _operands(rng, 16, 64, 8)
    c = np.full((16, 64), np.nan, dtype=np.float32)
    out, report = sgemm(drv, a, b, c)
    assert np.isfinite(out).all()
    _assert_close(out, a, b, np.zeros_like(c), 1.0, 0.0)
    _clean(report)


def test_new_output_and_array_likes(drv):
    a = [[1.0, 2.0], [3.0, 4.0]]
    b = np.array([[1, 0, 2], [0, 1, 3]], dtype=np.int32)      # converted to float32
    out, report = sgemm(drv, a, b)
    np.testing.assert_array_equal(out, np.array([[1, 2, 8], [3, 4, 18]], dtype=np.float32))
    assert out.dtype == np.float32
    _clean(report)


def test_no_qpu_work_cases(drv):
    c = np.ones((3, 4), dtype=np.float32)
    out, report = sgemm(drv, np.ones((3, 0)), np.ones((0, 4)), c, beta=3.0)     # K == 0
    assert report is None and np.all(out == 3.0)
    out, report = sgemm(drv, np.ones((3, 5)), np.ones((5, 4)), c, alpha=0.0, beta=0.5)
    assert report is None and np.all(out == 1.5)
    out, report = sgemm(drv, np.ones((0, 5)), np.ones((5, 4)))
    assert report is None and out.shape == (0, 4)


def test_bad_arguments(drv):
    with pytest.raises(ValueError, match="inner sizes"):
        sgemm(drv, np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="pass C"):
        sgemm(drv, np.ones((2, 3)), np.ones((3, 2)), beta=1.0)
    with pytest.raises(ValueError, match="shape"):
        sgemm(drv, np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="float32"):
        sgemm(drv, np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="12 QPUs"):
        sgemm(drv, np.ones((2, 3)), np.ones((3, 2)), n_qpus=13)
    with pytest.raises(ValueError, match="VDW stride"):
        plan_sgemm(16, 20000, 4)
    with pytest.raises(ValueError, match="unroll"):
        sgemm_program(True, 7)


def test_plan_covers_every_tile_once():
    plan = plan_sgemm(100, 1000, 363, n_qpus=12)
    assert (plan.m_pad, plan.n_pad, plan.k_pad) == (112, 1024, 364)
    assert plan.m_pad % TILE_ROWS == 0 and plan.n_pad % TILE_COLS == 0 and plan.k_pad % DEFAULT_UNROLL == 0
    tiles = sorted(t for per_qpu in plan.tiles for t in per_qpu)
    assert tiles == [(i, j) for i in range(7) for j in range(16)]
    sizes = [len(t) for t in plan.tiles]
    assert max(sizes) - min(sizes) <= 1                     # balanced
    assert plan_sgemm(16, 64, 1, n_qpus=12).n_qpus == 1     # never more QPUs than tiles


@pytest.mark.parametrize("beta_zero", [True, False])
@pytest.mark.parametrize("unroll", [1, 2, 4, 6])
def test_static_checker_is_clean(beta_zero, unroll):
    report = check(sgemm_program(beta_zero, unroll))
    assert report.findings == [], [str(f) for f in report.findings]


@pytest.mark.parametrize("beta_zero", [True, False])
def test_default_variants_fit_the_instruction_cache(beta_zero):
    """Addendum cache table: 4 KiB of instruction cache per slice; the default unroll keeps the
    whole kernel within it, and two more k-steps per iteration would not."""
    fits = len(sgemm_program(beta_zero).words) * 8
    assert fits <= 4096
    bigger = len(sgemm_program(beta_zero, default_unroll(beta_zero) + 2).words) * 8
    assert bigger > 4096


def test_loop_instruction_mix(drv):
    """The k loop's 262 instructions are 256 fadd+fmul pairs; with K = 200 they dominate."""
    rng = np.random.default_rng(11)
    a, b, _ = _operands(rng, 32, 128, 200)
    out, report = sgemm(drv, a, b, n_qpus=4)
    stats = issue_stats(report, drv.program(sgemm_program(True)))
    assert stats["instructions"] == report.instructions
    assert stats["fadd_fmul"] > 0.93
    assert stats["dual_issue"] > stats["fadd_fmul"]


@pytest.mark.slow
def test_reference_shape(drv):
    """96x363 @ 363x3072 on 12 QPUs (py-videocore's SGEMM example shape): ~7 M instructions."""
    rng = np.random.default_rng(0)
    a, b, c0 = _operands(rng, 96, 3072, 363)
    out, report = sgemm(drv, a, b, c0.copy(), alpha=1.0, beta=1.0)
    _assert_close(out, a, b, c0, 1.0, 1.0)
    _clean(report)
    assert report.num_qpus == 12
    assert gflops(96, 3072, 363, report.seconds) > 0
