"""Tests of the static checker (qpu.checker).

Each static rule of qpu.isa.rules gets a program that breaks it (the rule id, the
instruction index and the named register / instruction are asserted) and a corrected
program that does not.  The expected findings come from the restrictions as the
Reference Guide states them ("Summary of Instruction Restrictions", p.37, and the
pages cited per test) and from the vc4asm addendum; setup words are built here by
hand from the guide's Tables 32-36.
"""

from __future__ import annotations

import textwrap
import time

import pytest

from qpu.checker import CheckError, CheckReport, Finding, check
from qpu.errors import QPUError, SourceLocation
from qpu.isa.rules import RULES, Level
from qpu.program import Program
from qpu.text_assembler import assemble_text

END = "nop ; thrend\nnop\nnop\n"

# Setup words from the guide's tables (bit positions written out here, not taken from qpu.isa.vpm).
# Table 32, VPM generic block write: STRIDE 17:12 = 1, HORIZ 11 = 1, SIZE 9:8 = 2 (32-bit), ADDR 0.
VPM_WRITE_SETUP = (1 << 12) | (1 << 11) | (2 << 8)


def vpm_read_setup(num: int) -> int:
    """Table 33, VPM generic block read: NUM 23:20 (0 => 16), STRIDE 1, horizontal, 32-bit, ADDR 0."""
    return ((num & 15) << 20) | (1 << 12) | (1 << 11) | (2 << 8)


# Table 34, VDW basic: ID 31:30 = 2, UNITS 29:23 = 1 row, DEPTH 22:16 = 16, HORIZ 14 = 1.
VDW_SETUP = (2 << 30) | (1 << 23) | (16 << 16) | (1 << 14)
# Table 36, VDR basic: ID bit 31 = 1, ROWLEN 23:20 = 0 (16), NROWS 19:16 = 1, VPITCH 15:12 = 1.
VDR_SETUP = (1 << 31) | (1 << 16) | (1 << 12)


def run(src: str, **kw) -> CheckReport:
    return check(assemble_text(textwrap.dedent(src), name="t.qasm"), **kw)


def of(report: CheckReport, rule_id: str):
    return [f for f in report.findings if f.rule == rule_id]


def expect(report: CheckReport, rule_id: str, index: int, *words: str, level: Level | None = None) -> Finding:
    hits = [f for f in report.findings if f.rule == rule_id and f.index == index]
    assert hits, f"expected {rule_id} at index {index}; got:\n{report}"
    f = hits[0]
    for w in words:
        assert w in f.message, f"{w!r} not in {f.message!r}"
    assert f.level is (level or RULES[rule_id].level)
    return f


def absent(report: CheckReport, *rule_ids: str) -> None:
    bad = [f for f in report.findings if f.rule in rule_ids]
    assert not bad, "\n".join(str(f) for f in bad)


# ---------------------------------------------------------------------------------------------
# A clean, realistic program: vector add with TMU loads, a VPM write and a VDW DMA store, in a
# loop over 16-element blocks.  Uniforms: a, b, out, number of blocks.
# ---------------------------------------------------------------------------------------------

VECTOR_ADD = f"""
        mov ra0, unif                # a
        mov ra1, unif                # b
        mov ra2, unif                # out
        mov ra3, unif                # blocks
        mov r0, elem_num
        shl rb4, r0, 2               # byte offset of each element
        ldi rb5, 64                  # bytes per block
loop:   add tmu0_s, ra0, rb4         # request a[i]
        add tmu1_s, ra1, rb4         # request b[i]
        ldi vw_setup, {VPM_WRITE_SETUP:#x}
        nop ; ldtmu0
        mov r1, r4 ; ldtmu1
        fadd vpm, r1, r4
        ldi vw_setup, {VDW_SETUP:#x}
        mov vw_addr, ra2             # start the DMA store
        nop ; read vw_wait           # wait for it
        add ra0, ra0, rb5
        add ra1, ra1, rb5
        add ra2, ra2, rb5
        sub.setf ra3, ra3, 1
        brr.anynz loop
        nop
        nop
        nop
        mov host_int, 1
        nop ; thrend
        nop
        nop
"""


def test_clean_vector_add_has_no_findings():
    report = run(VECTOR_ADD)
    assert report.findings == [], str(report)
    assert report.ok and str(report) == ""


def test_clean_program_also_clean_threaded():
    assert run(VECTOR_ADD, threaded=True).findings == []


def test_inputs_bytes_words_and_program_agree():
    prog = assemble_text("mov r0, vpm\n" + VECTOR_ADD)
    a = check(prog)
    b = check(prog.to_bytes())
    c = check(list(prog.words))
    key = [(f.rule, f.index, f.message) for f in a.findings]
    assert key and key == [(f.rule, f.index, f.message) for f in b.findings] \
        == [(f.rule, f.index, f.message) for f in c.findings]


# ---------------------------------------------------------------------------------------------
# Register file and accumulator timing (guide p.18, p.23, p.37)
# ---------------------------------------------------------------------------------------------

def test_regfile_read_after_write():
    r = run("fadd ra5, r0, r1\nmov r2, ra5\n" + END)
    f = expect(r, "regfile-read-after-write", 1, "ra5", "index 0", "fadd ra5, r0, r1", "previous instruction")
    assert f.instruction == "mov r2, ra5"
    # Corrected: an instruction between, or the value read from an accumulator.
    absent(run("fadd ra5, r0, r1\nnop\nmov r2, ra5\n" + END), "regfile-read-after-write")
    absent(run("fadd r3, r0, r1\nmov r2, r3\n" + END), "regfile-read-after-write")


def test_regfile_read_after_write_other_file_is_fine():
    # ra5 and rb5 are different physical registers.
    absent(run("fadd ra5, r0, r1\nmov r2, rb5\n" + END), "regfile-read-after-write")
    expect(run("fadd rb5, r0, r1\nmov r2, rb5\n" + END), "regfile-read-after-write", 1, "rb5")


def test_regfile_read_after_write_mul_alu_and_conditional_write():
    expect(run("nop ; fmul rb7, r0, r1\nmov r0, rb7\n" + END), "regfile-read-after-write", 1, "rb7", "fmul")
    expect(run("mov.zs ra9, r0\nmov r1, ra9\n" + END), "regfile-read-after-write", 1, "ra9")
    # A write with condition "never" does not happen.
    absent(run("mov.never ra9, r0\nmov r1, ra9\n" + END), "regfile-read-after-write")


def test_regfile_read_after_write_read_clause():
    f = expect(run("fadd ra5, r0, r1\nnop ; read ra5\n" + END), "regfile-read-after-write", 1, "ra5")
    assert "no ALU uses the value" in f.message


def test_regfile_read_after_write_loop_carried():
    # The branch's third delay slot writes ra5; the loop's first instruction reads it next.
    src = """
        loop: mov r1, ra5
              brr.anynz loop
              nop
              nop
              fadd ra5, r0, r1
    """ + END
    f = expect(run(src), "regfile-read-after-write", 0, "ra5", "index 4", "through a branch")
    assert f.index == 0
    fixed = """
        loop: mov r1, ra5
              brr.anynz loop
              nop
              fadd ra5, r0, r1
              nop
    """ + END
    absent(run(fixed), "regfile-read-after-write")


def test_regfile_read_after_write_in_branch_register():
    src = "mov ra4, r0\nbra -, ra4\nnop\nnop\nnop\n" + END
    expect(run(src), "regfile-read-after-write", 1, "ra4")


def test_r4_read_after_sfu():
    for gap in (0, 1):
        src = "mov sfu_recip, r0\n" + "nop\n" * gap + "mov r1, r4\n" + END
        expect(run(src), "r4-read-after-sfu", 1 + gap, "r4", "sfu_recip", f"{gap + 1} instruction")
    # The result is in r4 for the third instruction (guide p.23).
    absent(run("mov sfu_recip, r0\nnop\nnop\nmov r1, r4\n" + END), "r4-read-after-sfu")


def test_r4_read_after_sfu_across_a_branch():
    src = """
              brr L
              nop
              nop
              mov sfu_exp, r0
              nop ; thrend
              nop
              nop
        L:    fadd r1, r4, r0
              nop ; thrend
              nop
              nop
    """
    expect(run(src), "r4-read-after-sfu", 7, "sfu_exp", "index 3")
    absent(run(src.replace("mov sfu_exp, r0", "nop")), "r4-read-after-sfu")


def test_r4_write_after_sfu():
    r = run("mov sfu_log, r0\nmov tmu0_s, r1\nnop ; ldtmu0\n" + END)
    expect(r, "r4-write-after-sfu", 2, "ldtmu0", "sfu_log")
    r = run("mov sfu_log, r0\nnop\nmov sfu_recip, r1\n" + END)
    expect(r, "r4-write-after-sfu", 2, "sfu_recip", "sfu_log")
    absent(run("mov sfu_log, r0\nmov tmu0_s, r1\nnop\nnop ; ldtmu0\n" + END), "r4-write-after-sfu")


def test_rotate_after_r5_write():
    expect(run("mov r5rep, r0\nnop ; mov r1, r0 >> r5\n" + END), "rotate-after-r5-write", 1, "r5rep")
    # A varying read also writes r5 (guide p.22).
    expect(run("mov r2, vary\nnop ; mov r1, r0 >> r5\n" + END), "rotate-after-r5-write", 1, "varying")
    absent(run("mov r5rep, r0\nnop\nnop ; mov r1, r0 >> r5\n" + END), "rotate-after-r5-write")
    # A rotation by an immediate does not read r5.
    absent(run("mov r5rep, r0\nnop ; mov r1, r0 >> 3\n" + END), "rotate-after-r5-write")


def test_rotate_after_acc_write():
    expect(run("mov r0, ra1\nnop ; mov r1, r0 >> 1\n" + END), "rotate-after-acc-write", 1, "r0", "index 0")
    absent(run("mov r0, ra1\nnop\nnop ; mov r1, r0 >> 1\n" + END), "rotate-after-acc-write")
    # Rotating another accumulator than the one written is fine.
    absent(run("mov r0, ra1\nnop ; mov r1, r2 >> 1\n" + END), "rotate-after-acc-write")


def test_rotate_not_accumulators():
    f = expect(run("nop ; mov r1, ra1 >> 2\n" + END), "rotate-not-accumulators", 0, "ra1")
    assert f.level is Level.WARNING
    absent(run("nop ; mov r1, r0 >> 2\n" + END), "rotate-not-accumulators")


# ---------------------------------------------------------------------------------------------
# One instruction (guide p.19, p.25, p.33, p.37; addendum)
# ---------------------------------------------------------------------------------------------

def test_two_peripherals():
    expect(run("mov tmu0_s, r0 ; mov sfu_recip, r1\n" + END), "two-peripherals", 0, "tmu0_s", "sfu_recip")
    expect(run("mov r0, mutex ; ldtmu0\n" + END), "two-peripherals", 0, "mutex", "ldtmu0")
    expect(run("mov tlb_z, r0 ; loadc\n" + END), "two-peripherals", 0, "tlb_z", "loadc")
    absent(run("mov tmu0_s, r0\nmov sfu_recip, r1\n" + END), "two-peripherals")
    # The VPM is not a closely-coupled peripheral in this sense (guide p.25).
    absent(run(f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nmov vpm, r0 ; mov sfu_recip, r1\n" + END), "two-peripherals")


def test_same_destination_both_alus():
    expect(run("mov r0, r1 ; mov r0, r2\n" + END), "same-destination-both-alus", 0, "r0")
    expect(run("mov.zs r0, r1 ; mov.zs r0, r2\n" + END), "same-destination-both-alus", 0, "r0")
    expect(run("mov r5quad, r0 ; mov r5rep, r1\n" + END), "same-destination-both-alus", 0, "r5")
    # I/O: undefined even with opposite conditions (addendum).
    expect(run(f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nmov.zs vpm, r1 ; mov.zc vpm, r2\n" + END),
           "same-destination-both-alus", 1, "vpm")
    # Opposite conditions on an accumulator (as GPU_FFT does), different registers: fine.
    absent(run("mov.zs r0, r1 ; mov.zc r0, r2\n" + END), "same-destination-both-alus")
    absent(run("mov ra1, r0 ; mov rb1, r1\n" + END), "same-destination-both-alus")
    absent(run("mov r0, r1 ; mov r1, r2\n" + END), "same-destination-both-alus")
    # Address 49 is vr_setup through A and vw_setup through B: different registers.
    absent(run("mov vr_setup, r0 ; mov vw_setup, r1\n" + END), "same-destination-both-alus")


def test_vpm_concurrent_access():
    src = f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nmov vpm, r0 ; mov vw_setup, r1\n" + END
    expect(run(src), "vpm-concurrent-access", 1, "vpm", "vw_setup")
    expect(run(f"ldi vr_setup, {vpm_read_setup(1):#x}\nmov tmu0_s, r0\nmov r0, vpm ; ldtmu0\n" + END),
           "vpm-concurrent-access", 2, "ldtmu0")
    # One VPM read plus one VPM write is the combination that works (addendum).
    src = f"ldi vr_setup, {vpm_read_setup(1):#x}\nldi vw_setup, {VPM_WRITE_SETUP:#x}\nmov vpm, vpm\n" + END
    absent(run(src), "vpm-concurrent-access")


def test_conditional_peripheral_write():
    expect(run("mov.zs tmu0_s, r0\nnop ; ldtmu0\n" + END), "conditional-peripheral-write", 0, "tmu0_s", ".zs")
    expect(run(f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nmov.nc vpm, r0\n" + END),
           "conditional-peripheral-write", 1, "vpm")
    absent(run("mov.zs r0, ra1\nmov tmu0_s, r0\nnop ; ldtmu0\n" + END), "conditional-peripheral-write")


def test_mul_pack_io():
    src = f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nnop ; fmul vpm.8ac, r0, r1\n" + END
    expect(run(src), "mul-pack-io", 1, "vpm", "8ac")
    absent(run("nop ; fmul r0.8ac, r0, r1\n" + END), "mul-pack-io")
    # The replicating pack writes all four bytes.
    absent(run(f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nnop ; fmul vpm.8888c, r0, r1\n" + END), "mul-pack-io")


def test_semaphore_stalling_write():
    expect(run("srel tmu0_s, 3\nnop ; ldtmu0\n" + END), "semaphore-stalling-write", 0, "tmu0_s")
    expect(run("sacq sfu_recip, 2\n" + END), "semaphore-stalling-write", 0, "sfu_recip")
    absent(run("srel r0, 3\nsacq 3\n" + END), "semaphore-stalling-write")


def test_reserved_encoding_and_breakpoint():
    # ALU word (sig 1) with op_add = 9 (reserved, Table 12): bits 28:24 = 9, everything else nop/39.
    word = (1 << 60) | (39 << 38) | (39 << 32) | (9 << 24) | (39 << 18) | (39 << 12)
    expect(run(f".word {word:#018x}\n" + END), "reserved-encoding", 0, "add opcode 9")
    # Branch with cond_br 12 (reserved, Table 11).
    word = (15 << 60) | (12 << 52) | (39 << 38) | (39 << 32)
    expect(run(f".word {word:#018x}\nnop\nnop\nnop\n" + END), "reserved-encoding", 0, "branch condition 12")
    f = expect(run("nop ; bkpt\n" + END), "breakpoint", 0, "bkpt")
    assert f.level is Level.WARNING
    absent(run("nop\n" + END), "reserved-encoding", "breakpoint")


# ---------------------------------------------------------------------------------------------
# Thread end (guide p.21-22, p.37)
# ---------------------------------------------------------------------------------------------

def test_thread_end_regfile_write():
    expect(run("mov ra1, r0 ; thrend\nnop\nnop\n"), "thread-end-regfile-write", 0, "ra1")
    absent(run("mov r1, r0 ; thrend\nnop\nnop\n"), "thread-end-regfile-write")


def test_thread_end_reg14():
    expect(run("nop ; thrend\nmov r0, ra14\nnop\n"), "thread-end-reg14", 1, "ra14", "delay slot 1")
    expect(run("mov r0, rb14 ; thrend\nnop\nnop\n"), "thread-end-reg14", 0, "rb14")
    expect(run("nop ; thrend\nnop\nmov rb14, r0\n"), "thread-end-reg14", 2, "rb14", "delay slot 2")
    absent(run("mov r0, ra14\nnop ; thrend\nmov r0, ra13\nnop\n"), "thread-end-reg14")


def test_thread_end_io():
    expect(run("nop ; thrend\nmov r0, unif\nnop\n"), "thread-end-io", 1, "unif")
    expect(run(f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nmov vpm, r0 ; thrend\nnop\nnop\n"), "thread-end-io", 1, "vpm")
    expect(run("nop ; thrend\nnop\nnop ; read vw_wait\n"), "thread-end-io", 2, "vw_wait")
    absent(run("mov r0, unif\nnop ; thrend\nnop\nnop\n"), "thread-end-io")


def test_thread_end_tlb_z():
    src = "nop\nnop\nnop ; thrend\nnop\nmov tlb_z, r0\n"
    expect(run(src), "thread-end-tlb-z", 4, "tlb_z")
    # The first delay slot may write TLB Z; only the very last instruction may not.
    absent(run("nop\nnop\nnop ; thrend\nmov tlb_z, r0\nnop\n"), "thread-end-tlb-z")


def test_thread_end_delay_slots():
    expect(run("nop\nnop ; thrend\nnop\n"), "thread-end-delay-slots", 1, "only 1 instruction")
    expect(run("nop ; thrend\n"), "thread-end-delay-slots", 0, "only 0 instruction")
    expect(run("nop ; thrend\nnop ; thrend\nnop\nnop\n"), "thread-end-delay-slots", 1, "index 0")
    expect(run("nop ; thrend\nbrr L\nnop\nL: nop\n"), "thread-end-delay-slots", 1, "branch")
    absent(run("nop ; thrend\nnop\nnop\n"), "thread-end-delay-slots", "missing-program-end")


def test_missing_program_end():
    expect(run("mov r0, r1\nmov r1, r0\n"), "missing-program-end", 1, "past the end")
    # Only the branch target's path runs off the end.
    src = """
              brr.anyz skip
              nop
              nop
              nop
              nop ; thrend
              nop
              nop
        skip: mov r0, r1
    """
    r = run(src)
    expect(r, "missing-program-end", 7)
    assert len(of(r, "missing-program-end")) == 1
    absent(run(src + END), "missing-program-end")
    # The delay slots of a final branch run off the end.
    expect(run("L: nop\nbrr L\nnop\n"), "missing-program-end", 2)


def test_missing_program_end_not_reported_for_loops_and_unknown_targets():
    absent(run("L: nop\nbrr L\nnop\nnop\nnop\n"), "missing-program-end")
    absent(run("bra -, ra2\nnop\nnop\nnop\n"), "missing-program-end")


# ---------------------------------------------------------------------------------------------
# Branches (guide p.20, p.34; addendum)
# ---------------------------------------------------------------------------------------------

BRANCH_TAIL = "nop\nnop\nnop\n" + END + "A: nop\n" + END + "B: nop\n" + END


def test_branch_in_delay_slot():
    r = run("brr.anyz A\nbrr.anynz B\n" + BRANCH_TAIL)
    expect(r, "branch-in-delay-slot", 1, "index 0", "only 0")
    r = run("brr.anyz A\nnop\nbrr.anynz B\n" + BRANCH_TAIL)
    expect(r, "branch-in-delay-slot", 2, "only 1")
    # Two non-branch instructions between (the next branch in the last delay slot) is fine (addendum).
    absent(run("brr.anyz A\nnop\nnop\nbrr.anynz B\n" + BRANCH_TAIL), "branch-in-delay-slot")


def test_branch_in_delay_slot_through_a_jump_is_checked_along_the_path():
    # The branch at index 3 is in the delay slots of the branch at 2 whichever way 0 goes.
    src = "brr L\nnop\nL: brr.anyz A\nbrr.anynz B\n" + BRANCH_TAIL
    expect(run(src), "branch-in-delay-slot", 3)


def test_branch_implicit_setf():
    f = expect(run("bra.setf -, ra1\nnop\nnop\nnop\n" + END), "branch-implicit-setf", 0, "ra1")
    assert f.level is Level.WARNING
    absent(run("bra -, ra2\nnop\nnop\nnop\n" + END), "branch-implicit-setf")


def test_branch_target_outside():
    # brr 800: target = 0 + 4 + 800/8 = 104, outside a 7-instruction program.
    expect(run("brr 800\nnop\nnop\nnop\n" + END), "branch-target-outside", 0, "104")
    expect(run("brr 4\nnop\nnop\nnop\n" + END), "branch-target-outside", 0, "multiple of 8")
    absent(run("brr L\nnop\nnop\nnop\nL: nop\n" + END), "branch-target-outside")


def test_branch_target_unknown_note():
    r = run("bra -, ra2\nnop\nnop\nnop\n" + END)
    f = expect(r, "branch-target-unknown", 0, "ra2")
    assert f.level is Level.INFO and r.ok and r.notes == [f] and not r.warnings
    expect(run("bra 0x1000\nnop\nnop\nnop\n" + END), "branch-target-unknown", 0, "0x1000")


def test_thread_switch_delay_slots():
    f = expect(run("nop ; thrsw\nbrr L\nnop\nnop\nL: nop\n" + END), "thread-switch-delay-slots", 1, "index 0")
    assert f.level is Level.WARNING
    expect(run("nop ; thrsw\nnop\nnop ; thrend\nnop\nnop\n"), "thread-switch-delay-slots", 2)
    absent(run("nop ; thrsw\nnop\nnop\nnop ; thrend\nnop\nnop\n"), "thread-switch-delay-slots")


def test_call_return_site_is_checked_without_context():
    # `brr ra30, sub` calls; `bra -, ra31` returns to index 4, which must not be
    # reported as unreachable or as reading an unset TMU FIFO.
    src = """
              brr ra30, sub
              nop
              nop
              nop
              nop ; ldtmu0
              nop ; thrend
              nop
              nop
        sub:  mov tmu0_s, r0
              bra -, ra30
              nop
              nop
              nop
    """
    r = run(src)
    absent(r, "ldtmu-without-request", "missing-program-end")


# ---------------------------------------------------------------------------------------------
# Uniforms, TMU (guide p.22-23, p.39-41; addendum Section 4)
# ---------------------------------------------------------------------------------------------

def test_uniform_after_address_write():
    expect(run("mov unif_addr, r0\nmov r1, unif\n" + END), "uniform-after-address-write", 1, "unif_addr", "index 0")
    expect(run("mov unif_addr, r0\nnop\nmov r1, unif\n" + END), "uniform-after-address-write", 2, "2 instruction")
    absent(run("mov unif_addr, r0\nnop\nnop\nmov r1, unif\n" + END), "uniform-after-address-write")


def test_tmu_write_reads_uniform():
    f = expect(run("mov tmu0_t, unif\nmov tmu0_s, r0\nnop ; ldtmu0\n" + END), "tmu-write-reads-uniform", 0,
               "tmu0_t")
    assert f.level is Level.WARNING
    # s written after t: a texture lookup, which reads its config uniform.
    expect(run("mov tmu0_t, r0\nmov tmu0_s, unif\nnop ; ldtmu0\n" + END), "tmu-write-reads-uniform", 1, "tmu0_s")
    # A direct memory lookup (only s written) reads no uniform (guide p.41): fine.
    absent(run("mov tmu0_s, unif\nnop ; ldtmu0\n" + END), "tmu-write-reads-uniform")
    absent(run("mov tmu0_t, r0\nmov tmu0_s, r1\nnop ; ldtmu0\nmov tmu0_s, unif\nnop ; ldtmu0\n" + END),
           "tmu-write-reads-uniform")


def test_tmu_noswap_too_late():
    expect(run("mov tmu_noswap, 1\nmov tmu0_s, r0\nnop ; ldtmu0\n" + END), "tmu-noswap-too-late", 1,
           "tmu0_s", "tmu_noswap")
    expect(run("mov tmu_noswap, 1\nnop\nmov tmu1_s, r0\nnop ; ldtmu1\n" + END), "tmu-noswap-too-late", 2)
    expect(run("mov tmu_noswap, r1 ; mov tmu0_s, r0\nnop ; ldtmu0\n" + END), "tmu-noswap-too-late", 0,
           "same instruction")
    # Three instructions before the first TMU write (guide p.37 example: 1st and 4th).
    absent(run("mov tmu_noswap, 1\nnop\nnop\nmov tmu0_s, r0\nnop ; ldtmu0\n" + END), "tmu-noswap-too-late")


def test_ldtmu_without_request():
    expect(run("nop ; ldtmu0\n" + END), "ldtmu-without-request", 0, "ldtmu0", "tmu0_s")
    # A request on the other TMU does not help.
    expect(run("mov tmu1_s, r0\nnop ; ldtmu0\nnop ; ldtmu1\n" + END), "ldtmu-without-request", 1, "TMU0")
    # Two loads for one request.
    expect(run("mov tmu0_s, r0\nnop ; ldtmu0\nnop ; ldtmu0\n" + END), "ldtmu-without-request", 2)
    absent(run("mov tmu0_s, r0\nmov tmu0_s, r1\nnop ; ldtmu0\nnop ; ldtmu0\n" + END), "ldtmu-without-request")


def test_ldtmu_without_request_on_some_paths_is_a_warning():
    src = """
              brr.anyz skip
              nop
              nop
              nop
              mov tmu0_s, r0
        skip: nop ; ldtmu0
    """ + END
    f = expect(run(src), "ldtmu-without-request", 5, "on some paths", level=Level.WARNING)
    assert f.index == 5


def test_ldtmu_in_balanced_loop_is_clean():
    src = """
              mov tmu0_s, r0           # prefetch the first element
        loop: mov tmu0_s, r1           # request the next
              nop ; ldtmu0             # consume the previous
              sub.setf r2, r2, 1
              brr.anynz loop
              nop
              nop
              nop
              nop ; ldtmu0             # the last one
    """ + END
    absent(run(src), "ldtmu-without-request", "tmu-fifo-overflow", "tmu-fifo-unreliable")


def test_ldtmu_loop_consuming_more_than_it_requests():
    src = """
              mov tmu0_s, r0
        loop: nop ; ldtmu0
              sub.setf r2, r2, 1
              brr.anynz loop
              nop
              nop
              nop
    """ + END
    # The first iteration has the request, later ones do not: reported on some paths.
    expect(run(src), "ldtmu-without-request", 1, level=Level.WARNING)


def test_tmu_fifo_overflow():
    src = "mov tmu0_s, r0\n" * 9 + "nop ; ldtmu0\n" * 9 + END
    r = run(src)
    expect(r, "tmu-fifo-overflow", 8, "tmu0_s", "more than 8")
    assert [f.index for f in of(r, "tmu-fifo-overflow")] == [8]
    absent(run("mov tmu0_s, r0\n" * 8 + "nop ; ldtmu0\n" * 8 + END), "tmu-fifo-overflow")


def test_tmu_fifo_overflow_threaded_is_half():
    src = "mov tmu1_s, r0\n" * 5 + "nop ; ldtmu1\n" * 5 + END
    expect(run(src, threaded=True), "tmu-fifo-overflow", 4, "more than 4")
    absent(run("mov tmu1_s, r0\n" * 4 + "nop ; ldtmu1\n" * 4 + END, threaded=True),
           "tmu-fifo-overflow", "tmu-fifo-unreliable")


def test_tmu_fifo_overflow_in_loop_without_loads():
    src = """
        loop: mov tmu0_s, r0
              sub.setf r2, r2, 1
              brr.anynz loop
              nop
              nop
              nop
    """ + END
    expect(run(src), "tmu-fifo-overflow", 0, "on some paths", level=Level.WARNING)


def test_tmu_fifo_unreliable():
    src = "mov tmu0_s, r0\n" * 5 + "nop ; ldtmu0\n" * 5 + END
    r = run(src)
    f = expect(r, "tmu-fifo-unreliable", 4, "more than 4")
    assert f.level is Level.WARNING and r.ok
    absent(run("mov tmu0_s, r0\n" * 4 + "nop ; ldtmu0\n" * 4 + END), "tmu-fifo-unreliable")


# ---------------------------------------------------------------------------------------------
# VPM (guide p.55-57; addendum Section 7)
# ---------------------------------------------------------------------------------------------

def test_vpm_read_without_setup():
    expect(run("mov r0, vpm\n" + END), "vpm-read-without-setup", 0, "vr_setup")
    # One vector set up, two read.
    r = run(f"ldi vr_setup, {vpm_read_setup(1):#x}\nmov r0, vpm\nmov r1, vpm\n" + END)
    expect(r, "vpm-read-without-setup", 2)
    assert [f.index for f in of(r, "vpm-read-without-setup")] == [2]
    absent(run(f"ldi vr_setup, {vpm_read_setup(2):#x}\nmov r0, vpm\nmov r1, vpm\n" + END), "vpm-read-without-setup")
    # NUM = 0 means 16 (Table 33).
    absent(run(f"ldi vr_setup, {vpm_read_setup(16):#x}\n" + "mov r0, vpm\n" * 16 + END), "vpm-read-without-setup")


def test_vpm_read_setup_through_a_register_is_tracked():
    src = f"ldi r1, {vpm_read_setup(1):#x}\nnop\nmov vr_setup, r1\nmov r0, vpm\nmov r2, vpm\n" + END
    expect(run(src), "vpm-read-without-setup", 4)
    src = f"ldi ra7, {vpm_read_setup(2):#x}\nnop\nmov vr_setup, ra7\nmov r0, vpm\nmov r2, vpm\n" + END
    absent(run(src), "vpm-read-without-setup")


def test_vpm_read_dma_setup_is_not_a_read_setup():
    src = f"ldi vr_setup, {VDR_SETUP:#x}\nmov r0, vpm\n" + END
    expect(run(src), "vpm-read-without-setup", 1)


def test_vpm_read_unknown_setup_is_not_reported():
    absent(run("mov vr_setup, unif\nmov r0, vpm\nmov r1, vpm\n" + END), "vpm-read-without-setup")


def test_vpm_write_without_setup():
    expect(run("mov vpm, r0\n" + END), "vpm-write-without-setup", 0, "vw_setup")
    # A DMA store setup is not a VPM write setup.
    expect(run(f"ldi vw_setup, {VDW_SETUP:#x}\nmov vpm, r0\n" + END), "vpm-write-without-setup", 1)
    absent(run(f"ldi vw_setup, {VPM_WRITE_SETUP:#x}\nmov vpm, r0\nmov vpm, r1\n" + END), "vpm-write-without-setup")


def test_vpm_write_without_setup_on_some_paths():
    src = f"""
              brr.anyz skip
              nop
              nop
              nop
              ldi vw_setup, {VPM_WRITE_SETUP:#x}
        skip: mov vpm, r0
    """ + END
    expect(run(src), "vpm-write-without-setup", 5, "on some paths", level=Level.WARNING)


def test_vpm_read_setup_queue():
    src = f"ldi vr_setup, {vpm_read_setup(2):#x}\nldi vr_setup, {vpm_read_setup(2):#x}\n" + "mov r0, vpm\n" * 4 + END
    expect(run(src), "vpm-read-setup-queue", 1, "ignores")
    # 1 then 3 is fine: the single read of the first setup has gone to the FIFO (addendum example).
    src = f"ldi vr_setup, {vpm_read_setup(1):#x}\nldi vr_setup, {vpm_read_setup(3):#x}\n" + "mov r0, vpm\n" * 4 + END
    absent(run(src), "vpm-read-setup-queue", "vpm-read-without-setup")


# ---------------------------------------------------------------------------------------------
# Tile buffer (guide p.37)
# ---------------------------------------------------------------------------------------------

def test_ms_flags_after_tlb_z():
    expect(run("nop\nnop\nmov tlb_z, r0\nmov r1, ms_flags\n" + END), "ms-flags-after-tlb-z", 3, "ms_flags")
    expect(run("nop\nnop\nmov tlb_z, r0\nnop\nmov r1, ms_flags\n" + END), "ms-flags-after-tlb-z", 4)
    absent(run("nop\nnop\nmov tlb_z, r0\nnop\nnop\nmov r1, ms_flags\n" + END), "ms-flags-after-tlb-z")


def test_scoreboard_wait_too_early():
    expect(run("nop ; sbwait\n" + END), "scoreboard-wait-too-early", 0, "sbwait")
    expect(run("nop\nmov tlb_color_all, r0\n" + END), "scoreboard-wait-too-early", 1, "tile-buffer")
    absent(run("nop\nnop\nnop ; sbwait\nmov tlb_color_all, r0\n" + END), "scoreboard-wait-too-early")


# ---------------------------------------------------------------------------------------------
# Reports, locations, entry points, speed
# ---------------------------------------------------------------------------------------------

def test_finding_carries_source_location_address_and_citation():
    r = run("nop\nfadd ra5, r0, r1\nmov r2, ra5\n" + END)
    f = expect(r, "regfile-read-after-write", 2)
    assert f.location == SourceLocation("t.qasm", 3)
    assert f.address == 16
    assert f.citation == RULES["regfile-read-after-write"].citation
    line = str(f)
    assert "\n" not in line
    for part in ("t.qasm:3", "error", "regfile-read-after-write", "0x0010", "mov r2, ra5", "guide p.18"):
        assert part in line


def test_program_with_python_source_locations():
    prog = assemble_text("fadd ra5, r0, r1\nmov r2, ra5\n" + END)
    loc = SourceLocation("kernel.py", 42, "my_kernel")
    prog = Program(prog.words, source=[None, loc])
    f = expect(check(prog), "regfile-read-after-write", 1)
    assert f.location == loc and str(f).startswith("kernel.py:42 (in my_kernel): ")


def test_report_api_and_raise_for_errors():
    clean = run(VECTOR_ADD)
    assert clean.raise_for_errors() is clean
    bad = run("fadd ra5, r0, r1\nmov r2, ra5\nmov.zs tmu0_s, r0\nnop ; ldtmu0\n" + END)
    assert not bad.ok
    assert {f.rule for f in bad.errors} == {"regfile-read-after-write"}
    assert {f.rule for f in bad.warnings} == {"conditional-peripheral-write"}
    assert len(str(bad).splitlines()) == len(bad.findings) == 2
    with pytest.raises(CheckError) as info:
        bad.raise_for_errors()
    assert isinstance(info.value, QPUError)
    assert "regfile-read-after-write" in str(info.value) and "mov r2, ra5" in str(info.value)
    assert info.value.findings == bad.errors


def test_findings_are_deduplicated_per_rule_and_index():
    # ra5 is written before the loop and at its end: two paths into index 1, one finding.
    src = """
              fadd ra5, r0, r1
        loop: mov r1, ra5
              brr.anynz loop
              nop
              nop
              fadd ra5, r0, r1
    """ + END
    r = run(src)
    assert [f.index for f in of(r, "regfile-read-after-write")] == [1]


def test_entry_points():
    # Two programs in one buffer: the second starts at index 5 with its own empty TMU FIFO.
    src = "mov tmu0_s, r0\nnop ; ldtmu0\n" + END + "nop ; ldtmu0\n" + END
    r = check(assemble_text(src), entry_points=(0, 5))
    expect(r, "ldtmu-without-request", 5)
    assert [f.index for f in of(r, "ldtmu-without-request")] == [5]
    with pytest.raises(ValueError):
        check(assemble_text(src), entry_points=(99,))


def test_empty_program():
    r = check(b"")
    assert r.findings == [] and r.ok


def test_ten_thousand_instructions_check_fast():
    # The vector-add kernel without its exit, repeated (each copy with its own loop label).
    body = VECTOR_ADD.split("mov host_int")[0].replace("loop", "L{n}")
    blocks = [body.replace("{n}", str(n)) for n in range(10000 // 24 + 1)]
    src = "".join(blocks) + "mov host_int, 1\n" + END
    prog = assemble_text(src)
    assert len(prog) >= 10000
    start = time.perf_counter()
    r = check(prog)
    elapsed = time.perf_counter() - start
    assert r.findings == [], str(r)[:2000]
    assert elapsed < 2.0, f"checking {len(prog)} instructions took {elapsed:.2f} s"


def test_every_static_rule_has_a_test():
    # Rules the checker must implement; each appears in an expect() above.
    import pathlib
    text = pathlib.Path(__file__).read_text()
    static = [r.id for r in RULES.values() if r.where in ("static", "both")]
    missing = [r for r in static if f'"{r}"' not in text]
    assert not missing, missing


def _words_with_branches():
    from hypothesis import strategies as st
    word = st.integers(0, (1 << 64) - 1)
    # Half of the words are branches with small relative offsets, so control flow gets exercised.
    branch = st.tuples(st.integers(0, 15), st.integers(-6, 6), st.integers(0, (1 << 20) - 1)).map(
        lambda t: (15 << 60) | (t[0] << 52) | (1 << 51) | (t[2] << 32) | ((8 * t[1]) & 0xFFFFFFFF))
    return st.lists(st.one_of(word, branch), max_size=24)


@pytest.mark.parametrize("threaded", [False, True])
def test_any_words_check_without_crashing(threaded):
    from hypothesis import given, settings

    @settings(max_examples=40)
    @given(_words_with_branches())
    def inner(words):
        r = check(words, threaded=threaded)
        for f in r.findings:
            assert f.rule in RULES and 0 <= f.index < len(words)
            assert f.level in (Level.ERROR, Level.WARNING, Level.INFO)
        assert len({(f.rule, f.index) for f in r.findings}) == len(r.findings)

    inner()
