"""``qpu selftest``: run one small kernel end to end and check it against numpy.

The kernel touches every path a first run on a Pi depends on: uniforms, TMU loads
from GPU memory, the float and integer ALUs, VPM writes, a VPM DMA store back to GPU
memory, a host interrupt and program end.  For 16 lanes it computes, from float32
inputs a and b::

    row 0: a + b                        (fadd; compared within 1 ulp: the guide does not
                                         specify the rounding of float adds)
    row 1: bits(a) + bits(b) mod 2**32  (integer add of the bit patterns; exact)

It is written in assembly text (docs/syntax.md) so it needs nothing but the
assembler, and the setup words come from qpu.isa.vpm (guide Tables 32 and 34).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from qpu.isa.vpm import SetupFormat, encode_setup
from qpu.program import Program

SELFTEST_SOURCE = """\
# qpu selftest: uniforms (a address, b address, out address)
    shl r0, elem_num, 2             # byte offset of this lane
    add r1, unif, r0                # &a[lane]
    add r2, unif, r0                # &b[lane]
    mov tmu0_s, r1                  # TMU0 request: a
    mov tmu0_s, r2                  # TMU0 request: b
    mov ra0, unif                   # out address
    ldi vw_setup, {vpm_write:#010x}  # VPM write: horizontal, 32-bit, stride 1, from row 0
    nop ; ldtmu0                    # r4 = a
    mov r3, r4
    nop ; ldtmu0                    # r4 = b
    fadd vpm, r3, r4                # row 0: a + b
    add vpm, r3, r4                 # row 1: bits(a) + bits(b)
    ldi vw_setup, {dma_store:#010x}  # DMA store: 2 rows of 16 words from VPM (0, 0)
    mov vw_addr, ra0                # start the store
    nop ; read vw_wait              # wait for it
    mov host_int, 1
    nop ; thrend
    nop
    nop
"""


def selftest_program() -> Program:
    from qpu.text_assembler import assemble_text

    vpm_write = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    dma_store = encode_setup(SetupFormat.VDW_BASIC, units=2, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    return assemble_text(SELFTEST_SOURCE.format(vpm_write=vpm_write, dma_store=dma_store), name="qpu-selftest")


def _ulp_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between float32 arrays (sign-magnitude aware)."""
    def ordered(a: np.ndarray) -> np.ndarray:
        i = a.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return np.abs(ordered(x) - ordered(y))


def selftest(backend: Any = None, verbose: bool = False, seed: int = 12345,
             out: Optional[Callable[[str], None]] = None, **driver_options: Any) -> bool:
    """Run the self-test kernel; True when the results match numpy.  Prints progress if ``verbose``."""
    from .driver import Driver

    say = out if out is not None else print

    def note(text: str) -> None:
        if verbose:
            say(text)

    rng = np.random.default_rng(seed)
    a = rng.uniform(-100.0, 100.0, 16).astype(np.float32)
    b = rng.uniform(-100.0, 100.0, 16).astype(np.float32)
    expected_sum = (a + b).astype(np.float32)
    expected_bits = (a.view(np.uint32).astype(np.uint64) + b.view(np.uint32)) & 0xFFFFFFFF

    with Driver(backend, data_area_size=1 << 20, code_area_size=64 << 10, **driver_options) as drv:
        note(f"qpu selftest: {drv.backend_name} backend ({drv.backend_reason}); {drv.pi}; "
             f"V3D at {drv.clock_hz / 1e6:g} MHz")
        ga, gb = drv.copy(a), drv.copy(b)
        result = drv.alloc((2, 16), np.uint32)
        result[...] = 0xDEADBEEF
        program = drv.program(selftest_program())
        report = drv.execute(1, program, uniforms=[ga.address, gb.address, result.address], timeout=1000)
        got_sum = np.array(result[0]).view(np.float32)
        got_bits = np.array(result[1]).astype(np.uint64)
    ok_bits = bool(np.array_equal(got_bits, expected_bits))
    ulps = _ulp_distance(got_sum, expected_sum)
    ok_sum = bool((ulps <= 1).all())
    note(f"  run: {report}")
    note(f"  integer add of 16 lanes: {'ok' if ok_bits else 'WRONG'}")
    note(f"  float add of 16 lanes:   {'ok' if ok_sum else 'WRONG'} (max {int(ulps.max())} ulp from numpy)")
    if not ok_bits:
        note(f"    expected {expected_bits.astype(np.uint32)}\n    got      {got_bits.astype(np.uint32)}")
    if not ok_sum:
        note(f"    expected {expected_sum}\n    got      {got_sum}")
    note("qpu selftest: " + ("PASSED" if ok_bits and ok_sum else "FAILED"))
    return ok_bits and ok_sum
