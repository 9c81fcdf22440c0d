"""qpu.macros: VPM/DMA setup words and emitted sequences, against hand-computed values.

Setup words are computed here with explicit shifts from the Reference Guide's Section 7
tables (Table 32 VPM write p.57, Table 33 VPM read p.58, Table 34 VDW basic p.58,
Table 35 VDW stride p.59 with the 16-bit stride of the vc4asm addendum, Table 36 VDR
basic p.59, Table 37 VDR stride p.60), and cross-checked against GPU_FFT's documented
words (raspberrypi/userland hello_fft/hex/shader_*.hex comments).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, List

import pytest

from qpu import macros
from qpu.builder import Kernel, assemble
from qpu.dsl import AssemblyError, r0, r1, ra0, ra1, ra2

# Table 2 (p.28) ALWAYS; Table 3 (p.28) muxes; Table 14 (p.37-38) addresses.
ALWAYS = 1
R0, R4, MUX_A = 0, 4, 6
VR_SETUP = VW_SETUP = 49
VR_ADDR = VW_ADDR = 50
VR_WAIT = 50
SFU_RECIP, SFU_RECIPSQRT, SFU_EXP, SFU_LOG, TMU0_S, TMU1_S = 52, 53, 54, 55, 56, 60


def alu(*, sig: int = 1, cond_add: int = 0, ws: int = 0, waddr_add: int = 39, op_add: int = 0,
        raddr_a: int = 39, raddr_b: int = 39, add_a: int = 0, add_b: int = 0) -> int:
    """ALU word (Figure 3 / Table 1, p.26-27) with a mul nop."""
    return (sig << 60 | cond_add << 49 | ws << 44 | waddr_add << 38 | 39 << 32 | op_add << 24 | raddr_a << 18
            | raddr_b << 12 | add_a << 9 | add_b << 6)


def ldi(imm: int, *, waddr_add: int, ws: int = 0) -> int:
    """32-bit load immediate (Figure 5, p.33) writing through the add ALU."""
    return 14 << 60 | ALWAYS << 49 | ws << 44 | waddr_add << 38 | 39 << 32 | imm


NOP = alu()


def mov(waddr: int, *, ws: int = 0, raddr_a: int = 39, mux: int = MUX_A, cond: int = ALWAYS) -> int:
    """mov = or dst, src, src (op_add 21, Table 12)."""
    return alu(op_add=21, cond_add=cond, ws=ws, waddr_add=waddr, raddr_a=raddr_a, add_a=mux, add_b=mux)


def vpm_read(num: int, stride: int, horiz: int, laned: int, size: int, addr: int) -> int:
    # Table 33: ID 31:30 = 0, NUM 23:20 (0 => 16), STRIDE 17:12 (0 => 64), HORIZ 11, LANED 10, SIZE 9:8, ADDR 7:0
    return (num % 16) << 20 | (stride % 64) << 12 | horiz << 11 | laned << 10 | size << 8 | addr


def vpm_write(stride: int, horiz: int, laned: int, size: int, addr: int) -> int:
    # Table 32: ID 31:30 = 0, STRIDE 17:12 (0 => 64), HORIZ 11, LANED 10, SIZE 9:8, ADDR 7:0
    return (stride % 64) << 12 | horiz << 11 | laned << 10 | size << 8 | addr


def vdr(modew: int, mpitch: int, rowlen: int, nrows: int, vpitch: int, vert: int, addrxy: int) -> int:
    # Table 36: ID bit 31, MODEW 30:28, MPITCH 27:24, ROWLEN 23:20 (0 => 16), NROWS 19:16 (0 => 16),
    # VPITCH 15:12 (0 => 16), VERT 11, ADDRXY 10:0
    return (1 << 31 | modew << 28 | mpitch << 24 | (rowlen % 16) << 20 | (nrows % 16) << 16 | (vpitch % 16) << 12
            | vert << 11 | addrxy)


def vdw(units: int, depth: int, horiz: int, vpmbase: int, modew: int) -> int:
    # Table 34: ID 31:30 = 2, UNITS 29:23 (0 => 128), DEPTH 22:16 (0 => 128), LANED 15 = 0, HORIZ 14,
    # VPMBASE 13:3, MODEW 2:0
    return 2 << 30 | (units % 128) << 23 | (depth % 128) << 16 | horiz << 14 | vpmbase << 3 | modew


def line_here() -> int:
    return sys._getframe(1).f_lineno


# ------------------------------------------------------------------------------------------
# Setup words
# ------------------------------------------------------------------------------------------

def test_vpm_read_setup_matches_gpu_fft() -> None:
    # shader_256.hex: "0x00101200, 0xe0020827, // mov r0, vpm_setup(1, 1, v32( 0,0))"
    assert macros.vpm_read_setup(1, horizontal=False) == 0x00101200
    # "mov r1, vpm_setup(1, 1, v32(16,0)) - vpm_setup(1, 1, v32(0,0))" = 0x10
    assert macros.vpm_read_setup(1, horizontal=False, y=16) - 0x00101200 == 0x10
    # "mov r2, vpm_setup(1, 1, v32( 0,2)) - vpm_setup(1, 1, v32(0,0))" = 2
    assert macros.vpm_read_setup(1, horizontal=False, x=2) - 0x00101200 == 2


@pytest.mark.parametrize("kwargs, expected", [
    (dict(nrows=16), vpm_read(16, 1, 1, 0, 2, 0)),
    (dict(nrows=5, y=33, size=16, laned=True, half=1, stride=64), vpm_read(5, 64, 1, 1, 1, 33 << 1 | 1)),
    (dict(nrows=2, y=63, size=8, byte=3), vpm_read(2, 1, 1, 0, 0, 63 << 2 | 3)),
    # vertical 16-bit {Y[5:4], X[3:0], H}: y=32, x=7, half=1
    (dict(nrows=16, y=32, x=7, size=16, half=1, horizontal=False), vpm_read(16, 1, 0, 0, 1, 2 << 5 | 7 << 1 | 1)),
    # vertical 8-bit {Y[5:4], X[3:0], B[1:0]}: y=48, x=15, byte=2
    (dict(nrows=3, y=48, x=15, size=8, byte=2, horizontal=False, laned=True),
     vpm_read(3, 1, 0, 1, 0, 3 << 6 | 15 << 2 | 2)),
    # vertical 32-bit {Y[5:4], X[3:0]}
    (dict(nrows=1, y=48, x=15, horizontal=False, stride=17), vpm_read(1, 17, 0, 0, 2, 3 << 4 | 15)),
])
def test_vpm_read_setup(kwargs: Any, expected: int) -> None:
    assert macros.vpm_read_setup(**kwargs) == expected


@pytest.mark.parametrize("kwargs, expected", [
    (dict(), vpm_write(1, 1, 0, 2, 0)),
    (dict(y=2), vpm_write(1, 1, 0, 2, 2)),
    (dict(y=10, size=8, laned=True, byte=1, stride=3), vpm_write(3, 1, 1, 0, 10 << 2 | 1)),
    (dict(y=16, x=4, size=16, half=1, horizontal=False, stride=64), vpm_write(64, 0, 0, 1, 1 << 5 | 4 << 1 | 1)),
])
def test_vpm_write_setup(kwargs: Any, expected: int) -> None:
    assert macros.vpm_write_setup(**kwargs) == expected


@pytest.mark.parametrize("kwargs, expected", [
    (dict(), vdr(0, 3, 16, 1, 1, 0, 0)),
    (dict(nrows=16, ncols=16, y=16), vdr(0, 3, 16, 16, 1, 0, 16 << 4)),
    (dict(nrows=4, ncols=8, y=10, x=3, size=16, offset=1, horizontal=False, vpitch=16, mpitch=0),
     vdr(2 | 1, 0, 8, 4, 16, 1, 10 << 4 | 3)),
    (dict(nrows=1, ncols=1, y=127, x=15, size=8, offset=2, mpitch=15, vpitch=7), vdr(4 | 2, 15, 1, 1, 7, 0, 0x7FF)),
])
def test_dma_load_setup(kwargs: Any, expected: int) -> None:
    assert macros.dma_load_setup(**kwargs) == expected


def test_dma_load_stride_setup() -> None:
    # Table 37: ID 31:28 = 9, MPITCHB 12:0
    assert macros.dma_load_stride_setup(0x1234) == 9 << 28 | 0x1234
    assert macros.dma_load_stride_setup(8191) == 9 << 28 | 0x1FFF


def test_dma_store_setup_matches_gpu_fft() -> None:
    # shader_256.hex: "0x88104000, 0xe0020727, // mov ra_vdw, vdw_setup_0(16, 16, dma_h32( 0,0))"
    assert macros.dma_store_setup(16, 16) == 0x88104000
    # "0x88104800, 0xe0021727, // mov rb_vdw, vdw_setup_0(16, 16, dma_h32(16,0))"
    assert macros.dma_store_setup(16, 16, y=16) == 0x88104800
    # shader_1024k.hex: "0x80904000 ... vdw_setup_0(1, 16, dma_h32( 0,0))", "0x80905000 ... dma_h32(32,0))"
    assert macros.dma_store_setup(1, 16) == 0x80904000
    assert macros.dma_store_setup(1, 16, y=32) == 0x80905000
    # shader_128k.hex: "0x90104000 ... vdw_setup_0(32, 16, dma_h32( 0,0))"
    assert macros.dma_store_setup(32, 16) == 0x90104000


def test_dma_store_setup_fields() -> None:
    assert macros.dma_store_setup(128, 128, y=127, x=15, size=8, offset=3, horizontal=False) == \
        vdw(128, 128, 0, 127 << 4 | 15, 4 | 3)
    assert macros.dma_store_setup(3, 5, y=1, x=2, size=16, offset=1) == vdw(3, 5, 1, 1 << 4 | 2, 2 | 1)


def test_dma_store_stride_setup() -> None:
    # shader_256.hex: "0xc0000040, 0xe0021c67, // mov vw_setup, vdw_setup_1(0) + PASS16_STRIDE-16*4"
    assert macros.dma_store_stride_setup(64) == 0xC0000040
    # Table 35: ID 31:30 = 3, BLOCKMODE 16, STRIDE 15:0 (16 bits per the vc4asm addendum, not 12:0)
    assert macros.dma_store_stride_setup(65535, blockmode=True) == 3 << 30 | 1 << 16 | 0xFFFF
    assert macros.dma_store_stride_setup(0x2000) == 3 << 30 | 0x2000  # beyond the 13 bits the guide prints


# ------------------------------------------------------------------------------------------
# Emitted sequences
# ------------------------------------------------------------------------------------------

def test_emitting_macros() -> None:
    def kern(k: Kernel) -> None:
        k.setup_vpm_read(16)
        k.setup_vpm_write(y=2)
        k.setup_dma_load(16, 16, y=16)
        k.setup_dma_store(16, 16)
        k.setup_dma_load_stride(256)
        k.setup_dma_store_stride(64)
        k.start_dma_load(ra0)
        k.start_dma_store(ra2)
        k.wait_dma_load()
        k.wait_dma_store()
    assert assemble(kern).words == [
        ldi(vpm_read(16, 1, 1, 0, 2, 0), waddr_add=VR_SETUP),          # vr_setup: write A 49
        ldi(vpm_write(1, 1, 0, 2, 2), waddr_add=VW_SETUP, ws=1),       # vw_setup: write B 49
        ldi(vdr(0, 3, 16, 16, 1, 0, 16 << 4), waddr_add=VR_SETUP),
        ldi(0x88104000, waddr_add=VW_SETUP, ws=1),
        ldi(9 << 28 | 256, waddr_add=VR_SETUP),
        0xE0021C67_C0000040,  # GPU_FFT "0xc0000040, 0xe0021c67, // mov vw_setup, vdw_setup_1(0) + ..."
        mov(VR_ADDR, raddr_a=0),             # mov vr_addr, ra0 (write A 50)
        mov(VW_ADDR, ws=1, raddr_a=2),       # mov vw_addr, ra2 (write B 50)
        mov(39, raddr_a=VR_WAIT, cond=0),    # mov -, vr_wait (read A 50), result discarded
        0x100009E7_159F2FC0,                 # GPU_FFT "0x159f2fc0, 0x100009e7, // mov -, vw_wait"
    ]


def test_kernel_methods_delegate_to_macros() -> None:
    def via_methods(k: Kernel) -> None:
        k.setup_vpm_read(3, y=5, stride=2)
        k.setup_dma_store(4, 8, y=3, size=16, offset=1)
        k.tmu_load(ra1, tmu=1, dst=ra2)

    def via_functions(k: Kernel) -> None:
        macros.setup_vpm_read(k, 3, y=5, stride=2)
        macros.setup_dma_store(k, 4, 8, y=3, size=16, offset=1)
        macros.tmu_load(k, ra1, tmu=1, dst=ra2)
    assert assemble(via_methods).words == assemble(via_functions).words


def test_strides_from_registers() -> None:
    def kern(k: Kernel) -> None:
        k.setup_dma_store_stride(ra1, blockmode=True, tmp=r0)
        k.setup_dma_load_stride(ra1, tmp=r1)
    assert assemble(kern).words == [
        ldi(3 << 30 | 1 << 16, waddr_add=32),  # ldi r0, 0xc0010000
        alu(op_add=21, cond_add=ALWAYS, ws=1, waddr_add=VW_SETUP, raddr_a=1, add_a=R0, add_b=MUX_A),
        ldi(9 << 28, waddr_add=33),            # ldi r1, 0x90000000
        alu(op_add=21, cond_add=ALWAYS, waddr_add=VR_SETUP, raddr_a=1, add_a=1, add_b=MUX_A),
    ]


def test_tmu_load() -> None:
    assert assemble(lambda k: k.tmu_load(ra1, dst=ra2)).words == [
        mov(TMU0_S, raddr_a=1),
        0xA00009E7_009E7000,  # GPU_FFT "0x009e7000, 0xa00009e7, // ldtmu0"
        mov(2, mux=R4),       # mov ra2, r4
    ]
    assert assemble(lambda k: k.tmu_load(ra1, tmu=1)).words == [mov(TMU1_S, raddr_a=1), 0xB00009E7_009E7000]


@pytest.mark.parametrize("fn, addr", [(macros.sfu_recip, SFU_RECIP), (macros.sfu_recipsqrt, SFU_RECIPSQRT),
                                      (macros.sfu_exp2, SFU_EXP), (macros.sfu_log2, SFU_LOG)])
def test_sfu(fn: Callable[..., None], addr: int) -> None:
    # write the SFU register, two instructions that leave r4 alone, then read r4 (guide p.23)
    assert assemble(lambda k: fn(k, ra1, r0)).words == [mov(addr, mux=R0), NOP, NOP, mov(1, mux=R4)]


# ------------------------------------------------------------------------------------------
# Errors name the argument, the range and the kernel line
# ------------------------------------------------------------------------------------------

ERRORS: List[Any] = [
    (lambda: macros.vpm_read_setup(0), "nrows=0 out of range 1..16"),
    (lambda: macros.vpm_read_setup(17), "nrows=17 out of range 1..16"),
    (lambda: macros.vpm_read_setup(1, stride=0), "stride=0 out of range 1..64"),
    (lambda: macros.vpm_write_setup(stride=65), "stride=65 out of range 1..64"),
    (lambda: macros.vpm_write_setup(y=64), "y=64 out of range 0..63"),
    (lambda: macros.vpm_write_setup(y=8, horizontal=False), "multiple of 16"),
    (lambda: macros.vpm_write_setup(x=1), "x only applies to vertical"),
    (lambda: macros.vpm_write_setup(x=16, horizontal=False), "x=16 out of range 0..15"),
    (lambda: macros.vpm_write_setup(byte=1), "byte select only applies to size=8"),
    (lambda: macros.vpm_write_setup(size=16, half=2), "half=2 out of range 0..1"),
    (lambda: macros.vpm_write_setup(size=8, byte=4), "byte=4 out of range 0..3"),
    (lambda: macros.vpm_read_setup(1, laned=True), "laned"),
    (lambda: macros.vpm_read_setup(1, size=24), "size=24"),
    (lambda: macros.dma_load_setup(nrows=17), "nrows=17 out of range 1..16"),
    (lambda: macros.dma_load_setup(ncols=0), "ncols=0 out of range 1..16"),
    (lambda: macros.dma_load_setup(vpitch=0), "vpitch=0 out of range 1..16"),
    (lambda: macros.dma_load_setup(mpitch=16), "mpitch=16 out of range 0..15"),
    (lambda: macros.dma_load_setup(size=16, offset=2), "offset=2 out of range 0..1"),
    (lambda: macros.dma_load_setup(offset=1), "offset"),
    (lambda: macros.dma_load_setup(y=128), "y=128 out of range 0..127"),
    (lambda: macros.dma_store_setup(nrows=129), "nrows=129 out of range 1..128"),
    (lambda: macros.dma_store_setup(ncols=0), "ncols=0 out of range 1..128"),
    (lambda: macros.dma_store_setup(x=16), "x=16 out of range 0..15"),
    (lambda: macros.dma_store_stride_setup(65536), "stride=65536 out of range 0..65535"),
    (lambda: macros.dma_store_stride_setup(-1), "stride=-1 out of range 0..65535"),
    (lambda: macros.dma_load_stride_setup(8192), "stride=8192 out of range 0..8191"),
    (lambda: macros.tmu_load(Kernel(), ra1, tmu=2), "tmu=2"),
    (lambda: macros.setup_dma_store_stride(Kernel(), ra1), "tmp="),
    (lambda: macros.setup_dma_load_stride(Kernel(), ra1, tmp=ra1), "also the stride register"),
]


@pytest.mark.parametrize("make, fragment", ERRORS)
def test_errors(make: Callable[[], Any], fragment: str) -> None:
    with pytest.raises(AssemblyError) as info:
        make()
    assert fragment in str(info.value)
    # the location is this file's line holding the lambda (the first frame outside the DSL)
    assert info.value.location is not None and info.value.location.file == __file__


def test_error_location_is_the_kernel_line() -> None:
    lines: List[int] = []

    def kern(k: Kernel) -> None:
        k.nop()
        lines.append(line_here()); k.setup_dma_load(nrows=0)  # noqa: E702
    with pytest.raises(AssemblyError) as info:
        assemble(kern)
    assert info.value.location is not None
    assert (info.value.location.file, info.value.location.line) == (__file__, lines[0])
    assert f"{__file__}:{lines[0]}" in str(info.value)
    assert "dma_load_setup" in str(info.value) and "nrows=0" in str(info.value)


def test_macro_instructions_are_located_at_the_call() -> None:
    lines: List[int] = []

    def kern(k: Kernel) -> None:
        lines.append(line_here()); k.tmu_load(ra1, dst=ra2)  # noqa: E702
    p = assemble(kern)
    assert [s.line for s in p.source if s is not None] == [lines[0]] * 3
