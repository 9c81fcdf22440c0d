"""Timing model: relations between predicted times, not absolute numbers (issue 5)."""

from __future__ import annotations

import numpy as np
from emu_harness import END, Harness

from qpu.emulator.timing import DEFAULT_TIMING, TimingParameters
from qpu.isa.vpm import SetupFormat, encode_setup


def _twice(h: Harness, src: str):
    """Run the same code at the same address twice: the second run finds it cached."""
    code_bus, _ = h.load(src)
    ubus, _ = h.alloc(1)
    cbus, ctl = h.alloc((1, 2))
    ctl[0] = (ubus, code_bus)
    return h.v3d.execute(1, cbus), h.v3d.execute(1, cbus)


def test_cycles_are_four_per_instruction_without_stalls():
    # guide p.16: four clocks per instruction; the second run has its code in the
    # instruction cache, so nothing stalls
    first, report = _twice(Harness(), "nop\n" * 10 + END)
    assert report.instructions == first.instructions == 13
    assert report.cycles == 4 * 13
    assert report.seconds == report.cycles / 250e6
    assert sum(report.stalls.values()) == 0
    assert first.cycles == 4 * 13 + sum(first.stalls.values())


def test_clock_rate_only_scales_seconds():
    at_250 = Harness().run("nop\n" * 10 + END)
    at_400 = Harness(clock_hz=400_000_000).run("nop\n" * 10 + END)
    assert at_400.cycles == at_250.cycles and at_400.seconds == at_400.cycles / 400e6


def _dma_rows(one_block: bool) -> int:
    h = Harness()
    out_bus, out = h.alloc((16, 16), fill=0)
    vw = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    lines = ["mov ra0, unif", f"ldi vw_setup, {vw:#x}"] + ["mov vpm, elem_num"] * 16
    if one_block:
        setup = encode_setup(SetupFormat.VDW_BASIC, units=16, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
        lines += [f"ldi vw_setup, {setup:#x}", "mov vw_addr, ra0", "mov -, vw_wait"]
    else:
        lines += ["ldi rb1, 64", "mov r1, ra0"]
        for row in range(16):
            setup = encode_setup(SetupFormat.VDW_BASIC, units=1, depth=16, laned=0, horiz=1, vpmbase=row << 4,
                                 modew=0)
            lines += [f"ldi vw_setup, {setup:#x}", "mov vw_addr, r1", "add r1, r1, rb1", "mov -, vw_wait"]
    report = h.run("\n".join(lines) + END, [out_bus])
    assert (out == np.arange(16)).all()
    return report.cycles


def test_one_dma_of_16_rows_beats_16_dmas_of_one_row():
    assert _dma_rows(True) < _dma_rows(False)


def _copy_job(num: int, blocks: int) -> int:
    """Each QPU copies ``blocks`` blocks of 16 rows with VCD load + VDW store (DMA bound)."""
    h = Harness(mem_size=16 << 20)
    vdr = encode_setup(SetupFormat.VDR_BASIC, modew=0, mpitch=3, rowlen=16, nrows=4, vpitch=1, vert=0, addrxy=0)
    vdw = encode_setup(SetupFormat.VDW_BASIC, units=4, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    src = f"""
        mov ra0, unif
        mov ra1, unif
        mov r0, unif              # index: VPM rows 4 * index
        shl r1, r0, 6             # Y = 4 * index, addrxy = Y << 4
        ldi r2, {vdr:#x}
        add ra2, r1, r2
        shl r1, r0, 9             # vpmbase 4 rows << 4 at bit 3
        ldi r2, {vdw:#x}
        add ra3, r1, r2
        ldi ra4, {blocks}
        ldi rb5, 256
    loop:
        mov vr_setup, ra2
        mov vr_addr, ra0
        mov -, vr_wait
        mov vw_setup, ra3
        mov vw_addr, ra1
        mov -, vw_wait
        sub.setf ra4, ra4, 1
        add ra0, ra0, rb5
        brr.anynz -, loop
        add ra1, ra1, rb5
        nop
        nop
    """
    lists = []
    for k in range(num):
        a, av = h.alloc(64 * blocks, fill=np.arange(64 * blocks) + k)
        b, bv = h.alloc(64 * blocks, fill=0)
        lists.append([a, b, k])
    report = h.run(src + END, per_qpu_uniforms=lists, timeout_ms=10000)
    return report.cycles


def test_twelve_qpus_on_a_dma_bound_copy_are_not_twelve_times_faster():
    t1 = _copy_job(1, 8)
    t12 = _copy_job(12, 8)       # twelve times the data
    assert t12 > 4 * t1          # one load and one store engine shared by all QPUs (issue 5)


def _tmu_rounds(threads: int) -> int:
    h = Harness()
    data_bus, data = h.alloc(16, fill=5)
    src = """
        mov ra0, unif
        ldi ra1, 8
    loop:
        mov tmu0_s, ra0
        nop ; thrsw
        nop
        nop
        nop ; ldtmu0
        sub.setf ra1, ra1, 1      # flags do not survive a thread switch (guide p.21)
        add r1, r4, 1
        brr.anynz -, loop
        nop
        nop
        nop
    """
    report = h.run(src + END, per_qpu_uniforms=[[data_bus], [data_bus]], threads=threads)
    return report.cycles


def test_two_threads_hide_tmu_latency():
    # two programs with back-to-back TMU loads and thread switches: on one QPU with two
    # threads they take fewer cycles than on two QPUs' worth of sequential single-thread work
    one_thread_each = _tmu_rounds(1)      # two QPUs in parallel, each waits for its own loads
    two_threads = _tmu_rounds(2)          # one QPU, the other thread runs during the wait
    assert two_threads < 2 * one_thread_each


def test_tmu_latency_stall_is_attributed_to_the_ldtmu_instruction():
    h = Harness(timing=TimingParameters(tmu_latency=100.0))
    bus, _ = h.alloc(16, fill=1)
    code_bus, program = h.load("mov ra0, unif\nnop\nmov tmu0_s, ra0\nnop ; ldtmu0\n" + END)
    ubus, u = h.alloc(1, fill=bus)
    cbus, ctl = h.alloc((1, 2))
    ctl[0] = (ubus, code_bus)
    report = h.v3d.execute(1, cbus)
    stalls_by_pc = {addr - code_bus: s for addr, (n, s) in report.profile.items()}
    assert stalls_by_pc[8 * 3] >= 100 - 8 and report.stalls["tmu"] == stalls_by_pc[8 * 3]
    assert all(n == 1 for n, _ in report.profile.values()) and len(report.profile) == 7


def test_semaphore_wait_is_a_stall():
    # QPU 1 waits for QPU 0, which loops 50 times before releasing
    src = """
        mov.setf -, unif
        brr.anynz -, waiter
        nop
        nop
        nop
        ldi r0, 50
    l:  sub.setf r0, r0, 1
        brr.anynz -, l
        nop
        nop
        nop
        srel -, 1
        brr -, done
        nop
        nop
        nop
    waiter:
        sacq -, 1
    done:
    """
    report = Harness().run(src + END, per_qpu_uniforms=[[0], [1]])
    waiter, releaser = report.per_qpu[1], report.per_qpu[0]
    assert waiter["stalls"]["semaphore"] > 50 * 4 * 4
    # the releasing QPU never waits: at most its semaphore instruction's own cost
    assert releaser["stalls"]["semaphore"] <= DEFAULT_TIMING.semaphore_cycles + 1
    assert report.stalls["semaphore"] == waiter["stalls"]["semaphore"] + releaser["stalls"]["semaphore"]
