"""GPU_FFT 3.0's unmodified shaders on the emulator (benchmarks/gpu_fft_host.py).

The host-side pieces (twiddle formulas, memory layout, uniforms, parsers) are tested
always.  The end-to-end runs need GPU_FFT itself, which is never part of this
repository: set QPU_USERLAND to a raspberrypi/userland checkout or bare git mirror
(e.g. QPU_USERLAND=/work/.mirror/raspberrypi+userland/repo); they are skipped otherwise.
References: numpy.fft, the accuracy table of gpu_fft.txt and the shader table of
gpu_fft_twiddles.c, both read from that checkout at test time.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from bench_modules import load_benchmark

gfh = load_benchmark("gpu_fft_host")

USERLAND = gfh.UserlandSource.open(os.environ.get("QPU_USERLAND"))
needs_userland = pytest.mark.skipif(USERLAND is None, reason="set QPU_USERLAND to a raspberrypi/userland "
                                                             "checkout or mirror to run GPU_FFT's shaders")


# ----------------------------------------------------------------------------------------------
# Twiddle tables: what the shaders do with them
# ----------------------------------------------------------------------------------------------

def _rotate(base: np.ndarray, step: np.ndarray) -> np.ndarray:
    """The shader's twiddle update (qasm/gpu_fft.qinc ``rotate``): t -= alpha*t - i*beta*t, in float64."""
    t = base[:, 0].astype(np.float64) + 1j * base[:, 1].astype(np.float64)
    alpha = step[:, 0].astype(np.float64)
    beta = step[:, 1].astype(np.float64)
    return t - (alpha * t - 1j * beta * t)


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_step_table_rotates_base_table_to_the_next_angle(size, sign):
    two_pi = sign * 2 * math.pi
    n = 4096
    theta, delta = two_pi / n * 3, two_pi / n * 8
    base = gfh.base_table(size, theta, two_pi)
    step = gfh.step_table(size, delta)
    # the shader pairs lane l of a step table with lane l of a base table; a 64-entry base
    # only ever starts at angle 0 and is not stepped, but the recurrence must hold anyway
    if size == 64:
        return
    got = _rotate(base, step)
    want = gfh.base_table(size, theta + delta, two_pi)
    np.testing.assert_allclose(got.real, want[:, 0], atol=2e-7)
    np.testing.assert_allclose(got.imag, want[:, 1], atol=2e-7)


def test_base_tables_are_unit_twiddles_of_the_codelet():
    # 16-point codelet, 4 radix-2 stages: stage s twiddles are the 2**(s+1)-th roots of unity
    # exp(i*two_pi*m/2**(s+1)), m = 0 .. 2**s - 1, in lanes 2**s .. 2**(s+1)-1 (lane 0 unused)
    two_pi = -2 * math.pi
    tab = gfh.base_table(16, 0.0, two_pi)
    for s in range(4):
        for m in range(1 << s):
            lane = (1 << s) + m
            want = np.exp(1j * two_pi * m / (2 << s))
            assert abs(complex(tab[lane, 0], tab[lane, 1]) - want) < 1e-7
    # a 32-entry table: 16 radix-32 twiddles exp(i*two_pi*k/32 + theta), then the codelet at 2*theta
    theta = 0.01
    tab32 = gfh.base_table(32, theta, two_pi)
    for k in range(16):
        assert abs(complex(*tab32[k]) - np.exp(1j * (two_pi * k / 32 + theta))) < 1e-7
    np.testing.assert_array_equal(tab32[16:], gfh.base_table(16, 2 * theta, two_pi))


def test_step_table_alpha_is_one_minus_cos():
    x = gfh.step_angles(32, 0.001)
    tab = gfh.step_table(32, 0.001)
    np.testing.assert_allclose(tab[:, 0], 1 - np.cos(x), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(tab[:, 1], np.sin(x), rtol=1e-6)


def test_twiddle_sizes_and_direction():
    for log2_n, plan in gfh.PLANS.items():
        shared, unique = gfh.twiddle_tables(log2_n, gfh.FORWARD)
        assert shared.shape == (16 * plan.shared_blocks, 2)
        assert unique.shape == (16 * plan.unique_blocks * gfh.NUM_QPUS, 2)
    fwd, ufwd = gfh.twiddle_tables(10, gfh.FORWARD)
    inv, uinv = gfh.twiddle_tables(10, gfh.INVERSE)
    # inverse twiddles are the complex conjugates of forward ones; step alphas are the same
    np.testing.assert_array_equal(ufwd[:, 0], uinv[:, 0])
    np.testing.assert_array_equal(ufwd[:, 1], -uinv[:, 1])
    # QPU q's unique table starts at angle q * 2 pi / N (lane 0 of the radix-32 part)
    per = 16 * gfh.PLANS[10].unique_blocks
    for q in range(gfh.NUM_QPUS):
        assert abs(complex(*ufwd[q * per]) - np.exp(-2j * math.pi * q / 1024)) < 1e-7


# ----------------------------------------------------------------------------------------------
# Memory layout and uniforms (rules of gpu_fft.c, computed by hand)
# ----------------------------------------------------------------------------------------------

def test_buffer_sizes_leave_a_guard():
    assert gfh.buffer_bytes(8) == 4096            # 2 KB of data -> one page
    assert gfh.buffer_bytes(9) == 8192            # exactly 4 KB of data -> a whole guard page more
    assert gfh.buffer_bytes(12) == 32768 + 4096


def test_layout_and_uniforms():
    code_bytes = 8 * 359
    lay = gfh.make_layout(8, 2, code_bytes)
    assert lay.data == 4096
    assert lay.code == 4096 + 4 * 4096            # 2 jobs x 2 ping-pong buffers of 4 KB
    assert lay.twiddles == lay.code + code_bytes
    assert lay.uniforms == lay.twiddles + 128 * (2 + 8 * 1)
    assert lay.uniforms_per_qpu == 9
    assert lay.control == lay.uniforms + 4 * 8 * 9
    assert lay.size == lay.control + 64
    assert not lay.out_of_place                   # 2 passes: results in place
    assert gfh.make_layout(12, 1, 8).out_of_place  # 3 passes
    bus = 0x40010000
    u = gfh.uniform_streams(lay, bus)
    assert u.shape == (8, 9)
    for q in range(8):
        assert u[q, 0] == bus + lay.twiddles
        assert u[q, 1] == bus + lay.twiddles + 128 * (2 + q)
        assert u[q, 2] == q
        # (input, other ping-pong buffer) per job: header page, then jobs inputs, then jobs partners
        assert list(u[q, 3:7]) == [bus + 4096, bus + 3 * 4096, bus + 2 * 4096, bus + 4 * 4096]
        assert list(u[q, 7:]) == [0, 1 if q == 0 else 0]


def test_launch_choice():
    assert not gfh.uses_mailbox(14, 1)            # 16384 points <= 5 << 12
    assert gfh.uses_mailbox(15, 1)
    assert not gfh.uses_mailbox(11, 10)           # 20480 == 5 << 12
    assert gfh.uses_mailbox(12, 10)


# ----------------------------------------------------------------------------------------------
# Parsers
# ----------------------------------------------------------------------------------------------

def test_parse_shader_hex_ignores_comments():
    text = ("0x00000040, 0xe00217a7, // mov rb_0x40, 0x40\n"
            "0x159e7000, 0x10020827, // mov r0, 0x1234 0xdeadbeef\n")
    words = gfh.parse_shader_hex(text)
    assert words.dtype == np.uint32
    assert list(words) == [0x40, 0xE00217A7, 0x159E7000, 0x10020827]
    with pytest.raises(ValueError):
        gfh.parse_shader_hex("0x1, // odd\n")


def test_table_parsers_on_a_synthetic_table():
    text = ("*** Accuracy ***\n\nlog2(N) |  8    |  9\nppm rms |  0.5  |  0.75\n\n"
            "*** Throughput ***\n\nlog2(N) |   8   |   9\n      1 | 0.5 | 1.5\n     10 | 0.25 | 0.75\n"
            "   FFTW | 2 | 4\n\nlog2(N) |  16  |  17        All times in\n      1 |  7.0 |  17        "
            "milliseconds\n\n*** API ***\n")
    t = gfh.published_times(text)
    assert t[(8, "1")] == pytest.approx(0.5e-3)
    assert t[(9, "10")] == pytest.approx(0.75e-3)
    assert t[(9, "FFTW")] == pytest.approx(4e-3)
    assert t[(17, "1")] == pytest.approx(17e-3)
    assert (16, "10") not in t
    assert gfh.published_accuracy(text) == {8: 0.5, 9: 0.75}


def test_length_names():
    assert [gfh.length_name(k) for k in (8, 9, 10, 17, 22)] == ["256", "512", "1k", "128k", "4096k"]
    with pytest.raises(ValueError):
        gfh.length_name(7)


def test_missing_userland_is_none(tmp_path):
    assert gfh.UserlandSource.open(str(tmp_path / "absent")) is None
    assert gfh.UserlandSource.open(str(tmp_path)) is None
    assert gfh.UserlandSource.open(None) is None


def test_calibrate_skips_without_userland(tmp_path, capsys):
    cal = load_benchmark("calibrate_gpu_fft")
    assert cal.main([str(tmp_path / "absent")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0]


# ----------------------------------------------------------------------------------------------
# GPU_FFT's own shaders on the strict emulator (needs QPU_USERLAND)
# ----------------------------------------------------------------------------------------------

@needs_userland
def test_plans_match_gpu_fft_twiddles_c():
    table = gfh.published_plan_table(USERLAND.read("gpu_fft_twiddles.c"))
    assert sorted(table) == list(range(8, 23))
    for log2_n, (passes, shared, unique) in table.items():
        plan = gfh.PLANS[log2_n]
        assert (plan.passes, plan.shared_blocks, plan.unique_blocks) == (passes, shared, unique)


def _no_errors(check) -> None:
    errors = [f for f in check.findings if getattr(f, "level", "error") != "warning"]
    assert not errors, "\n".join(f.message for f in errors)
    assert check.run.report.completed


@pytest.fixture(scope="module")
def pi():
    return gfh.EmulatedPi(strict=True)


@needs_userland
@pytest.mark.parametrize("log2_n", [8, 9, 10])
@pytest.mark.parametrize("direction", [gfh.FORWARD, gfh.INVERSE])
def test_gpu_fft_matches_numpy(pi, log2_n, direction):
    accuracy = gfh.published_accuracy(USERLAND.read("gpu_fft.txt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = gfh.run_and_check(USERLAND, log2_n, 1, direction=direction, pi=pi)
    _no_errors(check)
    # random data: typically 1.6x the published (single-tone) figure; 3x leaves a margin
    assert check.ppm < 3 * accuracy[log2_n], check.ppm
    # the master (QPU 0) raises the only host interrupt of the batch
    assert check.run.report.host_interrupts == 1


@needs_userland
@pytest.mark.parametrize("log2_n", [8, 9, 10])
def test_gpu_fft_reproduces_published_accuracy(pi, log2_n):
    # hello_fft.c's own test (inverse transform of two bins) is how gpu_fft.txt's ppm were measured
    accuracy = gfh.published_accuracy(USERLAND.read("gpu_fft.txt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = gfh.run_and_check(USERLAND, log2_n, 1, direction=gfh.INVERSE, pi=pi,
                                  inputs=gfh.hello_fft_inputs(log2_n, 1))
    _no_errors(check)
    assert check.ppm == pytest.approx(accuracy[log2_n], rel=0.15)


@needs_userland
def test_gpu_fft_batch_and_mailbox_launch(pi):
    # a batch of 3 through the emulated firmware's execute-QPU call: every transform right
    fft = gfh.prepare(USERLAND, 8, gfh.FORWARD, 3, pi=pi, path="mailbox")
    try:
        x = gfh.random_inputs(8, 3, seed=7)
        fft.write_inputs(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = fft.execute()
    finally:
        fft.release()
    assert run.path == "mailbox"
    lay = fft.layout
    assert pi.firmware.last_control_list == [
        (fft.bus + lay.uniforms + 4 * lay.uniforms_per_qpu * q, fft.bus + lay.code) for q in range(8)]
    ref = gfh.reference(x, gfh.FORWARD)
    for j in range(3):
        assert gfh.rel_rms_ppm(run.outputs[j], ref[j]) < 2.0
    assert run.host_seconds == pytest.approx(gfh.MAILBOX_CALL_SECONDS)


# ----------------------------------------------------------------------------------------------
# Whole third-party programs through the disassembler, text assembler and checker
# ----------------------------------------------------------------------------------------------

@needs_userland
@pytest.mark.parametrize("log2_n", range(gfh.MIN_LOG2_N, gfh.MAX_LOG2_N + 1))
def test_shader_round_trips_through_text_and_checks_clean(log2_n):
    from qpu.checker import check
    from qpu.disassembler import disassemble
    from qpu.text_assembler import assemble_text

    words32 = USERLAND.shader(log2_n)
    words = [int(lo) | (int(hi) << 32) for lo, hi in zip(words32[0::2], words32[1::2])]
    text = "\n".join(disassemble(words))
    assert [int(w) for w in assemble_text(text).words] == words
    report = check(words)
    assert [f for f in report.findings if f.level.name == "ERROR"] == []
