"""Every run-time rule: one kernel that triggers it and one that does not.

Error-level rules raise RuleViolation in strict mode; warning-level rules are issued as
EmulatorWarning.  "Clean" kernels must produce no finding at all.  The rule ids are those
of qpu.isa.rules (shared with the static checker).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from emu_harness import END, Harness

from qpu.emulator.errors import DeadlockError, EmulatorWarning, JobTimeoutError, RuleViolation
from qpu.isa.rules import RULES, Level
from qpu.isa.vpm import SetupFormat, encode_setup

VW0 = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
VDW1 = encode_setup(SetupFormat.VDW_BASIC, units=1, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
VDR1 = encode_setup(SetupFormat.VDR_BASIC, modew=0, mpitch=3, rowlen=16, nrows=1, vpitch=1, vert=0, addrxy=0)
VDW16 = encode_setup(SetupFormat.VDW_BASIC, units=16, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
VDR16 = encode_setup(SetupFormat.VDR_BASIC, modew=0, mpitch=3, rowlen=16, nrows=16, vpitch=1, vert=0, addrxy=0)


def vr(num: int) -> int:
    return encode_setup(SetupFormat.VPM_READ, num=num, stride=1, horiz=1, laned=0, size=2, addr=0)


def run(src: str, uniforms=(), end: bool = True, num: int = 1, **kw):
    h = Harness()
    bus, buf = h.alloc(1024, fill=np.arange(1024))  # 4 KB of data at uniform 0
    unifs = [bus] + list(uniforms)
    return h.run(src + (END if end else ""), per_qpu_uniforms=[unifs] * num, **kw)


def clean(src: str, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmulatorWarning)
        report = run(src, **kw)
    assert report.hazards == []
    return report


def violates(rule: str, src: str, **kw) -> RuleViolation:
    assert RULES[rule].level is Level.ERROR
    with pytest.raises(RuleViolation) as info:
        run(src, **kw)
    assert info.value.rule == rule, str(info.value)
    return info.value


def warns(rule: str, src: str, **kw):
    assert RULES[rule].level is Level.WARNING
    with pytest.warns(EmulatorWarning, match=rule):
        report = run(src, **kw)
    assert rule in {f.rule for f in report.hazards}
    return report


PRE = "mov ra0, unif\nnop\n"     # ra0 = address of 64 valid words


def test_regfile_read_after_write():
    err = violates("regfile-read-after-write", PRE + "ldi ra1, 5\nmov r1, ra1\n")
    f = err.finding
    assert f.qpu == 0 and f.index == 3 and f.location is not None and f.location.line == 4
    assert "mov r1, ra1" in f.disassembly and "QPU 0 thread 0" in str(err) and "fix:" in str(err)
    clean(PRE + "ldi ra1, 5\nnop\nmov r1, ra1\n")
    # a conditional write that wrote no lane does not make the next read stale
    clean(PRE + "mov.setf -, 1\nmov.ifz ra1, 2\nmov r1, ra1\n")


def test_r4_read_after_sfu():
    violates("r4-read-after-sfu", PRE + "mov sfu_recip, ra0\nnop\nmov r1, r4\n")
    clean(PRE + "mov sfu_recip, ra0\nnop\nnop\nmov r1, r4\n")


def test_r4_write_after_sfu():
    violates("r4-write-after-sfu", PRE + "mov sfu_recip, ra0\nmov sfu_exp, ra0\nnop\nnop\n")
    violates("r4-write-after-sfu", PRE + "mov tmu0_s, ra0\nmov sfu_recip, ra0\nnop ; ldtmu0\nnop\n")
    clean(PRE + "mov sfu_recip, ra0\nnop\nnop\nmov sfu_exp, ra0\nnop\nnop\nmov r1, r4\n")


def test_rotate_after_r5_write():
    violates("rotate-after-r5-write", PRE + "mov r0, elem_num\nmov r5rep, 1\nnop ; mov r1, r0 >> r5\n")
    clean(PRE + "mov r0, elem_num\nmov r5rep, 1\nnop\nnop ; mov r1, r0 >> r5\n")


def test_rotate_after_acc_write():
    violates("rotate-after-acc-write", PRE + "mov r0, elem_num\nnop ; mov r1, r0 >> 1\n")
    clean(PRE + "mov r0, elem_num\nnop\nnop ; mov r1, r0 >> 1\n")
    # the addendum's three safe variants (Horizontal vector rotation)
    clean(PRE + "mov ra1, elem_num\nand.setf -, elem_num, 1\nmov r0, ra1\nnop ; mov.ifz r1, r0 << 1\n")
    clean(PRE + "mov ra1, elem_num\nshr.setf -, elem_num, 1\nmov.ifc r0, ra1\nnop ; mov r1, r0 << 1\n")
    clean(PRE + "mov ra1, elem_num\nand.setf -, elem_num, 12\nmov r0, ra1\nnop ; mov.ifnz r1, r0 >> 3\n")


def test_ldtmu_without_request():
    violates("ldtmu-without-request", PRE + "nop ; ldtmu0\n")
    clean(PRE + "mov tmu0_s, ra0\nnop ; ldtmu0\n")


def test_tmu_fifo_overflow_and_unreliable():
    nine = PRE + "mov tmu0_s, ra0\n" * 9 + "nop ; ldtmu0\n" * 9
    with pytest.warns(EmulatorWarning, match="tmu-fifo-unreliable"):
        violates("tmu-fifo-overflow", nine)
    warns("tmu-fifo-unreliable", PRE + "mov tmu0_s, ra0\n" * 5 + "nop ; ldtmu0\n" * 5)
    clean(PRE + "mov tmu0_s, ra0\n" * 4 + "nop ; ldtmu0\n" * 4)
    # the two TMUs have separate FIFOs
    clean(PRE + "mov tmu0_s, ra0\nmov tmu1_s, ra0\n" * 4 + "nop ; ldtmu0\nnop ; ldtmu1\n" * 4)


def test_tmu_fifo_is_shared_by_two_threads():
    # the FIFO has no notion of threads: each of two threads may use half of it (guide p.40),
    # and more than 4 in all is unreliable (addendum)
    body = "mov tmu0_s, ra0\n" * 2 + "nop ; thrsw\nnop\nnop\n" + "nop ; ldtmu0\n" * 2
    clean(PRE + body, threads=2, num=2)
    warns("tmu-fifo-unreliable", PRE + body.replace("mov tmu0_s, ra0\n" * 2, "mov tmu0_s, ra0\n" * 3).replace(
        "nop ; ldtmu0\n" * 2, "nop ; ldtmu0\n" * 3), threads=2, num=2)
    five = "mov tmu0_s, ra0\n" * 5 + "nop ; ldtmu0\n" * 5
    violates("tmu-fifo-overflow", PRE + five, threads=2, num=2)


def test_vpm_read_without_setup():
    violates("vpm-read-without-setup", PRE + "mov r0, vpm\n")
    violates("vpm-read-without-setup", PRE + f"ldi vr_setup, {vr(1):#x}\nmov r0, vpm\nmov r1, vpm\n")
    clean(PRE + f"ldi vw_setup, {VW0:#x}\nmov vpm, 1\nldi vr_setup, {vr(1):#x}\nmov r0, vpm\n")


def test_vpm_write_without_setup():
    violates("vpm-write-without-setup", PRE + "mov vpm, 1\n")
    clean(PRE + f"ldi vw_setup, {VW0:#x}\nmov vpm, 1\n")


def test_vpm_read_setup_queue():
    # addendum: 2 then 2 -> the second setup is ignored; 1 then 3 is fine
    violates("vpm-read-setup-queue", PRE + f"ldi vr_setup, {vr(2):#x}\nldi vr_setup, {vr(2):#x}\n" +
             "mov r0, vpm\n" * 4)
    clean(PRE + f"ldi vw_setup, {VW0:#x}\nmov vpm, 1\nldi vr_setup, {vr(1):#x}\nldi vr_setup, {vr(3):#x}\n" +
          "mov r0, vpm\n" * 4)


def test_vpm_reads_left():
    violates("vpm-reads-left", PRE + f"ldi vr_setup, {vr(2):#x}\nmov r0, vpm\n")
    clean(PRE + f"ldi vr_setup, {vr(2):#x}\nmov r0, vpm\nmov r0, vpm\n")


def test_dma_load_busy():
    warns("dma-load-busy", PRE + f"ldi vr_setup, {VDR1:#x}\nmov vr_addr, ra0\nmov vr_addr, ra0\nmov -, vr_wait\n")
    clean(PRE + f"ldi vr_setup, {VDR1:#x}\nmov vr_addr, ra0\nmov -, vr_wait\nmov vr_addr, ra0\nmov -, vr_wait\n")


def test_dma_store_busy():
    body = f"ldi vw_setup, {VW0:#x}\nmov vpm, 1\nldi vw_setup, {VDW1:#x}\n"
    warns("dma-store-busy", PRE + body + "mov vw_addr, ra0\nmov vw_addr, ra0\nmov -, vw_wait\n")
    clean(PRE + body + "mov vw_addr, ra0\nmov -, vw_wait\nmov vw_addr, ra0\nmov -, vw_wait\n")


def test_vpm_used_before_dma_wait():
    # a 16-row DMA (1 KB) certainly runs for 64 cycles (VPM at 16 bytes per cycle, timing.py)
    fill = f"ldi vw_setup, {VW0:#x}\n" + "mov vpm, 1\n" * 16
    body = fill + f"ldi vw_setup, {VDW16:#x}\nmov vw_addr, ra0\n"
    violates("vpm-used-before-dma-wait", PRE + body + f"ldi vw_setup, {VW0:#x}\nmov vpm, 2\nmov -, vw_wait\n")
    violates("vpm-used-before-dma-wait", PRE + f"ldi vr_setup, {VDR16:#x}\nmov vr_addr, ra0\n"
             f"ldi vr_setup, {vr(1):#x}\nmov r0, vpm\nmov -, vr_wait\n")
    clean(PRE + body + f"mov -, vw_wait\nldi vw_setup, {VW0:#x}\nmov vpm, 2\n")
    clean(PRE + f"ldi vr_setup, {VDR16:#x}\nmov vr_addr, ra0\nmov -, vr_wait\nldi vr_setup, {vr(1):#x}\n"
          "mov r0, vpm\n")
    # rows the DMA does not touch are free to use
    vw16 = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=16)
    clean(PRE + body + f"ldi vw_setup, {vw16:#x}\nmov vpm, 2\nmov -, vw_wait\n")


def test_vpm_setup_reserved():
    violates("vpm-setup-reserved", PRE + "ldi vw_setup, 0x40000000\n")
    clean(PRE + f"ldi vw_setup, {VW0:#x}\n")


def test_thread_end_io():
    violates("thread-end-io", PRE + "mov r0, unif\nnop ; nop ; thrend\nmov r1, unif\nnop\n", uniforms=[5, 6],
             end=False)
    clean(PRE + "mov r0, unif\nmov r1, unif\nnop ; nop ; thrend\nnop\nnop\n", uniforms=[5, 6], end=False)


def test_memory_out_of_bounds():
    err = violates("memory-out-of-bounds", PRE + "ldi r1, 0x1000\nsub tmu0_s, ra0, r1\nnop ; ldtmu0\n")
    assert "TMU lane 0" in str(err)
    violates("memory-out-of-bounds", PRE + "ldi r1, 0x100000\nadd unif_addr, ra0, r1\nnop\nnop\nmov r0, unif\n")
    clean(PRE + "ldi r1, 0xfc\nadd tmu0_s, ra0, r1\nnop ; ldtmu0\n")


def test_memory_misaligned():
    violates("memory-misaligned", PRE + "add tmu0_s, ra0, 2\nnop ; ldtmu0\n")
    violates("memory-misaligned", PRE + f"ldi vr_setup, {VDR1:#x}\nadd vr_addr, ra0, 2\nmov -, vr_wait\n")
    clean(PRE + "add tmu0_s, ra0, 4\nnop ; ldtmu0\n")


def test_undefined_value():
    violates("undefined-value", PRE + "mov tmu0_s, ra5\nnop ; ldtmu0\n")          # TMU address
    violates("undefined-value", PRE + f"ldi vw_setup, {VDW1:#x}\nmov vw_addr, ra0\nmov -, vw_wait\n")
    violates("undefined-value", PRE + "mov vw_setup, rb7\n")                        # setup register
    violates("undefined-value", PRE + "mov unif_addr, r3\n")
    violates("undefined-value", PRE + "mov.setf -, rb9\nbrr.anyz -, 0\nnop\nnop\nnop\n")   # branch decision
    violates("undefined-value", PRE + "bra -, ra8\nnop\nnop\nnop\n")                # branch target
    violates("undefined-value", PRE + "mov tmu0_s, r4\nnop ; ldtmu0\n")            # r4 never written
    # reading and moving undefined values is legal: the "or r0, r0, r0 ; ldtmu0" idiom
    clean(PRE + "mov tmu0_s, ra0\nor r0, r0, r0 ; ldtmu0\nmov ra5, rb5\n")
    # xor of an undefined register with itself is still "undefined" to the tracker, but a full
    # overwrite makes it defined again
    clean(PRE + "xor r1, r1, r1\nmov r1, 0\nadd tmu0_s, ra0, r1\nnop ; ldtmu0\n")


def test_uniform_after_address_write():
    violates("uniform-after-address-write", PRE + "mov unif_addr, ra0\nnop\nmov r0, unif\n")
    clean(PRE + "mov unif_addr, ra0\nnop\nnop\nmov r0, unif\n")


def test_host_int_zero():
    warns("host-int-zero", PRE + "mov host_int, 0\n")
    report = clean(PRE + "mov host_int, 1\n")
    assert report.host_interrupts == 1


def test_reserved_encoding():
    violates("reserved-encoding", PRE + ".word 0x100009e709000000\n")   # add opcode 9 is reserved
    clean(PRE + "nop ; nop ; thrend\nnop\nnop\n.word 0x100009e709000000\n", end=False)


def test_breakpoint():
    warns("breakpoint", PRE + "nop ; bkpt\n")
    clean(PRE + "nop\n")


def test_unsupported():
    violates("unsupported", PRE + "mov tmu0_t, ra0\n")
    violates("unsupported", PRE + "mov r0, vary\n")
    # 8/16-bit VPM DMA is documented as not modelled (docs/emulator.md "Not modelled")
    vdw16bit = encode_setup(SetupFormat.VDW_BASIC, units=1, depth=16, laned=0, horiz=1, vpmbase=0, modew=2)
    violates("unsupported", PRE + f"ldi vw_setup, {vdw16bit:#x}\nmov vw_addr, ra0\nmov -, vw_wait\n")
    clean(PRE + "mov tmu0_s, ra0\nnop ; ldtmu0\n")


def test_branch_in_delay_slot():
    violates("branch-in-delay-slot", PRE + "brr -, 0\nbrr -, 0\nnop\nnop\nnop\n")
    # also when the first branch is not taken (addendum)
    violates("branch-in-delay-slot", PRE + "mov.setf -, 1\nbrr.allz -, 0\nnop\nbrr -, 0\nnop\nnop\nnop\n")
    # the addendum's shortest sequence: a branch in the third delay slot of another is fine
    clean(PRE + """
        brr ra31, target
        nop
        nop
        brr -, done
    target:
        nop
        nop
        nop
    done:
    """)


def test_deadlock_and_timeout():
    with pytest.raises(DeadlockError):
        run(PRE + "sacq -, 9\n")
    clean(PRE + "srel -, 9\nsacq -, 9\n")
    with pytest.raises(JobTimeoutError):
        run(PRE + "l: brr -, l\nnop\nnop\nnop\n", timeout_ms=0)
    clean(PRE + "mov.setf -, 0\nl: brr.allnz -, l\nnop\nnop\nnop\n")   # Z set: falls through


def test_lenient_mode_reports_and_continues():
    h = Harness(strict=False)
    bus, _ = h.alloc(16, fill=1)
    with pytest.warns(EmulatorWarning):
        report = h.run("mov ra0, unif\nldi ra1, 5\nmov r1, ra1\nmov tmu0_s, ra7\nnop ; ldtmu0\n" + END, [bus])
    rules = [f.rule for f in report.hazards]
    assert rules == ["regfile-read-after-write", "undefined-value"]
    assert report.completed


def test_same_finding_counted_once_per_pc():
    h = Harness(strict=False)
    src = "ldi r0, 3\nl: sub.setf r0, r0, 1\nmov host_int, 0\nbrr.anynz -, l\nnop\nnop\nnop\n"
    with pytest.warns(EmulatorWarning):
        report = h.run(src + END)
    assert [(f.rule, f.count) for f in report.hazards] == [("host-int-zero", 3)]
