"""The loop's scheduler: shared units see the QPUs' requests in time order, whatever the QPU numbers.

The reference is the program's own timing, computed here by hand: a delay loop of five
4-cycle instructions per iteration (no stalls: no memory access), iteration counts 2000
cycles apart, so the mutex goes to the QPUs in the order of their delays.
"""

from __future__ import annotations

import numpy as np
from emu_harness import END, Harness

from qpu.isa.vpm import SetupFormat, encode_setup

# Delay-loop iterations per QPU: a permutation, 100 apart (2000 cycles, far more than a QPU
# holds the mutex), so that every request meets a free mutex and the order is the delays'.
ORDER = [5, 11, 0, 7, 2, 9, 4, 10, 1, 6, 3, 8]


def _program() -> str:
    vw = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    vdw = encode_setup(SetupFormat.VDW_BASIC, units=1, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    return f"""
        mov ra0, unif                     # counter address
        mov ra4, unif                     # this QPU's output row
        mov ra1, unif                     # VPM row of this QPU
        mov r0, unif                      # delay-loop iterations
        ldi r1, {vw:#x}
        add ra2, ra1, r1                  # VPM write setup, row <index>
        ldi r2, {vdw:#x}
        shl r3, ra1, 7                    # vpmbase = row << 4, field at bit 3
        add ra3, r2, r3
    delay:
        sub.setf r0, r0, 1
        brr.anynz -, delay
        nop
        nop
        nop
        mov -, mutex                      # acquire
        mov tmu0_s, ra0
        nop ; ldtmu0
        mov r0, r4                        # the number of QPUs before this one
        mov vw_setup, ra2
        mov vpm, r0
        mov vw_setup, ra3
        mov vw_addr, ra4
        mov -, vw_wait
        add r0, r0, 1
        mov vw_setup, ra2
        mov vpm, r0
        mov vw_setup, ra3
        mov vw_addr, ra0
        mov -, vw_wait
        mov mutex, 0                      # release
    """


def test_mutex_goes_to_the_qpus_in_time_order():
    h = Harness()
    cnt_bus, cnt = h.alloc(16, fill=0)
    out_bus, out = h.alloc((12, 16), fill=0xFFFFFFFF)
    lists = [[cnt_bus, out_bus + 64 * q, q, 100 * ORDER[q] + 1] for q in range(12)]
    report = h.run(_program() + END, per_qpu_uniforms=lists, timeout_ms=1000)
    # the rank of each QPU's delay among the twelve (independent of the emulator's scheduler)
    expected = np.argsort(np.argsort(ORDER))
    np.testing.assert_array_equal(out[:, 0], expected)
    assert (out == out[:, :1]).all()
    assert (cnt == 12).all()
    # requests 2000 cycles apart never meet a held mutex
    assert report.stalls["mutex"] == 0
