"""The Python DSL (qpu.builder, qpu.registers, qpu.dsl) against independently computed words.

Expected words are either

* computed in this file with explicit shifts from the Reference Guide's layouts
  (ALU word: Figure 3 / Table 1 p.26-27; load immediate / semaphore: Figures 5-6 p.33;
  branch: Figure 7 / Table 10 p.34) and code tables (conditions Table 2 p.28, muxes
  Table 3 p.28, signals Table 4 p.29, small immediates Table 5 p.29-30, pack/unpack
  Tables 6-9 p.31-32, branch conditions Table 11 p.34-35, add ops Table 12 p.35, mul ops
  Table 13 p.36, register addresses Table 14 p.37-38), typed in as literals here; or
* taken from GPU_FFT's shader hex files (raspberrypi/userland hello_fft/hex/*.hex:
  words from Broadcom's assembler, run on hardware, with their source line).

Only choices the guide leaves open follow qpu.encoding's documented canonical rules:
unused raddr fields hold 39, a unary op's second mux repeats the first, nop muxes are
r0, a discarded result without flags is written with condition "never".
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Dict, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qpu.builder import Issued, Kernel, Label, assemble
from qpu.dsl import (
    AssemblyError,
    BranchCond,
    Cond,
    Signal,
    element_number,
    host_interrupt,
    null,
    qpu_number,
    r0,
    r1,
    r2,
    r3,
    r4,
    r5,
    r5quad,
    r5rep,
    ra,
    ra0,
    ra1,
    ra2,
    ra3,
    ra5,
    ra6,
    ra9,
    ra10,
    ra27,
    rb,
    rb0,
    rb1,
    rb2,
    rb3,
    rb4,
    rb5,
    rb10,
    rb30,
    tmu0_s,
    uniform,
    vpm,
    vpm_ld_wait,
    vpm_st_addr,
    vpm_st_wait,
)
from qpu.instruction import Immediate
from qpu.isa.ops import ADD_OPS, MUL_OPS
from qpu.isa.registers import REGISTERS, Space
from qpu.isa.small_imm import ImmKind

# ------------------------------------------------------------------------------------------
# Independent encoders (explicit shifts from the guide)
# ------------------------------------------------------------------------------------------

# Table 2 (p.28): write conditions.
NEVER, ALWAYS, ZS, ZC, NS, NC, CS, CC = range(8)
# Table 3 (p.28): input muxes.
R0, R1, R2, R3, R4, R5, MUX_A, MUX_B = range(8)
# Table 4 (p.29): signals.
SIG_BKPT, SIG_NONE, SIG_THRSW, SIG_THREND = 0, 1, 2, 3
SIG_LTHRSW, SIG_LDTMU0, SIG_LDTMU1, SIG_SMALL_IMM = 6, 10, 11, 13
# Table 14 (p.37-38): register addresses used below.
UNIF, VARY, ELEM_NUM, NOP, VPM, VR_WAIT, MUTEX = 32, 35, 38, 39, 48, 50, 51
W_R0, W_R1, W_R2, W_R3, W_R5, HOST_INT, VR_SETUP, VW_SETUP, VR_ADDR, VW_ADDR = 32, 33, 34, 35, 37, 38, 49, 49, 50, 50
TMU0_S = 56


def alu(*, sig: int = SIG_NONE, unpack: int = 0, pm: int = 0, pack: int = 0, cond_add: int = NEVER,
        cond_mul: int = NEVER, sf: int = 0, ws: int = 0, waddr_add: int = NOP, waddr_mul: int = NOP,
        op_mul: int = 0, op_add: int = 0, raddr_a: int = NOP, raddr_b: int = NOP, add_a: int = R0,
        add_b: int = R0, mul_a: int = R0, mul_b: int = R0) -> int:
    """ALU word, Figure 3 / Table 1 (p.26-27).  Defaults describe a nop; raddr_b holds the
    small-immediate code when sig = 13."""
    return (sig << 60 | unpack << 57 | pm << 56 | pack << 52 | cond_add << 49 | cond_mul << 46 | sf << 45
            | ws << 44 | waddr_add << 38 | waddr_mul << 32 | op_mul << 29 | op_add << 24 | raddr_a << 18
            | raddr_b << 12 | add_a << 9 | add_b << 6 | mul_a << 3 | mul_b)


def ldi_word(imm: int, *, mode: int = 0, pm: int = 0, pack: int = 0, cond_add: int = NEVER, cond_mul: int = NEVER,
             sf: int = 0, ws: int = 0, waddr_add: int = NOP, waddr_mul: int = NOP) -> int:
    """Load immediate, Figure 5 (p.33): sig 14, mode in bits 59:57 (0 = 32-bit, 1 = per-element
    signed, 3 = per-element unsigned, 4 = semaphore), the upper fields as an ALU word."""
    return (14 << 60 | mode << 57 | pm << 56 | pack << 52 | cond_add << 49 | cond_mul << 46 | sf << 45
            | ws << 44 | waddr_add << 38 | waddr_mul << 32 | (imm & 0xFFFFFFFF))


def branch_word(imm: int, *, cond_br: int = 15, rel: int = 1, reg: int = 0, raddr_a: int = 0, ws: int = 0,
                waddr_add: int = NOP, waddr_mul: int = NOP) -> int:
    """Branch, Figure 7 / Table 10 (p.34): sig 15, cond_br 55:52, rel 51, reg 50, raddr_a 49:45."""
    return (15 << 60 | cond_br << 52 | rel << 51 | reg << 50 | raddr_a << 45 | ws << 44 | waddr_add << 38
            | waddr_mul << 32 | (imm & 0xFFFFFFFF))


NOP_WORD = alu()


def words(fn: Callable[[Kernel], Any]) -> List[int]:
    return assemble(fn).words


def one(fn: Callable[[Kernel], Any]) -> int:
    w = words(fn)
    assert len(w) == 1
    return w[0]


def line_here() -> int:
    """The caller's line number (for expected source locations)."""
    return sys._getframe(1).f_lineno


def test_reference_helper_matches_gpu_fft_nop() -> None:
    # shader_256.hex: "0x009e7000, 0x100009e7, // nop"
    assert NOP_WORD == 0x100009E7_009E7000
    assert one(lambda k: k.nop()) == 0x100009E7_009E7000


# ------------------------------------------------------------------------------------------
# ALU operations
# ------------------------------------------------------------------------------------------

# Table 12 (p.35): add opcodes, under the DSL method names.
ADD_CODES = {"fadd": 1, "fsub": 2, "fmin": 3, "fmax": 4, "fminabs": 5, "fmaxabs": 6, "ftoi": 7, "itof": 8,
             "iadd": 12, "isub": 13, "shr": 14, "asr": 15, "ror": 16, "shl": 17, "imin": 18, "imax": 19,
             "band": 20, "bor": 21, "bxor": 22, "bnot": 23, "clz": 24, "v8adds": 30, "v8subs": 31}
UNARY = {"ftoi", "itof", "bnot", "clz"}
# Table 13 (p.36): mul opcodes.
MUL_CODES = {"fmul": 1, "imul24": 2, "v8muld": 3, "v8min": 4, "v8max": 5, "v8adds": 6, "v8subs": 7}
MUL_ONLY = ["fmul", "imul24", "v8muld", "v8min", "v8max"]


@pytest.mark.parametrize("name", sorted(ADD_CODES))
def test_every_add_op(name: str) -> None:
    if name in UNARY:
        got = one(lambda k: getattr(k, name)(ra1, r2))
        # unary: the b mux repeats a (canonical rule)
        assert got == alu(op_add=ADD_CODES[name], cond_add=ALWAYS, waddr_add=1, add_a=R2, add_b=R2)
    else:
        got = one(lambda k: getattr(k, name)(ra1, r2, r3))
        assert got == alu(op_add=ADD_CODES[name], cond_add=ALWAYS, waddr_add=1, add_a=R2, add_b=R3)


@pytest.mark.parametrize("name", MUL_ONLY)
def test_mul_only_ops_alone(name: str) -> None:
    got = one(lambda k: getattr(k, name)(rb1, r2, r3))
    # add nop (condition never), mul writes rb1 (ws = 0: mul writes regfile B)
    assert got == alu(op_mul=MUL_CODES[name], cond_mul=ALWAYS, waddr_mul=1, mul_a=R2, mul_b=R3)


@pytest.mark.parametrize("name", sorted(MUL_CODES))
def test_every_mul_op_dual_issued(name: str) -> None:
    got = one(lambda k: getattr(k.fadd(ra1, r0, r1), name)(rb2, r2, r3))
    assert got == alu(op_add=1, cond_add=ALWAYS, waddr_add=1, add_a=R0, add_b=R1,
                      op_mul=MUL_CODES[name], cond_mul=ALWAYS, waddr_mul=2, mul_a=R2, mul_b=R3)


def test_mov_on_each_alu() -> None:
    # mov = or a, a (add op 21) and v8min a, a (mul op 4)
    assert one(lambda k: k.mov(r1, r2)) == alu(op_add=21, cond_add=ALWAYS, waddr_add=W_R1, add_a=R2, add_b=R2)
    assert one(lambda k: k.nop().mov(r1, r2)) == alu(op_mul=4, cond_mul=ALWAYS, waddr_mul=W_R1, mul_a=R2, mul_b=R2)


def test_gpu_fft_words() -> None:
    # shader_256.hex: "0x15827d80, 0x10021167, // mov rb_inst, unif"  (rb_inst = rb5)
    assert one(lambda k: k.mov(rb5, uniform)) == 0x10021167_15827D80
    # "0x14981dc0, 0xd00229e7, // and.setf -, elem_num, (1<<i)" with i = 0
    assert one(lambda k: k.band(null, element_number, 1, set_flags=True)) == 0xD00229E7_14981DC0
    # "0x202a7030, 0x1000d9c2, // nop; fmul.ifnz ra_temp, ra_tw_re+TW16+i, r0"
    assert one(lambda k: k.fmul(ra2, ra10, r0, cond=Cond.ZC)) == 0x1000D9C2_202A7030
    # "0x2208acb8, 0x1006c823, // fsub.ifnz r0, ra_temp, r2; fmul.ifnz r3, rb_tw_im+TW16+i, r0"
    assert one(lambda k: k.fsub(r0, ra2, r2, cond=Cond.ZC).fmul(r3, rb10, r0, cond=Cond.ZC)) == 0x1006C823_2208ACB8
    # "0x8c05edf6, 0x10024072, // add ra_save_ptr, ra_save_ptr, rb_0x40; mov vw_addr, ra_save_ptr"
    assert one(lambda k: k.iadd(ra1, ra1, rb30).mov(vpm_st_addr, ra1)) == 0x10024072_8C05EDF6
    # "0xcc9e7081, 0x100246e0, // add out_0, r0, r2; v8adds r0, r0, r1"
    assert one(lambda k: k.iadd(ra27, r0, r2).v8adds(r0, r0, r1)) == 0x100246E0_CC9E7081
    # "0x819ff2c0, 0xd0064862, // fadd.ifnz r1, r1, r3; mov r2, r0 << (1<<i)" (i = 0: << 1 = up by 15)
    assert one(lambda k: k.fadd(r1, r1, r3, cond=Cond.ZC).mov(r2, r0, rotate=15)) == 0xD0064862_819FF2C0
    # "0x819f1400, 0xd0044823, // fadd.ifz r0, r2, r0; mov r3, r0 >> (1<<i)"
    assert one(lambda k: k.fadd(r0, r2, r0, cond=Cond.ZS).mov(r3, r0, rotate=1)) == 0xD0044823_819F1400
    # shader_trans.hex etc.: "0x0c9cc9c0, 0xd0020e27, // add t0s, r4, 3*4"
    assert one(lambda k: k.iadd(tmu0_s, r4, 12)) == 0xD0020E27_0C9CC9C0
    # "0x159e7900, 0x10020267, // mov ra_tw_re+dst, r4"
    assert one(lambda k: k.mov(ra9, r4)) == 0x10020267_159E7900


@pytest.mark.parametrize("cond, code", [(Cond.NEVER, NEVER), (Cond.ALWAYS, ALWAYS), (Cond.ZS, ZS), (Cond.ZC, ZC),
                                        (Cond.NS, NS), (Cond.NC, NC), (Cond.CS, CS), (Cond.CC, CC)])
def test_conditions(cond: Cond, code: int) -> None:
    assert one(lambda k: k.isub(r0, r1, r2, cond=cond)) == alu(op_add=13, cond_add=code, waddr_add=W_R0,
                                                                add_a=R1, add_b=R2)
    assert one(lambda k: k.nop().fmul(r0, r1, r2, cond=cond)) == alu(op_mul=1, cond_mul=code, waddr_mul=W_R0,
                                                                      mul_a=R1, mul_b=R2)


def test_default_condition_of_discarded_results() -> None:
    # no destination and no flags: "never" (canonical); with set_flags: "always" so flags update
    assert one(lambda k: k.isub(null, r1, r2)) == alu(op_add=13, cond_add=NEVER, add_a=R1, add_b=R2)
    assert one(lambda k: k.isub(null, r1, r2, set_flags=True)) == alu(op_add=13, cond_add=ALWAYS, sf=1,
                                                                       add_a=R1, add_b=R2)


def test_set_flags_on_mul_when_add_is_nop() -> None:
    expected = alu(op_mul=1, cond_mul=ALWAYS, sf=1, waddr_mul=W_R0, mul_a=R1, mul_b=R2)
    assert one(lambda k: k.nop().fmul(r0, r1, r2, set_flags=True)) == expected
    assert one(lambda k: k.fmul(r0, r1, r2, set_flags=True)) == expected


@pytest.mark.parametrize("sig, code", [(Signal.BREAKPOINT, 0), (Signal.THREAD_SWITCH, 2), (Signal.PROGRAM_END, 3),
                                       (Signal.WAIT_SCOREBOARD, 4), (Signal.SCOREBOARD_UNLOCK, 5),
                                       (Signal.LAST_THREAD_SWITCH, 6), (Signal.LOAD_COVERAGE, 7),
                                       (Signal.LOAD_COLOR, 8), (Signal.LOAD_COLOR_END, 9), (Signal.LOAD_TMU0, 10),
                                       (Signal.LOAD_TMU1, 11), (Signal.LOAD_ALPHA_MASK, 12)])
def test_signals_on_either_half(sig: Signal, code: int) -> None:
    base = dict(op_add=1, cond_add=ALWAYS, waddr_add=W_R0, add_a=R1, add_b=R2)
    assert one(lambda k: k.fadd(r0, r1, r2, sig=sig)) == alu(sig=code, **base)
    both = dict(base, op_mul=1, cond_mul=ALWAYS, waddr_mul=W_R3, mul_a=R1, mul_b=R2)
    assert one(lambda k: k.fadd(r0, r1, r2).fmul(r3, r1, r2, sig=sig)) == alu(sig=code, **both)


def test_signal_helpers() -> None:
    # shader hex: "0x009e7000, 0xa00009e7, // ldtmu0" and "0x009e7000, 0xb00009e7, // ldtmu1"
    assert one(lambda k: k.ldtmu0()) == 0xA00009E7_009E7000
    assert one(lambda k: k.ldtmu1()) == 0xB00009E7_009E7000
    assert one(lambda k: k.thread_switch()) == alu(sig=SIG_THRSW)
    assert one(lambda k: k.last_thread_switch()) == alu(sig=SIG_LTHRSW)
    # a signal helper returns a handle: a mul op can share the instruction
    assert one(lambda k: k.ldtmu0().fmul(r0, r4, r1)) == alu(sig=SIG_LDTMU0, op_mul=1, cond_mul=ALWAYS,
                                                             waddr_mul=W_R0, mul_a=R4, mul_b=R1)


# Table 5 (p.29-30): small-immediate codes.
SMALL_IMMS = [(0, 0), (1, 1), (7, 7), (15, 15), (-16, 16), (-15, 17), (-1, 31),
              (1.0, 32), (2.0, 33), (64.0, 38), (128.0, 39), (1 / 256, 40), (1 / 128, 41), (0.25, 46), (0.5, 47),
              (0.0, 0)]


@pytest.mark.parametrize("value, code", SMALL_IMMS)
def test_small_immediates(value: float, code: int) -> None:
    got = one(lambda k: k.iadd(r0, r1, value))
    assert got == alu(sig=SIG_SMALL_IMM, op_add=12, cond_add=ALWAYS, waddr_add=W_R0, raddr_b=code,
                      add_a=R1, add_b=MUX_B)


def test_int_and_float_immediates_differ() -> None:
    assert one(lambda k: k.mov(r0, 1)) != one(lambda k: k.mov(r0, 1.0))
    # the same value used twice shares the one field
    assert one(lambda k: k.fmul(r0, 2.0, 2.0)) == alu(sig=SIG_SMALL_IMM, op_mul=1, cond_mul=ALWAYS,
                                                      waddr_mul=W_R0, raddr_b=33, mul_a=MUX_B, mul_b=MUX_B)
    # an explicit Immediate object is accepted as is
    assert one(lambda k: k.iadd(r0, r1, Immediate(0xFFFFFFFF, ImmKind.INT))) == one(lambda k: k.iadd(r0, r1, -1))


@pytest.mark.parametrize("n", range(1, 16))
def test_rotation_by_n(n: int) -> None:
    # Table 5: code 48 + n rotates the mul output up by n
    assert one(lambda k: k.nop().mov(r0, r1, rotate=n)) == alu(
        sig=SIG_SMALL_IMM, raddr_b=48 + n, op_mul=4, cond_mul=ALWAYS, waddr_mul=W_R0, mul_a=R1, mul_b=R1)


def test_rotation_by_r5() -> None:
    assert one(lambda k: k.fmul(r0, r1, r2, rotate=r5)) == alu(
        sig=SIG_SMALL_IMM, raddr_b=48, op_mul=1, cond_mul=ALWAYS, waddr_mul=W_R0, mul_a=R1, mul_b=R2)


def test_rotation_with_matching_immediate() -> None:
    # vc4asm addendum: codes 48..63 read as -16..-1, so rotation n may combine with the value n-16
    assert one(lambda k: k.iadd(r0, r1, -13).mov(r2, r3, rotate=3)) == alu(
        sig=SIG_SMALL_IMM, raddr_b=51, op_add=12, cond_add=ALWAYS, waddr_add=W_R0, add_a=R1, add_b=MUX_B,
        op_mul=4, cond_mul=ALWAYS, waddr_mul=W_R2, mul_a=R3, mul_b=R3)


# Table 7 (p.31-32): regfile-A pack codes; Table 9 (p.32): mul pack codes (8b..8d for rows 5-7).
PACK_A = {"16a": 1, "16b": 2, "8888": 3, "8a": 4, "8b": 5, "8c": 6, "8d": 7, "32s": 8, "16as": 9, "16bs": 10,
          "8888s": 11, "8as": 12, "8bs": 13, "8cs": 14, "8ds": 15}
PACK_MUL = {"8888c": 3, "8ac": 4, "8bc": 5, "8cc": 6, "8dc": 7}
# Table 6 (p.31) / Table 8 (p.32): unpack codes.
UNPACK = {"16a": 1, "16b": 2, "8dr": 3, "8a": 4, "8b": 5, "8c": 6, "8d": 7}


@pytest.mark.parametrize("mode", sorted(PACK_A))
def test_regfile_a_pack(mode: str) -> None:
    assert one(lambda k: k.iadd(ra3.pack(mode), r0, r1)) == alu(
        pm=0, pack=PACK_A[mode], op_add=12, cond_add=ALWAYS, waddr_add=3, add_a=R0, add_b=R1)
    # on the mul ALU's destination the write swaps so that mul writes regfile A
    assert one(lambda k: k.fmul(ra3.pack(mode), r0, r1)) == alu(
        pm=0, pack=PACK_A[mode], ws=1, op_mul=1, cond_mul=ALWAYS, waddr_mul=3, mul_a=R0, mul_b=R1)


@pytest.mark.parametrize("mode", sorted(PACK_MUL))
def test_mul_colour_pack(mode: str) -> None:
    assert one(lambda k: k.fmul(r2.pack(mode), r0, r1)) == alu(
        pm=1, pack=PACK_MUL[mode], op_mul=1, cond_mul=ALWAYS, waddr_mul=W_R2, mul_a=R0, mul_b=R1)


@pytest.mark.parametrize("mode", sorted(UNPACK))
def test_unpack(mode: str) -> None:
    assert one(lambda k: k.fadd(r0, ra5.unpack(mode), r1)) == alu(
        unpack=UNPACK[mode], pm=0, op_add=1, cond_add=ALWAYS, waddr_add=W_R0, raddr_a=5, add_a=MUX_A, add_b=R1)
    assert one(lambda k: k.fadd(r0, r4.unpack(mode), r1)) == alu(
        unpack=UNPACK[mode], pm=1, op_add=1, cond_add=ALWAYS, waddr_add=W_R0, add_a=R4, add_b=R1)


def test_unpack_of_io_read_through_file_a() -> None:
    assert one(lambda k: k.fadd(r0, uniform.unpack("16a"), r1)) == alu(
        unpack=1, op_add=1, cond_add=ALWAYS, waddr_add=W_R0, raddr_a=UNIF, add_a=MUX_A, add_b=R1)


def test_dual_issue_register_files() -> None:
    # add writes regfile B, mul writes regfile A: ws = 1 (Table 1)
    assert one(lambda k: k.fadd(rb1, r0, r1).fmul(ra2, r2, r3)) == alu(
        ws=1, op_add=1, cond_add=ALWAYS, waddr_add=1, add_a=R0, add_b=R1,
        op_mul=1, cond_mul=ALWAYS, waddr_mul=2, mul_a=R2, mul_b=R3)
    # both halves share one regfile-A and one regfile-B read
    assert one(lambda k: k.fadd(ra1, ra2, rb3).fmul(rb4, ra2, rb3)) == alu(
        op_add=1, cond_add=ALWAYS, waddr_add=1, raddr_a=2, raddr_b=3, add_a=MUX_A, add_b=MUX_B,
        op_mul=1, cond_mul=ALWAYS, waddr_mul=4, mul_a=MUX_A, mul_b=MUX_B)
    # a uniform read by both halves is one read (through file A)
    assert one(lambda k: k.mov(ra1, uniform).mov(rb1, uniform)) == alu(
        op_add=21, cond_add=ALWAYS, waddr_add=1, raddr_a=UNIF, add_a=MUX_A, add_b=MUX_A,
        op_mul=4, cond_mul=ALWAYS, waddr_mul=1, mul_a=MUX_A, mul_b=MUX_A)
    # element_number (A only) and qpu_number (B only) at the same address 38
    assert one(lambda k: k.iadd(r0, element_number, qpu_number)) == alu(
        op_add=12, cond_add=ALWAYS, waddr_add=W_R0, raddr_a=ELEM_NUM, raddr_b=38, add_a=MUX_A, add_b=MUX_B)


def test_r5_write_ports() -> None:
    # addendum "Writing to r5": r5quad is write address 37 through A, r5rep through B
    assert one(lambda k: k.mov(r5quad, r0)) == alu(op_add=21, cond_add=ALWAYS, waddr_add=W_R5, add_a=R0, add_b=R0)
    assert one(lambda k: k.mov(r5rep, r0)) == alu(op_add=21, cond_add=ALWAYS, ws=1, waddr_add=W_R5,
                                                  add_a=R0, add_b=R0)


def test_read_without_alu() -> None:
    assert one(lambda k: k.read(uniform)) == alu(raddr_a=UNIF)
    assert one(lambda k: k.read(qpu_number)) == alu(raddr_b=38)
    assert one(lambda k: k.fadd(r0, r1, r2).read(vpm_ld_wait)) == alu(
        op_add=1, cond_add=ALWAYS, waddr_add=W_R0, add_a=R1, add_b=R2, raddr_a=VR_WAIT)


# ------------------------------------------------------------------------------------------
# Load immediate and semaphores
# ------------------------------------------------------------------------------------------

def test_ldi_32_bit() -> None:
    # shader_256.hex: "0x00000040, 0xe00217a7, // mov rb_0x40, 0x40" (rb30)
    assert one(lambda k: k.ldi(rb30, 0x40)) == 0xE00217A7_00000040
    assert one(lambda k: k.ldi(rb30, 0x40)) == ldi_word(0x40, cond_add=ALWAYS, ws=1, waddr_add=30)
    assert one(lambda k: k.ldi(r0, -1)) == ldi_word(0xFFFFFFFF, cond_add=ALWAYS, waddr_add=W_R0)
    assert one(lambda k: k.ldi(r0, 0xDEADBEEF)) == ldi_word(0xDEADBEEF, cond_add=ALWAYS, waddr_add=W_R0)
    # floats load their IEEE-754 pattern: 1.5 = 0x3fc00000, -2.0 = 0xc0000000
    assert one(lambda k: k.ldi(r0, 1.5)) == ldi_word(0x3FC00000, cond_add=ALWAYS, waddr_add=W_R0)
    assert one(lambda k: k.ldi(r0, -2.0)) == ldi_word(0xC0000000, cond_add=ALWAYS, waddr_add=W_R0)


def test_ldi_two_destinations_cond_and_flags() -> None:
    assert one(lambda k: k.ldi(ra1, 7, rb2)) == ldi_word(7, cond_add=ALWAYS, cond_mul=ALWAYS, waddr_add=1,
                                                         waddr_mul=2)
    assert one(lambda k: k.ldi(r1, 7, cond=Cond.NC)) == ldi_word(7, cond_add=NC, waddr_add=W_R1)
    assert one(lambda k: k.ldi(null, 5, set_flags=True)) == ldi_word(5, cond_add=ALWAYS, sf=1)


def test_ldi_per_element() -> None:
    # Figure 5 (p.33): element i's LS bit is bit i, its MS bit is bit 16+i.
    # unsigned [0,1,2,3]*4: LS bits 0,1,0,1.. = 0xaaaa; MS bits 0,0,1,1.. = 0xcccc
    assert one(lambda k: k.ldi(r0, [0, 1, 2, 3] * 4)) == ldi_word(0xCCCCAAAA, mode=3, cond_add=ALWAYS,
                                                                 waddr_add=W_R0)
    # signed [-2,-1,0,1]*4: -2 = 0b10, -1 = 0b11: LS 0,1,0,1 = 0xaaaa; MS 1,1,0,0 = 0x3333
    assert one(lambda k: k.ldi(r0, [-2, -1, 0, 1] * 4)) == ldi_word(0x3333AAAA, mode=1, cond_add=ALWAYS,
                                                                   waddr_add=W_R0)
    # forcing signed for non-negative values: [1]*16 -> mode 1, LS bits all set
    assert one(lambda k: k.ldi(r0, [1] * 16, signed=True)) == ldi_word(0x0000FFFF, mode=1, cond_add=ALWAYS,
                                                                      waddr_add=W_R0)


def test_semaphores_match_gpu_fft() -> None:
    # shader_256.hex: "0x00000019, 0xe80009e7, // mov -, sacq(i+9)" (semaphore 9, sa = 1)
    assert one(lambda k: k.sema_down(9)) == 0xE80009E7_00000019
    # "0x00000001, 0xe80009e7, // mov -, srel(i+1)"
    assert one(lambda k: k.sema_up(1)) == 0xE80009E7_00000001
    # Figure 6 (p.33): mode 4, sa bit 4, semaphore 3:0
    assert one(lambda k: k.sema_up(15)) == ldi_word(15, mode=4)
    assert one(lambda k: k.sema_down(0)) == ldi_word(1 << 4, mode=4)


# ------------------------------------------------------------------------------------------
# Program end, interrupt, mutex
# ------------------------------------------------------------------------------------------

HOST_INT_1 = alu(sig=SIG_SMALL_IMM, op_add=21, cond_add=ALWAYS, waddr_add=HOST_INT, raddr_b=1,
                 add_a=MUX_B, add_b=MUX_B)


def test_exit_sequence() -> None:
    # shader_256.hex ends with "nop; nop; thrend" = 0x300009e7_009e7000 then two nops
    assert words(lambda k: k.exit()) == [HOST_INT_1, 0x300009E7_009E7000, NOP_WORD, NOP_WORD]
    assert words(lambda k: k.exit(interrupt=False)) == [alu(sig=SIG_THREND), NOP_WORD, NOP_WORD]
    assert words(lambda k: k.interrupt()) == [HOST_INT_1]
    assert one(lambda k: k.mov(host_interrupt, 1)) == HOST_INT_1


def test_mutex() -> None:
    # acquire: read mutex through raddr_a, result discarded; release: write mutex
    assert one(lambda k: k.mutex_acquire()) == alu(op_add=21, raddr_a=MUTEX, add_a=MUX_A, add_b=MUX_A)
    assert one(lambda k: k.mutex_release()) == alu(op_add=21, cond_add=ALWAYS, waddr_add=MUTEX, raddr_a=NOP,
                                                   add_a=MUX_A, add_b=MUX_A)
    # shader_256.hex: "0x159f2fc0, 0x100009e7, // mov -, vw_wait" (a B-side read, result discarded)
    assert one(lambda k: k.mov(null, vpm_st_wait)) == 0x100009E7_159F2FC0


# ------------------------------------------------------------------------------------------
# Branches and labels
# ------------------------------------------------------------------------------------------

def test_backward_branch_matches_gpu_fft() -> None:
    # shader_256.hex: "0xfffff9d0, 0xf0f809e7, // brr -, r:loop": imm = -1584 = 8*(0 - (194+4))
    def kern(k: Kernel) -> None:
        loop = k.here("loop")
        for _ in range(194):
            k.nop()
        k.brr(loop)
    w = words(kern)
    assert w[194] == 0xF0F809E7_FFFFF9D0
    assert w[194] == branch_word(8 * (0 - (194 + 4)))


def test_forward_branch_with_link_matches_gpu_fft() -> None:
    # shader_256.hex: "0x00000038, 0xf0f81127, // brr rx_ptr, label": link rb4, imm 56 = 8*(11 - (0+4))
    def kern(k: Kernel) -> None:
        target = k.label("target")
        k.brr(target, link=rb4)
        for _ in range(10):
            k.nop()
        k.bind(target)
        k.nop()
    w = words(kern)
    assert w[0] == 0xF0F81127_00000038
    assert w[0] == branch_word(8 * (11 - 4), ws=1, waddr_add=4)


def test_branch_to_register_matches_gpu_fft() -> None:
    # "0x00000000, 0xf0f409e7, // bra -, ra_link_1" (ra0) and "bra -, ra_sync" 0xf0f4c9e7 (ra6)
    assert one(lambda k: k.bra(ra0)) == 0xF0F409E7_00000000
    assert one(lambda k: k.bra(ra6)) == 0xF0F4C9E7_00000000
    assert one(lambda k: k.bra(0x40, reg=ra2)) == branch_word(0x40, rel=0, reg=1, raddr_a=2)
    assert one(lambda k: k.bra(0x1000)) == branch_word(0x1000, rel=0)


# Table 11 (p.34-35): branch conditions.
BRANCH_CONDS = [(BranchCond.ALL_ZS, 0), (BranchCond.ALL_ZC, 1), (BranchCond.ANY_ZS, 2), (BranchCond.ANY_ZC, 3),
                (BranchCond.ALL_NS, 4), (BranchCond.ALL_NC, 5), (BranchCond.ANY_NS, 6), (BranchCond.ANY_NC, 7),
                (BranchCond.ALL_CS, 8), (BranchCond.ALL_CC, 9), (BranchCond.ANY_CS, 10), (BranchCond.ANY_CC, 11),
                (BranchCond.ALWAYS, 15)]


@pytest.mark.parametrize("cond, code", BRANCH_CONDS)
def test_branch_conditions(cond: BranchCond, code: int) -> None:
    def kern(k: Kernel) -> None:
        top = k.here()
        k.nop()
        k.brr(top, cond=cond)
    assert words(kern)[1] == branch_word(8 * (0 - (1 + 4)), cond_br=code)


def test_branch_raw_offsets_flags_and_delay_slots() -> None:
    assert one(lambda k: k.brr(-32)) == branch_word(-32)
    # set_flags without a register: raddr_a bit 0 (= the ALU sf bit, addendum)
    assert one(lambda k: k.brr(0, set_flags=True)) == branch_word(0, raddr_a=1)
    # an odd register needs set_flags=True, which is then implied by raddr_a
    assert one(lambda k: k.bra(ra1, set_flags=True)) == branch_word(0, rel=0, reg=1, raddr_a=1)
    # delay="nop" adds the three delay-slot nops
    assert words(lambda k: k.brr(-32, delay="nop")) == [branch_word(-32), NOP_WORD, NOP_WORD, NOP_WORD]


def test_absolute_branch_to_label_with_base_address() -> None:
    k = Kernel(base_address=0x1000_0000)
    k.nop()
    target = k.here("t")
    k.bra(target)
    assert k.build().words[1] == branch_word(0x1000_0000 + 8 * 1, rel=0)


def test_labels_in_program() -> None:
    def kern(k: Kernel) -> None:
        k.nop()
        a = k.here("a")
        k.nop()
        b = k.label("b")
        k.brr(b)
        k.brr(a)
        k.nop()
        k.bind(b)
        k.nop()
    p = assemble(kern)
    assert p.labels == {"a": 1, "b": 5}
    assert p.words[2] == branch_word(8 * (5 - (2 + 4)))
    assert p.words[3] == branch_word(8 * (1 - (3 + 4)))
    assert p.name == "kern"


def test_counted_loop() -> None:
    def kern(k: Kernel) -> None:
        with k.loop(ra5, 10) as top:
            assert isinstance(top, Label)
            k.nop()
    assert words(kern) == [
        ldi_word(10, cond_add=ALWAYS, waddr_add=5),
        NOP_WORD,
        # sub.setf ra5, ra5, 1: op 13, small immediate 1
        alu(sig=SIG_SMALL_IMM, op_add=13, cond_add=ALWAYS, sf=1, waddr_add=5, raddr_a=5, raddr_b=1,
            add_a=MUX_A, add_b=MUX_B),
        branch_word(8 * (1 - (3 + 4)), cond_br=3),  # anynz = any Z clear (Table 11 code 3)
        NOP_WORD, NOP_WORD, NOP_WORD,
    ]
    # a counter set beforehand: no ldi
    assert words(lambda k: _loop_body(k, r1))[0] == NOP_WORD


def _loop_body(k: Kernel, counter: Any) -> None:
    with k.loop(counter):
        k.nop()


# ------------------------------------------------------------------------------------------
# Source locations and errors
# ------------------------------------------------------------------------------------------

def test_source_locations_are_the_kernel_lines() -> None:
    lines: List[int] = []

    def kern(k: Kernel) -> None:
        lines.append(line_here()); k.nop()  # noqa: E702
        lines.append(line_here()); k.fadd(r0, r1, r2).fmul(r3, r1, r2)  # noqa: E702
        lines.append(line_here()); k.exit()  # noqa: E702
    p = assemble(kern)
    got = [(s.file, s.line, s.function) for s in p.source if s is not None]
    assert got == [(__file__, lines[0], "kern"), (__file__, lines[1], "kern")] + [(__file__, lines[2], "kern")] * 4


def expect_error(fn: Callable[[Kernel, List[int]], None], *fragments: str) -> AssemblyError:
    """Run fn(kernel, lines); it records the offending line; the error must name it."""
    lines: List[int] = []
    k = Kernel()
    with pytest.raises(AssemblyError) as info:
        fn(k, lines)
        k.build()
    err = info.value
    assert err.location is not None
    assert (err.location.file, err.location.line) == (__file__, lines[-1])
    text = str(err)
    assert f"{__file__}:{lines[-1]}" in text
    for f in fragments:
        assert f in text, (f, text)
    return err


def test_error_two_regfile_a_reads() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(r0, ra1, ra2)  # noqa: E702
    err = expect_error(kern, "regfile-A", "ra1", "ra2")
    assert err.instruction == "fadd r0, ra1, ra2"


def test_error_two_regfile_b_reads_across_halves() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        h = k.fadd(r0, rb1, r1)
        lines.append(line_here()); h.fmul(r2, rb2, r1)  # noqa: E702
    err = expect_error(kern, "regfile-B", "rb1", "rb2")
    assert "fadd r0, rb1, r1" in err.instruction and "fmul" in err.instruction


def test_error_immediate_and_regfile_b() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.iadd(r0, rb1, 1)  # noqa: E702
    expect_error(kern, "raddr_b", "rb1")


def test_error_two_different_immediates() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.iadd(r0, 1, 1.0)  # noqa: E702
    expect_error(kern, "two different small immediates")


def test_error_signal_with_small_immediate_or_rotation() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.iadd(r0, r0, 1, sig=Signal.LOAD_TMU0)  # noqa: E702
    expect_error(kern, "ldtmu0", "small immediate")

    def kern2(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.ldtmu0().mov(r0, r1, rotate=2)  # noqa: E702
    expect_error(kern2, "rotation")


def test_error_set_flags_on_mul_with_add_op() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(r0, r1, r2).fmul(r3, r1, r2, set_flags=True)  # noqa: E702
    expect_error(kern, "set_flags", "add ALU")


def test_error_signal_on_both_halves() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        h = k.fadd(r0, r1, r2, sig=Signal.LOAD_TMU0)
        lines.append(line_here()); h.fmul(r3, r1, r2, sig=Signal.LOAD_TMU1)  # noqa: E702
    expect_error(kern, "both halves")


def test_error_rotate_on_add() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(r0, r1, r2, rotate=3)  # type: ignore[arg-type]  # noqa: E702
    expect_error(kern, "rotate", "mul")


@pytest.mark.parametrize("bad", [0, 16, -1, 2.0, True])
def test_error_rotation_out_of_range(bad: Any) -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.nop().mov(r0, r1, rotate=bad)  # noqa: E702
    expect_error(kern, "rotate")


def test_error_rotate_by_other_register() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.nop().mov(r0, r1, rotate=r4)  # noqa: E702
    expect_error(kern, "only r5")


def test_error_pack_on_non_regfile_a() -> None:
    for reg in (rb1, r0, r5quad):
        def kern(k: Kernel, lines: List[int], reg: Any = reg) -> None:
            lines.append(line_here()); reg.pack("16a")  # noqa: E702
        expect_error(kern, "regfile-A pack", reg.name)


def test_error_bad_pack_name_lists_valid_ones() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); ra1.pack("16x")  # noqa: E702
    expect_error(kern, "'16x'", "16a", "8888s", "8ac")


def test_error_single_byte_mul_pack_on_io() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); vpm.pack("8ac")  # noqa: E702
    expect_error(kern, "I/O register", "addendum")


def test_error_mul_pack_on_add_destination() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(r0.pack("8ac"), r1, r2)  # noqa: E702
    expect_error(kern, "mul")


def test_error_pack_and_unpack_conflict() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fmul(r0.pack("8ac"), ra1.unpack("16a"), r1)  # noqa: E702
    expect_error(kern, "pm bit")


@pytest.mark.parametrize("reg, mode, fragment", [(rb1, "16a", "regfile-B"), (r0, "16a", "only r4"),
                                                 (ra1, "bogus", "16a, 16b, 8dr"), (tmu0_s, "16a", "cannot be read")])
def test_error_bad_unpack(reg: Any, mode: str, fragment: str) -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); reg.unpack(mode)  # noqa: E702
    expect_error(kern, fragment)


def test_error_both_destinations_in_regfile_a() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        h = k.fadd(ra1, r0, r1)
        lines.append(line_here()); h.fmul(ra2, r0, r1)  # noqa: E702
    expect_error(kern, "same register file")


@pytest.mark.parametrize("reg, fragment", [(r4, "r4"), (r5, "r5quad"), (element_number, "element_number"),
                                           (uniform, "uniform")])
def test_error_write_to_read_only(reg: Any, fragment: str) -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.mov(reg, r0)  # noqa: E702
    expect_error(kern, "cannot be written", fragment)


def test_error_read_of_write_only() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.mov(r0, tmu0_s)  # noqa: E702
    expect_error(kern, "tmu0_s cannot be read")


@pytest.mark.parametrize("value", [16, -17, 0x3F800000, 3.0, -1.0, 256.0, 1e-10, -0.0])
def test_error_not_a_small_immediate(value: Any) -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(r0, r1, value)  # noqa: E702
    expect_error(kern, "not a small immediate", "ldi")


def test_error_operand_types() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(r0, "r1", r2)  # type: ignore[arg-type]  # noqa: E702
    expect_error(kern, "operand")

    def kern2(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(5, r1, r2)  # type: ignore[arg-type]  # noqa: E702
    expect_error(kern2, "destination")

    def kern3(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.fadd(r0, r1, r2, cond="zs")  # type: ignore[arg-type]  # noqa: E702
    expect_error(kern3, "Cond.ZS")

    def kern4(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.brr(k.label(), cond=Cond.ZS)  # type: ignore[arg-type]  # noqa: E702
    expect_error(kern4, "BranchCond")


def test_error_undefined_label_points_at_the_branch() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        missing = k.label("missing")
        k.nop()
        lines.append(line_here()); k.brr(missing)  # noqa: E702
        k.nop()
    expect_error(kern, "'missing'", "never bound")


def test_error_duplicate_label() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        k.here("x")
        lines.append(line_here()); k.here("x")  # noqa: E702
    expect_error(kern, "duplicate label 'x'")


def test_error_label_bound_twice() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lbl = k.here("x")
        lines.append(line_here()); k.bind(lbl)  # noqa: E702
    expect_error(kern, "already bound")


def test_error_label_of_another_kernel() -> None:
    other = Kernel().label("foreign")

    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.brr(other)  # noqa: E702
    expect_error(kern, "another kernel")


def test_error_label_name_is_a_register() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.label("ra1")  # noqa: E702
    expect_error(kern, "register name")


def test_error_absolute_branch_to_label_without_base() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lbl = k.here("x")
        lines.append(line_here()); k.bra(lbl)  # noqa: E702
    expect_error(kern, "base_address")


def test_error_branch_through_odd_register_needs_set_flags() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.bra(ra1)  # noqa: E702
    expect_error(kern, "setf")


def test_error_branch_register_not_regfile_a() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.bra(rb2)  # noqa: E702
    expect_error(kern, "ra0..ra31")


def test_error_bad_delay() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.brr(0, delay="nops")  # noqa: E702
    expect_error(kern, "delay")


def test_error_stale_handle() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        h = k.fadd(r0, r1, r2)
        k.nop()
        lines.append(line_here()); h.fmul(r3, r1, r2)  # noqa: E702
    expect_error(kern, "directly follow")


def test_error_second_mul_op() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        h = k.fadd(r0, r1, r2).fmul(r3, r1, r2)
        lines.append(line_here()); h.fmul(r3, r1, r2)  # noqa: E702
    expect_error(kern, "already has a mul op")


@pytest.mark.parametrize("n", [16, -1])
def test_error_semaphore_number(n: int) -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.sema_up(n)  # noqa: E702
    expect_error(kern, "0..15")


@pytest.mark.parametrize("value, fragment", [(1 << 32, "32 bits"), (-(1 << 31) - 1, "32 bits"),
                                             ([0] * 15, "exactly 16"), ([4] * 16, "0..3"),
                                             ([-3] + [0] * 15, "-2..1"), ("7", "int"), (True, "1 or 0")])
def test_error_ldi_values(value: Any, fragment: str) -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.ldi(r0, value)  # noqa: E702
    expect_error(kern, fragment)


def test_error_ldi_register_as_value() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.ldi(ra0, rb0, 5)  # type: ignore[arg-type]  # noqa: E702
    expect_error(kern, "k.ldi(dst, value, dst2)")


def test_error_loop_count_and_counter() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); loop = k.loop(r1, 0)  # noqa: E702
        with loop:
            k.nop()
    expect_error(kern, "count >= 1")

    def kern2(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); loop = k.loop(rb5, 3)  # noqa: E702
        with loop:
            k.nop()
    expect_error(kern2, "loop counter")


def test_error_word() -> None:
    def kern(k: Kernel, lines: List[int]) -> None:
        lines.append(line_here()); k.word(1 << 64)  # noqa: E702
    expect_error(kern, "64-bit")
    assert one(lambda k: k.word(0x0123456789ABCDEF)) == 0x0123456789ABCDEF


# ------------------------------------------------------------------------------------------
# API shape, table coverage, thread safety
# ------------------------------------------------------------------------------------------

def test_every_table_op_has_a_method() -> None:
    for op in ADD_OPS.values():
        assert callable(getattr(Kernel, op.dsl_name)), op
    for op in MUL_OPS.values():
        assert callable(getattr(Issued, op.dsl_name)), op
    for name in ("fmul", "imul24", "v8muld", "v8min", "v8max"):
        assert callable(getattr(Kernel, name))


def test_every_register_name_has_a_constant() -> None:
    import qpu.dsl
    import qpu.registers
    for space in Space:
        for info in REGISTERS[space].values():
            reg = getattr(qpu.registers, info.dsl)
            assert reg.name == info.dsl
            assert info.dsl in qpu.dsl.__all__
    assert ra[17] is qpu.registers.ra17 and rb[31] is qpu.registers.rb31 and len(ra) == len(rb) == 32


def test_assemble_passes_arguments() -> None:
    def kern(k: Kernel, n: int, *, reg: Any) -> None:
        for _ in range(n):
            k.mov(reg, r0)
    p = assemble(kern, 3, reg=rb1)
    assert p.words == [alu(op_add=21, cond_add=ALWAYS, ws=1, waddr_add=1)] * 3
    assert len(Kernel()) == 0


def _threaded_kernel(k: Kernel, n: int) -> None:
    top = k.here("top")
    for i in range(n):
        k.iadd(ra[i % 32], r0, i % 16).fmul(rb[i % 32], r1, r2)
    k.brr(top, cond=BranchCond.ANY_ZC, delay="nop")
    k.exit()


def test_kernels_in_threads_are_independent() -> None:
    expected: Dict[int, List[int]] = {n: assemble(_threaded_kernel, n).words for n in range(1, 9)}
    results: Dict[int, List[List[int]]] = {n: [] for n in expected}
    errors: List[BaseException] = []

    def worker(n: int) -> None:
        try:
            for _ in range(20):
                results[n].append(assemble(_threaded_kernel, n).words)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for n, runs in results.items():
        assert runs == [expected[n]] * 20
    # and the expected words are right: the branch goes back over n instructions
    assert expected[3][3] == branch_word(8 * (0 - (3 + 4)), cond_br=3)


# ------------------------------------------------------------------------------------------
# Property: operand placement follows the guide's read-port rules
# ------------------------------------------------------------------------------------------

# An operand: ("acc", n) r0..r5, ("a", n) ra<n>, ("b", n) rb<n>, ("imm", v) small int.
_OPERANDS = st.one_of(
    st.tuples(st.just("acc"), st.integers(0, 5)),
    st.tuples(st.just("a"), st.integers(0, 31)),
    st.tuples(st.just("b"), st.integers(0, 31)),
    st.tuples(st.just("imm"), st.integers(-16, 15)),
)
_ACCS = (r0, r1, r2, r3, r4, r5)


def _dsl_operand(o: Any) -> Any:
    kind, n = o
    return {"acc": lambda: _ACCS[n], "a": lambda: ra[n], "b": lambda: rb[n], "imm": lambda: n}[kind]()


@given(st.sampled_from(sorted(set(ADD_CODES) - UNARY)), st.lists(_OPERANDS, min_size=4, max_size=4),
       st.integers(0, 31))
def test_operand_placement_property(name: str, ops: List[Any], dst: int) -> None:
    """Each source gets mux r0..r5, A (raddr_a) or B (raddr_b / small immediate, Table 3 p.28);
    one raddr_a, one raddr_b, and a small immediate takes raddr_b (Table 1 p.27)."""
    raddr_a = raddr_b = imm = None
    muxes = []
    ok = True
    for kind, n in ops:
        if kind == "acc":
            muxes.append(n)
        elif kind == "a":
            ok &= raddr_a in (None, n)
            raddr_a = n
            muxes.append(MUX_A)
        elif kind == "b":
            ok &= raddr_b in (None, n) and imm is None
            raddr_b = n
            muxes.append(MUX_B)
        else:
            code = n if n >= 0 else n + 32  # Table 5: -16..-1 are codes 16..31
            ok &= imm in (None, code) and raddr_b is None
            imm = code
            muxes.append(MUX_B)
    k = Kernel()
    a, b, c, d = (_dsl_operand(o) for o in ops)
    if not ok:
        with pytest.raises(AssemblyError):
            getattr(k, name)(ra[dst], a, b).fmul(rb[dst], c, d)
        return
    getattr(k, name)(ra[dst], a, b).fmul(rb[dst], c, d)
    word = k.build().words[0]
    assert word == alu(sig=SIG_SMALL_IMM if imm is not None else SIG_NONE, op_add=ADD_CODES[name],
                       cond_add=ALWAYS, waddr_add=dst, op_mul=1, cond_mul=ALWAYS, waddr_mul=dst,
                       raddr_a=NOP if raddr_a is None else raddr_a,
                       raddr_b=imm if imm is not None else (NOP if raddr_b is None else raddr_b),
                       add_a=muxes[0], add_b=muxes[1], mul_a=muxes[2], mul_b=muxes[3])
