"""Emulator core: kernels run from GPU memory, results checked against numpy.

Each kernel writes its 16-lane results to VPM rows and stores them with one VDW
DMA; expected values are computed here with numpy from the guide's definitions.
"""

from __future__ import annotations

import numpy as np
import pytest
from emu_harness import END, Harness, bits, f32

from qpu.isa.vpm import SetupFormat, encode_setup

LANE = np.arange(16, dtype=np.int64)


def vpm_write_setup(y: int = 0) -> int:
    return encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=y)


def vdw_setup(rows: int, y: int = 0) -> int:
    return encode_setup(SetupFormat.VDW_BASIC, units=rows, depth=16, laned=0, horiz=1, vpmbase=y << 4, modew=0)


def store(regs, out="ra31") -> str:
    """Text that writes each source to VPM rows 0.. and DMA-stores them to the address in ``out``."""
    lines = [f"ldi vw_setup, {vpm_write_setup():#x}"]
    lines += [f"mov vpm, {r}" for r in regs]
    lines += [f"ldi vw_setup, {vdw_setup(len(regs)):#x}", f"mov vw_addr, {out}", "mov -, vw_wait"]
    return "\n".join(lines) + "\n"


def run_rows(src: str, rows: int, uniforms=(), **kw) -> np.ndarray:
    """Run ``src`` (which must end with store(...)); the first uniform is the output address."""
    h = Harness(**kw)
    out_bus, out = h.alloc((rows, 16), fill=0xDEADBEEF)
    h.run("mov ra31, unif\n" + src + END, [out_bus] + list(uniforms))
    return out.copy()


def test_vector_add_tmu_vpm_dma():
    h = Harness()
    a_bus, a = h.alloc(16, np.float32, fill=f32(LANE * 1.5))
    b_bus, b = h.alloc(16, np.float32, fill=f32(100 - LANE))
    out_bus, out = h.alloc(16, np.float32, fill=0)
    src = """
        mov ra0, unif
        mov ra1, unif
        mov ra31, unif
        shl r1, elem_num, 2
        add tmu0_s, ra0, r1
        add tmu1_s, ra1, r1
        nop ; ldtmu0
        mov r2, r4 ; ldtmu1
        fadd r3, r2, r4
    """ + store(["r3"])
    report = h.run(src + END, [a_bus, b_bus, out_bus])
    np.testing.assert_array_equal(out, f32(a) + f32(b))
    assert report.instructions == 9 + 5 + 3
    assert report.stalls["tmu"] > 0 and report.cycles > 4 * report.instructions
    assert report.hazards == []


def test_integer_ops_and_small_immediates():
    src = """
        add r0, elem_num, 3
        sub r1, elem_num, 5
        shl r2, elem_num, 4
        ldi r3, -7
        asr ra1, r3, 1
        mul24 rb1, elem_num, elem_num
    """ + store(["r0", "r1", "r2", "ra1", "rb1"])
    out = run_rows(src, 5).astype(np.int64)
    np.testing.assert_array_equal(out[0], LANE + 3)
    np.testing.assert_array_equal(out[1], (LANE - 5) & 0xFFFFFFFF)
    np.testing.assert_array_equal(out[2], LANE << 4)
    assert (out[3] == ((-7 >> 1) & 0xFFFFFFFF)).all()
    np.testing.assert_array_equal(out[4], LANE * LANE)


def test_load_immediate_modes():
    signed = [-2, -1, 0, 1] * 4
    unsigned = [3, 2, 1, 0] * 4
    src = f"""
        ldi r0, 0x87654321
        ldi r1, signed{signed}
        ldi r2, unsigned{unsigned}
        ldi ra1, rb1, 1.5
    """ + store(["r0", "r1", "r2", "ra1", "rb1"])
    out = run_rows(src, 5)
    assert (out[0] == 0x87654321).all()
    np.testing.assert_array_equal(out[1], np.array(signed, np.int64) & 0xFFFFFFFF)
    np.testing.assert_array_equal(out[2], unsigned)
    assert (out[3] == bits(1.5)).all() and (out[4] == bits(1.5)).all()


def test_conditions_and_flags_only_where_condition_passes():
    # sub.setf: N = elem < 8, Z = elem == 8.  Then a conditional setf writes nothing but
    # updates the flags of lanes 0-7 only (addendum "set flags"): Z=1 there.
    src = """
        ldi r2, 1
        ldi r3, 2
        sub.setf -, elem_num, 8
        mov.ifn.setf -, 0
        mov.ifz r1, r2 ; mov.ifnz r1, r3
    """ + store(["r1"])
    out = run_rows(src, 1)
    np.testing.assert_array_equal(out[0], np.where(LANE <= 8, 1, 2))


def test_flags_from_mul_when_add_is_nop():
    src = """
        ldi r0, 5
        sub.setf -, elem_num, 3          # Z only in lane 3
        nop ; mov.setf r1, elem_num      # add is nop: flags from the mul result (Z in lane 0)
        mov.ifz r2, r0 ; mov.ifnz r2, elem_num
    """ + store(["r2"])
    out = run_rows(src, 1)
    np.testing.assert_array_equal(out[0], np.where(LANE == 0, 5, LANE))


def test_branch_loop_delay_slots_and_conditions():
    # r0 counts down from 5; each pass adds 1 to r1 in the loop and 10 in each delay slot
    src = """
        ldi r0, 5
        ldi r1, 0
        ldi r3, 10
    loop:
        sub.setf r0, r0, 1
        add r1, r1, 1
        brr.anynz -, loop
        add r1, r1, r3
        add r1, r1, r3
        add r1, r1, r3
        add r2, r1, 0                    # after the loop
    """ + store(["r1", "r2"])
    out = run_rows(src, 2)
    assert (out[0] == 5 * 31).all() and (out[1] == 5 * 31).all()


def test_branch_all_vs_any_per_lane_flags():
    # flags differ per lane: anyz is taken, allz is not
    src = """
        ldi r1, 0
        ldi r2, 7
        sub.setf -, elem_num, 3
        brr.allz -, skip1
        nop
        nop
        nop
        add r1, r1, 1                    # executed: not all lanes have Z
    skip1:
        brr.anyz -, skip2
        nop
        nop
        nop
        add r1, r1, r2                   # skipped: lane 3 has Z
    skip2:
    """ + store(["r1"])
    out = run_rows(src, 1)
    assert (out[0] == 1).all()


def test_branch_link_and_register_target_lane15():
    # brr with link, return through the link register with bra (target from element 15)
    src = """
        ldi r1, 0
        brr ra2, sub
        nop
        nop
        nop
        add r1, r1, 1                    # after returning
        brr -, done
        nop
        nop
        nop
    sub:
        add r1, r1, 2
        bra -, ra2
        nop
        nop
        nop
    done:
    """ + store(["r1"])
    out = run_rows(src, 1)
    assert (out[0] == 3).all()


def test_branch_register_uses_element_15():
    # ra4 holds 0 in lanes 0-14 and the target offset in lane 15 (addendum): a relative
    # branch by ra4 lands 2 instructions further
    src = """
        ldi r1, 0
        ldi r2, 16
        sub.setf -, elem_num, 15
        mov.ifz ra4, r2 ; mov.ifnz rb4, 0
        mov.ifnz ra4, 0
        nop
        brr -, ra4 + 0                    # relative: PC + 4 instructions + ra4[15]
        nop
        nop
        nop
    target:
        add r1, r1, 1
        add r1, r1, 2
        add r1, r1, 4
    """ + store(["r1"])
    out = run_rows(src, 1)
    assert (out[0] == 4).all()


def test_branch_not_taken_writes_no_link():
    src = """
        ldi ra4, 9
        ldi r1, 0
        ldi r3, 100
        sub.setf -, elem_num, r3          # no lane is zero
        brr.anyz ra4, nowhere
        nop
        nop
        nop
        mov r1, ra4
    nowhere:
    """ + store(["r1"])
    out = run_rows(src, 1)
    assert (out[0] == 9).all()


def test_sfu_result_in_r4_three_instructions_later():
    src = """
        mov r0, unif
        itof r1, elem_num
        fadd r1, r1, 1.0
        mov sfu_recip, r1
        nop
        nop
        mov r2, r4
        mov sfu_exp, r1
        nop
        nop
        mov r3, r4
    """ + store(["r2", "r3"])
    out = run_rows(src, 2, uniforms=[0])
    x = (LANE + 1).astype(np.float64)
    np.testing.assert_allclose(out[0].view(np.float32), 1 / x, rtol=1e-3)
    np.testing.assert_allclose(out[1].view(np.float32), 2.0 ** x, rtol=1e-3)


def test_uniforms_and_unif_addr_reset():
    h = Harness()
    out_bus, out = h.alloc((1, 16), fill=0)
    other_bus, other = h.alloc(4, fill=[111, 222, 333, 444])
    src = """
        mov ra31, unif
        mov ra0, unif                     # address of the other list
        mov r1, unif                      # 7
        mov unif_addr, ra0
        nop
        nop
        mov r2, unif                      # 111
        mov r3, unif                      # 222
        add r1, r1, r2
        add r1, r1, r3
    """ + store(["r1"])
    h.run(src + END, [out_bus, other_bus, 7])
    assert (out[0] == 7 + 111 + 222).all()


def test_program_end_runs_two_delay_slots():
    # the two delay slots after thrend execute, the word after them never does (it is a
    # reserved encoding, which would be reported)
    src = """
        ldi r1, 1
        nop ; nop ; thrend
        ldi r1, 2
        ldi r1, 3
        .word 0xe400000000000000
    """
    report = Harness().run(src)
    assert report.instructions == 4
    assert report.hazards == []
    # 4 instructions of 4 cycles, plus the cold instruction cache's miss (the only stall)
    assert report.per_qpu[0]["cycles"] == 4 * 4 + report.stalls["icache"]
    assert report.stalls["icache"] > 0 and sum(report.stalls.values()) == report.stalls["icache"]


def test_r5_quad_and_replicate():
    src = """
        add r5quad, elem_num, 1
        nop
        mov r1, r5
        add r5rep, elem_num, 7
        nop
        mov r2, r5
    """ + store(["r1", "r2"])
    out = run_rows(src, 2)
    np.testing.assert_array_equal(out[0], (LANE & 12) + 1)
    assert (out[1] == 7).all()


def test_rotation_full_and_per_quad():
    src = """
        mov r0, elem_num
        mov ra1, elem_num
        nop
        nop ; mov r1, r0 >> 3
        nop ; mov r2, ra1 >> 1
        ldi r5rep, 6
        nop
        nop ; mov r3, r0 >> r5
    """ + store(["r1", "r2", "r3"])
    out = run_rows(src, 3)
    np.testing.assert_array_equal(out[0], (LANE - 3) % 16)
    # operands not both from r0-r3: rotation within each quad by the low two bits
    np.testing.assert_array_equal(out[1], (LANE & 12) | ((LANE - 1) & 3))
    np.testing.assert_array_equal(out[2], (LANE - 6) % 16)


def test_nop_register_returns_previous_reads():
    # addendum: reading ra39 gives the last values read through regfile A by elements 12-15
    src = """
        nop ; read elem_num
        mov r1, ra39
    """ + store(["r1"])
    out = run_rows(src, 1)
    np.testing.assert_array_equal(out[0], 12 + (LANE & 3))


def test_unmapped_read_returns_element_or_qpu_number():
    src = """
        mov r1, ra37
        mov r2, rb37
    """ + store(["r1", "r2"])
    out = run_rows(src, 2)
    np.testing.assert_array_equal(out[0], LANE)
    assert (out[1] == 0).all()


def test_regfile_a_pack_and_unpack_plumbing():
    # two 16-bit packs fill one register (bytes tracked separately, so it is fully defined),
    # then 16-bit unpacks sign-extend each half (Table 6/7, integer consumers)
    src = """
        ldi r0, -3
        ldi r1, 0x1234
        mov ra1.16a, r0
        mov ra1.16b, r1
        nop
        mov r2, ra1
        mov r3, ra1.16a
        mov ra2, ra1.16b
    """ + store(["r2", "r3", "ra2"])
    out = run_rows(src, 3)
    assert (out[0] == 0x1234FFFD).all()
    assert (out[1] == 0xFFFFFFFD).all()
    assert (out[2] == 0x1234).all()


def test_mul_pack_writes_one_byte_of_an_accumulator():
    src = """
        ldi r1, 0x11223344
        nop ; fmul r1.8bc, 1.0, 1.0       # colour 1.0 -> 255 into byte 1 only
    """ + store(["r1"])
    out = run_rows(src, 1)
    assert (out[0] == 0x1122FF44).all()


def test_add_nop_with_destination_writes_nothing():
    # py-videocore's nop() is "nop r0" with condition always, and its SGEMM example (run on
    # Pis) counts down in r0 across one, right after a semaphore instruction
    src = """
        ldi r0, 7
        add r1, elem_num, 1
        nop.always r0
        srel -, 3
        nop.always r0
        mov r2, r0
    """ + store(["r2"])
    out = run_rows(src, 1)
    np.testing.assert_array_equal(out[0], 7)


def test_nop_alu_with_destination_writes_previous_mul_result():
    # addendum "Secret access to previous MUL ALU result": elements 12-15 per quad
    src = """
        nop ; mul24 r1, elem_num, 2
        nop ; nop.always r2
    """ + store(["r1", "r2"])
    out = run_rows(src, 2)
    np.testing.assert_array_equal(out[0], 2 * LANE)
    np.testing.assert_array_equal(out[1], 2 * (12 + (LANE & 3)))


@pytest.mark.parametrize("lenient_value", [True])
def test_regfile_read_after_write_returns_old_value_in_lenient_mode(lenient_value):
    src = """
        ldi ra1, 5
        nop
        ldi ra1, 6
        mov r1, ra1                       # hazard: sees 5
        mov r2, ra1                       # sees 6
    """ + store(["r1", "r2"])
    with pytest.warns(Warning, match="regfile-read-after-write"):
        out = run_rows(src, 2, strict=False)
    assert (out[0] == 5).all() and (out[1] == 6).all()
