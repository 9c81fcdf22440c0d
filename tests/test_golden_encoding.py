"""Golden (text, word) pairs derived by hand from the Reference Guide's tables.

Every expected word is built here with explicit shifts from the field positions of
Figure 3 / Table 1 (guide p.26-27; the same positions as Mesa's vc4_qpu_defines.h
``QPU_*_SHIFT``), using code values typed in from the guide's tables, not from
``qpu.isa``.  Canonical choices for fields the text leaves open follow the rules
documented at the top of ``qpu/encoding.py`` (unused read addresses 39, a unary op's
b mux repeats a, a nop's muxes 0, a nop or a discarded result writes "never").

Each canonical pair is checked both ways: ``assemble(text) == word`` and
``disassemble(word) == text``.  A few words are facts from GPU_FFT's
``hex/shader_256.hex`` (raspberrypi/userland), whose comments give the source text.
"""

from __future__ import annotations

import pytest

from qpu.disassembler import disassemble, disassemble_word
from qpu.encoding import encode
from qpu.text_assembler import assemble_text, parse_instruction

# --- Table 4 (p.29): signaling bits -----------------------------------------------------------
SIG_BKPT, SIG_NONE, SIG_THRSW, SIG_THREND, SIG_SBWAIT, SIG_SBDONE, SIG_LTHRSW = 0, 1, 2, 3, 4, 5, 6
SIG_LOADCV, SIG_LOADC, SIG_LDCEND, SIG_LDTMU0, SIG_LDTMU1, SIG_LOADAM = 7, 8, 9, 10, 11, 12
SIG_SMALL_IMM, SIG_LOAD_IMM, SIG_BRANCH = 13, 14, 15
# --- Table 2 (p.28): conditions --------------------------------------------------------------
NEVER, ALWAYS, ZS, ZC, NS, NC, CS, CC = 0, 1, 2, 3, 4, 5, 6, 7
# --- Table 3 (p.28): input muxes -------------------------------------------------------------
R0, R1, R2, R3, R4, R5, MUX_A, MUX_B = 0, 1, 2, 3, 4, 5, 6, 7
# --- Table 14 (p.37-38): register addresses --------------------------------------------------
NOP_ADDR = 39          # "NOP (no read)" / "NOP (no write)"
ACC0, ACC1, ACC2, ACC3 = 32, 33, 34, 35   # write addresses of r0-r3
UNIFORM_READ = 32
# --- Table 12 (p.35-36) add opcodes, Table 13 (p.36) mul opcodes ------------------------------
OP_OR = 21
OP_V8MIN = 4
OP_FADD = 1
OP_FMUL = 1


def alu(*, sig=SIG_NONE, unpack=0, pm=0, pack=0, cond_add=NEVER, cond_mul=NEVER, sf=0, ws=0,
        waddr_add=NOP_ADDR, waddr_mul=NOP_ADDR, op_mul=0, op_add=0, raddr_a=NOP_ADDR, raddr_b=NOP_ADDR,
        add_a=R0, add_b=R0, mul_a=R0, mul_b=R0) -> int:
    """An ALU word from its fields (Figure 3 / Table 1).  For small-immediate words raddr_b
    holds the small_immed code (bits 17:12)."""
    return (sig << 60 | unpack << 57 | pm << 56 | pack << 52 | cond_add << 49 | cond_mul << 46
            | sf << 45 | ws << 44 | waddr_add << 38 | waddr_mul << 32
            | op_mul << 29 | op_add << 24 | raddr_a << 18 | raddr_b << 12
            | add_a << 9 | add_b << 6 | mul_a << 3 | mul_b)


def load_imm(imm: int, *, mode=0, pm=0, pack=0, cond_add=NEVER, cond_mul=NEVER, sf=0, ws=0,
             waddr_add=NOP_ADDR, waddr_mul=NOP_ADDR) -> int:
    """Figure 5 (p.33): sig=14, the 3-bit mode at 59:57 (0 = 32-bit, 1 = per-element signed,
    3 = per-element unsigned), the ALU upper fields, the immediate in bits 31:0."""
    return (SIG_LOAD_IMM << 60 | mode << 57 | pm << 56 | pack << 52 | cond_add << 49 | cond_mul << 46
            | sf << 45 | ws << 44 | waddr_add << 38 | waddr_mul << 32 | (imm & 0xFFFFFFFF))


def semaphore(n: int, acquire: bool, **upper) -> int:
    """Figure 6 (p.33): a load-immediate word with mode 4; sa at bit 4 (1 = decrement), the
    semaphore number in bits 3:0."""
    return load_imm(int(acquire) << 4 | n, mode=4, **upper)


def branch(imm: int, *, cond_br=15, rel=0, reg=0, raddr_a=0, ws=0, waddr_add=NOP_ADDR,
           waddr_mul=NOP_ADDR) -> int:
    """Figure 7 / Table 10 (p.34): sig=15, cond_br 55:52, rel 51, reg 50, raddr_a 49:45,
    ws 44, waddr_add 43:38, waddr_mul 37:32, immediate 31:0."""
    return (SIG_BRANCH << 60 | cond_br << 52 | rel << 51 | reg << 50 | raddr_a << 45 | ws << 44
            | waddr_add << 38 | waddr_mul << 32 | (imm & 0xFFFFFFFF))


def both_ways(text: str, word: int) -> None:
    assert assemble_text(text).words == [word], f"{text!r} should assemble to {word:#018x}"
    assert disassemble_word(word) == text, f"{word:#018x} should print as {text!r}"


# --------------------------------------------------------------------------------------------
# Facts from GPU_FFT (hello_fft/hex/shader_256.hex: low word, high word, // source text)
# --------------------------------------------------------------------------------------------

GPU_FFT_FACTS = [
    # "0x009e7000, 0x100009e7, // nop"
    (0x100009e7_009e7000, "nop"),
    # "0x00000040, 0xe00217a7, // mov rb_0x40, 0x40" (rb_0x40 is rb30: waddr_add 30 with ws=1)
    (0xe00217a7_00000040, "ldi rb30, 0x00000040"),
    # "0x15827d80, 0x10020227, // mov rx_tw_shared, unif" (rx_tw_shared is ra8)
    (0x10020227_15827d80, "mov ra8, unif"),
    # "0x00000019, 0xe80009e7, // mov -, sacq(i+9)" with i = 0
    (0xe80009e7_00000019, "sacq 9"),
    # "0x00000001, 0xe80009e7, // mov -, srel(i+1)"
    (0xe80009e7_00000001, "srel 1"),
    # "0x159f2fc0, 0x100009e7, // mov -, vw_wait"
    (0x100009e7_159f2fc0, "mov -, vw_wait"),
    # "0x409c5017, 0x100049e2, // nop; mul24 r2, r2, in_inst" (in_inst is rb5)
    (0x100049e2_409c5017, "nop ; mul24 r2, r2, rb5"),
    # "0xcc9e7081, 0x100246e0, // add out_0, r0, r2; v8adds r0, r0, r1" (out_0 is ra27)
    (0x100246e0_cc9e7081, "add ra27, r0, r2 ; v8adds r0, r0, r1"),
    # "0x00000000, 0xf0f4c9e7, // bra -, ra_sync" (ra_sync is ra6)
    (0xf0f4c9e7_00000000, "bra ra6"),
    # "0x8c05edf6, 0x10024072, // add ra_save_ptr, ra_save_ptr, rb_0x40; mov vw_addr, ra_save_ptr"
    (0x10024072_8c05edf6, "add ra1, ra1, rb30 ; mov vw_addr, ra1"),
    # "0x14981dc0, 0xd00229e7, // and.setf -, elem_num, (1<<i)" with i = 0
    (0xd00229e7_14981dc0, "and.setf -, elem_num, 1"),
    # "0x819ff2c0, 0xd0064862, // fadd.ifnz r1, r1, r3; mov r2, r0 << (1<<i)"
    (0xd0064862_819ff2c0, "fadd.zc r1, r1, r3 ; mov r2, r0 << 1"),
    # "0x819f1400, 0xd0044823, // fadd.ifz r0, r2, r0; mov r3, r0 >> (1<<i)"
    (0xd0044823_819f1400, "fadd.zs r0, r2, r0 ; mov r3, r0 >> 1"),
    # "0x159e7900, 0xa0020827, // mov r0, r4; ldtmu0"
    (0xa0020827_159e7900, "mov r0, r4 ; ldtmu0"),
    # "0x00000000, 0xe002438e, // mov ra_tw_re+TW16+4, 0; mov rb_tw_im+TW16+4, 0" (ra14, rb14)
    (0xe002438e_00000000, "ldi ra14, rb14, 0x00000000"),
    # "0x009e7000, 0x300009e7, // nop; nop; thrend"
    (0x300009e7_009e7000, "nop ; thrend"),
]


@pytest.mark.parametrize("word,text", GPU_FFT_FACTS, ids=[t for _, t in GPU_FFT_FACTS])
def test_gpu_fft_words(word, text):
    both_ways(text, word)


def test_gpu_fft_relative_branch_with_link():
    # "0x000000b0, 0xf0f80127, // brr rx_ptr, label": link into ra4 (rx_ptr), immediate 0xb0 =
    # 176 bytes = 22 instructions past branch+4 (branches are relative to PC+4, guide p.20).
    word = 0xf0f80127_000000b0
    assert word == branch(0xB0, rel=1, waddr_add=4)  # the fact agrees with Table 10's layout
    lines = ["brr ra4, target"] + ["nop"] * 25 + ["target: nop"]
    program = assemble_text("\n".join(lines))
    assert program.words[0] == word
    assert program.labels == {"target": 26}
    assert disassemble(program.words)[0] == "brr ra4, L26"
    assert disassemble(program)[0] == "brr ra4, target"
    assert assemble_text("brr ra4, 176").words == [word]
    assert assemble_text("brr ra4, 0xb0").words == [word]


# --------------------------------------------------------------------------------------------
# Every add op (Table 12) and mul op (Table 13)
# --------------------------------------------------------------------------------------------

# (mnemonic, opcode, unary?) typed in from Table 12.
ADD_OPS_TABLE_12 = [
    ("fadd", 1, False), ("fsub", 2, False), ("fmin", 3, False), ("fmax", 4, False),
    ("fminabs", 5, False), ("fmaxabs", 6, False), ("ftoi", 7, True), ("itof", 8, True),
    ("add", 12, False), ("sub", 13, False), ("shr", 14, False), ("asr", 15, False),
    ("ror", 16, False), ("shl", 17, False), ("min", 18, False), ("max", 19, False),
    ("and", 20, False), ("or", 21, False), ("xor", 22, False), ("not", 23, True),
    ("clz", 24, True), ("v8adds", 30, False), ("v8subs", 31, False),
]
# Table 13.
MUL_OPS_TABLE_13 = [("fmul", 1), ("mul24", 2), ("v8muld", 3), ("v8min", 4), ("v8max", 5),
                    ("v8adds", 6), ("v8subs", 7)]


@pytest.mark.parametrize("name,code,unary", ADD_OPS_TABLE_12, ids=[n for n, _, _ in ADD_OPS_TABLE_12])
def test_every_add_op(name, code, unary):
    if unary:
        # Table 14: ra1 = 1 written by the add ALU with ws=0; source r1 = mux 1 (Table 3),
        # the unused b mux repeats a.
        text = f"{name} ra1, r1"
        word = alu(op_add=code, cond_add=ALWAYS, waddr_add=1, add_a=R1, add_b=R1)
    else:
        text = f"{name} ra1, r1, r2"
        word = alu(op_add=code, cond_add=ALWAYS, waddr_add=1, add_a=R1, add_b=R2)
    both_ways(text, word)


@pytest.mark.parametrize("name,code", MUL_OPS_TABLE_13, ids=[n for n, _ in MUL_OPS_TABLE_13])
def test_every_mul_op(name, code):
    # mul writes rb2 (Table 14: 2 in file B, ws=0), sources r3 (mux 3) and r0 (mux 0).
    word = alu(op_mul=code, cond_mul=ALWAYS, waddr_mul=2, mul_a=R3, mul_b=R0)
    both_ways(f"nop ; {name} rb2, r3, r0", word)


@pytest.mark.parametrize("name,code", [("fmul", 1), ("mul24", 2), ("v8muld", 3), ("v8min", 4), ("v8max", 5)])
def test_lone_mul_only_op_goes_to_mul_alu(name, code):
    # docs/syntax.md: a mul-only op written alone is the mul half.
    word = alu(op_mul=code, cond_mul=ALWAYS, waddr_mul=2, mul_a=R3, mul_b=R0)
    assert assemble_text(f"{name} rb2, r3, r0").words == [word]


def test_mov_on_both_alus():
    # add mov = or a, a (Table 12: or = 21); ra5 read through raddr_a = 5, mux A = 6.
    both_ways("mov r0, ra5", alu(op_add=OP_OR, cond_add=ALWAYS, waddr_add=ACC0, raddr_a=5,
                                 add_a=MUX_A, add_b=MUX_A))
    # mul mov = v8min a, a (Table 13: v8min = 4); rb3 read through raddr_b = 3, mux B = 7.
    both_ways("nop ; mov r1, rb3", alu(op_mul=OP_V8MIN, cond_mul=ALWAYS, waddr_mul=ACC1, raddr_b=3,
                                       mul_a=MUX_B, mul_b=MUX_B))


def test_two_halves_with_write_swap():
    # ws = 1 (Table 1): the add ALU writes regfile B (rb1) and the mul ALU regfile A (ra2).
    word = alu(ws=1, op_add=OP_FADD, cond_add=ALWAYS, waddr_add=1, add_a=R0, add_b=R1,
               op_mul=OP_FMUL, cond_mul=ALWAYS, waddr_mul=2, mul_a=R2, mul_b=R3)
    both_ways("fadd rb1, r0, r1 ; fmul ra2, r2, r3", word)
    # Only the mul writes a regfile-A register: ws = 1 too.
    both_ways("nop ; fmul ra2, r2, r3", alu(ws=1, op_mul=OP_FMUL, cond_mul=ALWAYS, waddr_mul=2,
                                             mul_a=R2, mul_b=R3))


def test_both_register_files_read_in_one_instruction():
    # raddr_a = 7 (ra7), raddr_b = 9 (rb9); add_a = mux A, add_b = mux B.
    both_ways("fadd r0, ra7, rb9", alu(op_add=OP_FADD, cond_add=ALWAYS, waddr_add=ACC0, raddr_a=7, raddr_b=9,
                                       add_a=MUX_A, add_b=MUX_B))


# --------------------------------------------------------------------------------------------
# Signals (Table 4) and conditions (Table 2)
# --------------------------------------------------------------------------------------------

SIGNALS_TABLE_4 = [("bkpt", SIG_BKPT), ("thrsw", SIG_THRSW), ("thrend", SIG_THREND), ("sbwait", SIG_SBWAIT),
                   ("sbdone", SIG_SBDONE), ("lthrsw", SIG_LTHRSW), ("loadcv", SIG_LOADCV), ("loadc", SIG_LOADC),
                   ("ldcend", SIG_LDCEND), ("ldtmu0", SIG_LDTMU0), ("ldtmu1", SIG_LDTMU1),
                   ("loadam", SIG_LOADAM)]


@pytest.mark.parametrize("name,sig", SIGNALS_TABLE_4, ids=[n for n, _ in SIGNALS_TABLE_4])
def test_every_signal(name, sig):
    both_ways(f"nop ; {name}", alu(sig=sig))
    # with an operation: mov r0, r4 (mux 4) on the add ALU
    both_ways(f"mov r0, r4 ; {name}", alu(sig=sig, op_add=OP_OR, cond_add=ALWAYS, waddr_add=ACC0,
                                         add_a=R4, add_b=R4))


CONDS_TABLE_2 = [("never", NEVER), ("zs", ZS), ("zc", ZC), ("ns", NS), ("nc", NC), ("cs", CS), ("cc", CC)]


@pytest.mark.parametrize("name,code", CONDS_TABLE_2, ids=[n for n, _ in CONDS_TABLE_2])
def test_every_condition(name, code):
    both_ways(f"fadd.{name} r0, r1, r2", alu(op_add=OP_FADD, cond_add=code, waddr_add=ACC0, add_a=R1, add_b=R2))
    both_ways(f"nop ; fmul.{name} r0, r1, r2", alu(op_mul=OP_FMUL, cond_mul=code, waddr_mul=ACC0,
                                                  mul_a=R1, mul_b=R2))


# vc4asm's spellings (doc/extensions.html, src/Parser.tables.cpp) map to the guide's conditions;
# note that vc4asm's "ifnc" is "N clear" (like ifnn), carry clear is "ifcc".
@pytest.mark.parametrize("alias,code", [("ifz", ZS), ("ifnz", ZC), ("ifn", NS), ("ifnn", NC), ("ifnc", NC),
                                        ("ifc", CS), ("ifcc", CC), ("IFZ", ZS)])
def test_vc4asm_condition_aliases(alias, code):
    assert assemble_text(f"fadd.{alias} r0, r1, r2").words == [
        alu(op_add=OP_FADD, cond_add=code, waddr_add=ACC0, add_a=R1, add_b=R2)]


def test_setf_on_add_and_on_mul():
    # sf = bit 45 (Table 1); flags come from the add ALU unless it is a nop.
    both_ways("fadd.setf r0, r1, r2", alu(sf=1, op_add=OP_FADD, cond_add=ALWAYS, waddr_add=ACC0, add_a=R1, add_b=R2))
    both_ways("nop ; fmul.setf r0, r1, r2", alu(sf=1, op_mul=OP_FMUL, cond_mul=ALWAYS, waddr_mul=ACC0,
                                               mul_a=R1, mul_b=R2))
    # A discarded add result that sets flags still "writes" always (the flags need the op to run).
    both_ways("fsub.setf -, r1, r2", alu(sf=1, op_add=2, cond_add=ALWAYS, add_a=R1, add_b=R2))
    assert assemble_text("fadd.sf r0, r1, r2").words == assemble_text("fadd.setf r0, r1, r2").words


def test_nop_with_destination_and_condition():
    # A mul-ALU nop with a destination writes that ALU's previous result when its condition
    # allows (vc4asm addendum); the emulator's add-ALU nop writes nothing (docs/emulator.md).
    # The default condition of a nop is never.
    both_ways("nop ra3", alu(waddr_add=3))
    both_ways("nop.always ra3", alu(cond_add=ALWAYS, waddr_add=3))
    both_ways("nop ; nop.zs rb4", alu(cond_mul=ZS, waddr_mul=4))


# --------------------------------------------------------------------------------------------
# Small immediates and rotations (Table 5)
# --------------------------------------------------------------------------------------------

# (text, code) from Table 5: 0..15 -> 0..15, -16..-1 -> 16..31, 1.0..128.0 -> 32..39,
# 1/256..1/2 -> 40..47.
SMALL_IMMS_TABLE_5 = [("0", 0), ("5", 5), ("15", 15), ("-16", 16), ("-15", 17), ("-2", 30), ("-1", 31),
                      ("1.0", 32), ("2.0", 33), ("64.0", 38), ("128.0", 39), ("0.00390625", 40),
                      ("0.0078125", 41), ("0.25", 46), ("0.5", 47)]


@pytest.mark.parametrize("value,code", SMALL_IMMS_TABLE_5, ids=[v for v, _ in SMALL_IMMS_TABLE_5])
def test_small_immediates(value, code):
    # sig 13 (Table 4); raddr_b holds the code; the immediate is read through mux B.
    op = 12 if "." not in value else OP_FADD   # add (int) / fadd (float)
    name = "add" if op == 12 else "fadd"
    both_ways(f"{name} r0, r1, {value}", alu(sig=SIG_SMALL_IMM, op_add=op, cond_add=ALWAYS, waddr_add=ACC0,
                                             raddr_b=code, add_a=R1, add_b=MUX_B))


def test_small_immediate_on_mul_and_both_halves():
    # The same immediate on both halves shares the one field.
    both_ways("fadd r0, r1, 2.0 ; fmul r1, r2, 2.0",
              alu(sig=SIG_SMALL_IMM, raddr_b=33, op_add=OP_FADD, cond_add=ALWAYS, waddr_add=ACC0, add_a=R1,
                  add_b=MUX_B, op_mul=OP_FMUL, cond_mul=ALWAYS, waddr_mul=ACC1, mul_a=R2, mul_b=MUX_B))


@pytest.mark.parametrize("text,code", [(">> 1", 49), (">> 3", 51), (">> 8", 56), ("<< 7", 57), ("<< 1", 63),
                                       (">> r5", 48)])
def test_rotations(text, code):
    # Table 5: 48 = rotate by r5, 48+n = rotate the mul output up by n; "<< n" = ">> 16-n".
    both_ways(f"nop ; mov r0, r1 {text}", alu(sig=SIG_SMALL_IMM, raddr_b=code, op_mul=OP_V8MIN, cond_mul=ALWAYS,
                                             waddr_mul=ACC0, mul_a=R1, mul_b=R1))


def test_rotation_aliases():
    word = alu(sig=SIG_SMALL_IMM, raddr_b=48 + 9, op_mul=OP_V8MIN, cond_mul=ALWAYS, waddr_mul=ACC0,
               mul_a=R1, mul_b=R1)
    assert assemble_text("nop ; mov r0, r1 >> 9").words == [word]
    assert assemble_text("nop;mov r0,r1<<7").words == [word]


def test_rotation_code_read_as_value():
    # vc4asm addendum (Section 3, Table 5): codes 48-63 read through mux B give -16..-1.
    # Code 49 rotates by 1 and delivers -15.
    both_ways("nop ; mul24 r0, r1, -15 >> 1", alu(sig=SIG_SMALL_IMM, raddr_b=49, op_mul=2, cond_mul=ALWAYS,
                                                 waddr_mul=ACC0, mul_a=R1, mul_b=MUX_B))


# --------------------------------------------------------------------------------------------
# Load immediate (Figure 5), semaphores (Figure 6)
# --------------------------------------------------------------------------------------------

def test_ldi_32_bit():
    both_ways("ldi r0, 0x12345678", load_imm(0x12345678, cond_add=ALWAYS, waddr_add=ACC0))
    # negative decimal, two destinations (add writes ra1 through A, mul writes rb2 through B)
    assert assemble_text("ldi ra1, rb2, -1").words == [
        load_imm(0xFFFFFFFF, cond_add=ALWAYS, cond_mul=ALWAYS, waddr_add=1, waddr_mul=2)]
    # float: IEEE 754 single 1.5 = 0x3fc00000
    assert assemble_text("ldi r0, 1.5").words == [load_imm(0x3FC00000, cond_add=ALWAYS, waddr_add=ACC0)]
    # mul destination only: the add half writes nothing and gets "never" (Table 2 note)
    both_ways("ldi -, r1, 0x00000005", load_imm(5, cond_mul=ALWAYS, waddr_mul=ACC1))
    both_ways("ldi.zs ra3, 0x00000001", load_imm(1, cond_add=ZS, waddr_add=3))
    both_ways("ldi.setf -, 0x00000001", load_imm(1, cond_add=ALWAYS, sf=1))


def test_ldi_per_element():
    # Figure 5: element i's LS bit in bit i, its MS bit in bit 16+i.
    # unsigned [0,1,2,3]*4: LS bits set for 1 and 3 -> elements 1,3,5,... = 0xaaaa;
    # MS bits set for 2 and 3 -> elements 2,3,6,7,... = 0xcccc.  Mode 3 = per-element unsigned.
    values = ", ".join(["0, 1, 2, 3"] * 4)
    both_ways(f"ldi r0, unsigned[{values}]", load_imm(0xCCCCAAAA, mode=3, cond_add=ALWAYS, waddr_add=ACC0))
    assert assemble_text(f"ldi r0, [{values}]").words == [load_imm(0xCCCCAAAA, mode=3, cond_add=ALWAYS,
                                                                   waddr_add=ACC0)]
    # signed [-2,-1,0,1]*4: -2 = 0b10, -1 = 0b11, 0 = 0b00, 1 = 0b01.  LS bits: elements 1,3 of
    # each group of 4 -> 0xaaaa; MS bits: elements 0,1 -> 0x3333.  Mode 1 = per-element signed.
    values = ", ".join(["-2, -1, 0, 1"] * 4)
    both_ways(f"ldi r0, signed[{values}]", load_imm(0x3333AAAA, mode=1, cond_add=ALWAYS, waddr_add=ACC0))
    assert assemble_text(f"ldi r0, [{values}]").words == [load_imm(0x3333AAAA, mode=1, cond_add=ALWAYS,
                                                                   waddr_add=ACC0)]


def test_semaphores():
    both_ways("sacq 3", semaphore(3, True))
    both_ways("srel 15", semaphore(15, False))
    # With a destination the instruction also writes its (useless) immediate: cond always.
    both_ways("sacq r0, 3", semaphore(3, True, cond_add=ALWAYS, waddr_add=ACC0))
    both_ways("srel.zc ra1, rb2, 0", semaphore(0, False, cond_add=ZC, cond_mul=ZC, waddr_add=1, waddr_mul=2))


# --------------------------------------------------------------------------------------------
# Branches (Figure 7, Tables 10 and 11)
# --------------------------------------------------------------------------------------------

BRANCH_CONDS_TABLE_11 = [("allz", 0), ("allnz", 1), ("anyz", 2), ("anynz", 3), ("alln", 4), ("allnn", 5),
                         ("anyn", 6), ("anynn", 7), ("allc", 8), ("allnc", 9), ("anyc", 10), ("anync", 11)]


@pytest.mark.parametrize("name,code", BRANCH_CONDS_TABLE_11, ids=[n for n, _ in BRANCH_CONDS_TABLE_11])
def test_every_branch_condition(name, code):
    both_ways(f"brr.{name} 64", branch(64, cond_br=code, rel=1))


def test_branches():
    # relative to a label, forward: target index 5, branch at 0: 8*(5-(0+4)) = 8 bytes
    program = assemble_text("brr out\nnop\nnop\nnop\nnop\nout: nop")
    assert program.words[0] == branch(8, rel=1)
    # relative, backward to itself: 8*(0-4) = -32
    assert assemble_text("top: brr.anyz top").words == [branch(-32, cond_br=2, rel=1)]
    # absolute: rel = 0 (Table 10)
    both_ways("bra 4096", branch(0x1000))
    # absolute to a label needs the program's address: 0x1000 + 8*2
    program = assemble_text("bra there\nnop\nthere: nop", base_address=0x1000)
    assert program.words[0] == branch(0x1010)
    # via a register: reg = 1, raddr_a = 6
    both_ways("bra ra6", branch(0, reg=1, raddr_a=6))
    both_ways("brr ra2 + 64", branch(64, rel=1, reg=1, raddr_a=2))
    # with links: add writes ra4 (ws=0), mul writes rb5
    both_ways("brr ra4, rb5, -8", branch(-8, rel=1, waddr_add=4, waddr_mul=5))
    # link into regfile B from the add ALU: ws = 1
    both_ways("bra rb7, 0", branch(0, ws=1, waddr_add=7))
    # odd raddr_a also sets flags (vc4asm addendum): written .setf
    both_ways("bra.setf ra1 + 64", branch(64, reg=1, raddr_a=1))
    # .setf without register: raddr_a = 1
    both_ways("brr.setf 0", branch(0, rel=1, raddr_a=1))


# --------------------------------------------------------------------------------------------
# Pack / unpack (Tables 6-9)
# --------------------------------------------------------------------------------------------

PACK_A_TABLE_7 = [("16a", 1), ("16b", 2), ("8888", 3), ("8a", 4), ("8b", 5), ("8c", 6), ("8d", 7), ("32s", 8),
                  ("16as", 9), ("16bs", 10), ("8888s", 11), ("8as", 12), ("8bs", 13), ("8cs", 14), ("8ds", 15)]


@pytest.mark.parametrize("suffix,code", PACK_A_TABLE_7, ids=[s for s, _ in PACK_A_TABLE_7])
def test_regfile_a_pack(suffix, code):
    # pm = 0: pack applies to the regfile-A write (Table 7)
    both_ways(f"fadd ra1.{suffix}, r0, r1", alu(pack=code, op_add=OP_FADD, cond_add=ALWAYS, waddr_add=1,
                                               add_a=R0, add_b=R1))


def test_regfile_a_pack_on_mul_forces_write_swap():
    both_ways("nop ; fmul ra1.16a, r0, r1", alu(pack=1, ws=1, op_mul=OP_FMUL, cond_mul=ALWAYS, waddr_mul=1,
                                               mul_a=R0, mul_b=R1))


# Table 9 with the 8b/8c/8d correction (py-videocore APPENDIX.rst, Mesa QPU_PACK_MUL_8A..8D).
PACK_MUL_TABLE_9 = [("8888c", 3), ("8ac", 4), ("8bc", 5), ("8cc", 6), ("8dc", 7)]


@pytest.mark.parametrize("suffix,code", PACK_MUL_TABLE_9, ids=[s for s, _ in PACK_MUL_TABLE_9])
def test_mul_colour_pack(suffix, code):
    # pm = 1: the pack field converts the mul ALU's float result to 8-bit colour (Table 9)
    both_ways(f"nop ; fmul r0.{suffix}, r1, r2", alu(pm=1, pack=code, op_mul=OP_FMUL, cond_mul=ALWAYS,
                                                    waddr_mul=ACC0, mul_a=R1, mul_b=R2))


UNPACK_TABLE_6 = [("16a", 1), ("16b", 2), ("8dr", 3), ("8a", 4), ("8b", 5), ("8c", 6), ("8d", 7)]


@pytest.mark.parametrize("suffix,code", UNPACK_TABLE_6, ids=[s for s, _ in UNPACK_TABLE_6])
def test_unpack(suffix, code):
    # pm = 0: regfile-A unpack (Table 6), read through raddr_a = 3, mux A
    both_ways(f"fadd r0, ra3.{suffix}, r1", alu(unpack=code, op_add=OP_FADD, cond_add=ALWAYS, waddr_add=ACC0,
                                               raddr_a=3, add_a=MUX_A, add_b=R1))
    # pm = 1: r4 unpack (Table 8), mux 4
    both_ways(f"fadd r0, r4.{suffix}, r1", alu(pm=1, unpack=code, op_add=OP_FADD, cond_add=ALWAYS,
                                              waddr_add=ACC0, add_a=R4, add_b=R1))


# --------------------------------------------------------------------------------------------
# Every I/O register name (Table 14)
# --------------------------------------------------------------------------------------------

# (name, address, file): "ab" = the same register in both files.
WRITE_IO_TABLE_14 = [
    ("r0", 32, "ab"), ("r1", 33, "ab"), ("r2", 34, "ab"), ("r3", 35, "ab"), ("tmu_noswap", 36, "ab"),
    ("r5quad", 37, "a"), ("r5rep", 37, "b"), ("host_int", 38, "ab"), ("unif_addr", 40, "ab"),
    ("quad_x", 41, "a"), ("quad_y", 41, "b"), ("ms_flags", 42, "a"), ("rev_flag", 42, "b"),
    ("tlb_stencil", 43, "ab"), ("tlb_z", 44, "ab"), ("tlb_color_ms", 45, "ab"), ("tlb_color_all", 46, "ab"),
    ("tlb_alpha_mask", 47, "ab"), ("vpm", 48, "ab"), ("vr_setup", 49, "a"), ("vw_setup", 49, "b"),
    ("vr_addr", 50, "a"), ("vw_addr", 50, "b"), ("mutex", 51, "ab"), ("sfu_recip", 52, "ab"),
    ("sfu_recipsqrt", 53, "ab"), ("sfu_exp", 54, "ab"), ("sfu_log", 55, "ab"), ("tmu0_s", 56, "ab"),
    ("tmu0_t", 57, "ab"), ("tmu0_r", 58, "ab"), ("tmu0_b", 59, "ab"), ("tmu1_s", 60, "ab"),
    ("tmu1_t", 61, "ab"), ("tmu1_r", 62, "ab"), ("tmu1_b", 63, "ab"),
]


@pytest.mark.parametrize("name,addr,files", WRITE_IO_TABLE_14, ids=[n for n, _, _ in WRITE_IO_TABLE_14])
def test_every_write_register(name, addr, files):
    # add ALU writes: ws = 0 reaches the A space, ws = 1 the B space (Table 1)
    ws = 1 if files == "b" else 0
    both_ways(f"mov {name}, r1", alu(ws=ws, op_add=OP_OR, cond_add=ALWAYS, waddr_add=addr, add_a=R1, add_b=R1))


READ_IO_TABLE_14 = [
    ("unif", 32, "ab"), ("vary", 35, "ab"), ("elem_num", 38, "a"), ("qpu_num", 38, "b"), ("null", 39, "ab"),
    ("x_coord", 41, "a"), ("y_coord", 41, "b"), ("ms_flags", 42, "a"), ("rev_flag", 42, "b"), ("vpm", 48, "ab"),
    ("vr_busy", 49, "a"), ("vw_busy", 49, "b"), ("vr_wait", 50, "a"), ("vw_wait", 50, "b"), ("mutex", 51, "ab"),
]


@pytest.mark.parametrize("name,addr,files", READ_IO_TABLE_14, ids=[n for n, _, _ in READ_IO_TABLE_14])
def test_every_read_register(name, addr, files):
    # A name in both files is read through regfile A when raddr_a is free (canonical rule).
    if files == "b":
        word = alu(op_add=OP_OR, cond_add=ALWAYS, waddr_add=ACC0, raddr_b=addr, add_a=MUX_B, add_b=MUX_B)
    else:
        word = alu(op_add=OP_OR, cond_add=ALWAYS, waddr_add=ACC0, raddr_a=addr, add_a=MUX_A, add_b=MUX_A)
    both_ways(f"mov r0, {name}", word)


def test_dual_register_falls_back_to_file_b():
    # raddr_a already reads ra1, so unif is read through raddr_b.
    both_ways("fadd r0, ra1, unif", alu(op_add=OP_FADD, cond_add=ALWAYS, waddr_add=ACC0, raddr_a=1,
                                        raddr_b=UNIFORM_READ, add_a=MUX_A, add_b=MUX_B))
    # a forced file: rb32 is the uniform read through file B
    assert assemble_text("mov r0, rb32").words == [
        alu(op_add=OP_OR, cond_add=ALWAYS, waddr_add=ACC0, raddr_b=UNIFORM_READ, add_a=MUX_B, add_b=MUX_B)]


def test_read_clause():
    # "read" sets raddr without a mux using it (a uniform is still consumed).
    both_ways("nop ; read unif", alu(raddr_a=UNIFORM_READ))
    both_ways("nop ; read vw_wait", alu(raddr_b=50))
    both_ways("nop ; read 7", alu(sig=SIG_SMALL_IMM, raddr_b=7))


def test_overrides_set_raw_fields():
    # An unusual write swap on a nop half and a non-zero unused mux survive as overrides.
    assert assemble_text("nop {ws=1, add_a=3}").words == [alu(ws=1, add_a=R3)]
    both_ways("nop {ws=1, add_a=3}", alu(ws=1, add_a=R3))
    # don't-care bits of a semaphore word (Figure 6: bits 31:5)
    both_ways("sacq 2 {dont_care=5}", semaphore(2, True) | 5 << 5)
    both_ways("sacq 2 {dont_care=0x1a}", semaphore(2, True) | 0x1A << 5)
    assert assemble_text("sacq 2 {dont_care=26}").words == [semaphore(2, True) | 26 << 5]


def test_parse_instruction_matches_assemble():
    for text in ["fadd ra1, r0, r1", "ldi r0, 0x12345678", "sacq 3", "bra ra6"]:
        assert encode(parse_instruction(text)) == assemble_text(text).words[0]
