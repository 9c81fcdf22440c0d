"""Every EncodingError of qpu/encoding.py that text can reach, with a specific message.

The encoder's errors reach the text user as ``AssemblyError`` (not the syntax-error
subclass) carrying the file name, line number and the instruction text.  Each case
is a combination the guide rules out for one 64-bit word (one raddr_a / raddr_b
field, one small-immediate field shared with the signal field, one pm bit for pack
and unpack, Table 1's write swap ...).

Encoder checks that the text syntax cannot express (an accumulator r6, a reserved
pack code, an out-of-range register address ...) are guarded by the parser; the
last tests here show the parser's message for the ones a user can type.
"""

from __future__ import annotations

import pytest

from qpu.encoding import encode
from qpu.errors import AssemblyError, EncodingError, SourceLocation, TextSyntaxError
from qpu.text_assembler import assemble_text, parse_instruction

CASES = [
    # --- read ports (Table 1: one raddr_a, one raddr_b / small_immed field) ---
    ("fadd r0, ra1, ra2", "two different regfile-A reads (ra1 and ra2)"),
    ("fadd r0, rb1, rb2", "two different regfile-B reads (rb1 and rb2)"),
    ("add r0, rb1, 2", "small immediate 2 and a regfile-B read (rb1) both need the raddr_b field"),
    ("add r0, 2, rb1", "regfile-B read rb1 and small immediate 2 both need the raddr_b field"),
    ("add r0, r1, 2 ; mul24 r1, r2, 3", "two different small immediates (2 and 3)"),
    ("fadd r0, ra1, rb2 ; fmul r1, unif, r0", "no read port left for unif: raddr_a reads ra1 and raddr_b reads rb2"),
    ("fadd r0, ra1, 1 ; fmul r1, unif, r0", "no read port left for unif: raddr_a reads ra1 and raddr_b holds a small"),
    ("fadd r0, unif.16a, ra1", "two different regfile-A reads (unif and ra1)"),
    ("nop ; read ra1 ; read ra2", "two different regfile-A reads (ra1 and ra2)"),
    ("nop ; read r1", "reading an accumulator needs no read field"),
    # --- small immediate field shared with the signal and the rotation (Table 4, Table 5) ---
    ("add r0, r1, 1 ; ldtmu0", "signal ldtmu0 cannot be combined with a small immediate or a rotation"),
    ("nop ; mov r0, r1 >> 3 ; thrsw", "signal thrsw cannot be combined with a small immediate or a rotation"),
    ("nop ; fmul r0, r1, rb1 >> 2", "a rotation uses the small-immediate field, so raddr_b cannot also read rb1"),
    ("nop ; mul24 r0, r1, 3 >> 2", "small immediate 3 cannot be combined with rotation 2"),
    ("nop ; mul24 r0, r1, 3 >> r5", "small immediate 3 cannot be combined with rotation r5"),
    # --- unpack (Tables 6 and 8, one unpack field and one pm bit) ---
    ("fadd r0, r1.16a, r2", "unpack on r1: only r4 and regfile-A reads can be unpacked"),
    ("fadd r0, rb1.16a, r1", "unpack on rb1: the regfile-A unpacker only converts reads of file A"),
    ("fadd r0, ra1.16a, ra1.16b", "the regfile-A unpack applies to every read of file A"),
    ("fadd r0, ra1.16a, ra1", "the regfile-A unpack applies to every read of file A"),
    ("fadd r0, r4.16a, r4.8a", "the r4 unpack applies to every read of r4"),
    ("fadd r0, r4.16a, r4", "the r4 unpack applies to every read of r4"),
    ("fadd r0, ra1.16a, r4.8a", "an instruction can unpack either regfile A or r4, not both"),
    ("nop ; read ra1.16a", "a read that no ALU consumes cannot be unpacked"),
    # --- pack (Tables 7 and 9) and the pm bit ---
    ("fadd ra1.16a, r4.8a, r1", "the pm bit selects regfile-A pack/unpack or r4 unpack/mul colour pack"),
    ("nop ; fmul r0.8ac, ra1.16a, r1", "the pm bit selects regfile-A pack/unpack or r4 unpack/mul colour pack"),
    ("fadd r0.8ac, r1, r2", "the colour pack (pm=1) converts the mul ALU's result: use it on the mul destination"),
    ("fadd ra1.16a, r0, r1 ; fmul r2.8ac, r0, r1", "both destinations have a pack mode"),
    ("fadd rb1.16a, r0, r1", "regfile-A pack .16a on rb1: the pack unit only converts writes to regfile A"),
    # --- write swap (Table 1: one ALU writes file A, the other file B) ---
    ("fadd ra1, r0, r1 ; fmul ra2, r0, r1", "the destinations need the same register file for both ALUs "
                                             "(add writes ra1, mul writes ra2)"),
    ("fadd rb1, r0, r1 ; fmul rb2, r0, r1", "(add writes rb1, mul writes rb2)"),
    ("fadd ra1.8a, r0, r1 ; fmul ra2, r0, r1", "a regfile-A pack also needs file A"),
    ("ldi ra1, ra2, 1", "(add writes ra1, mul writes ra2)"),
    ("ldi ra1.16a, r0.8ac, 1", "both destinations have a pack mode"),
    ("ldi r0.8ac, 1", "the colour pack (pm=1) converts the mul ALU's result"),
    ("sacq rb1, rb2, 3", "(add writes rb1, mul writes rb2)"),
    # --- branches (Table 10; vc4asm addendum: raddr_a bit 0 sets the flags) ---
    ("bra ra3", "branching through ra3 also sets the flags"),
    ("bra.setf ra2", "a branch sets the flags only through bit 0 of raddr_a: with ra2 it cannot"),
    ("brr ra1.16a, 0", "a branch's link destinations cannot be packed"),
    ("brr nowhere", "undefined label 'nowhere'"),
    ("bra there\nthere: nop", "an absolute branch (bra) to label 'there' needs the program's bus address"),
    ("bra 0x100000000", "branch immediate 4294967296 does not fit in 32 bits"),
    ("brr -0x80000001", "does not fit in 32 bits"),
    # --- semaphores (Figure 6: 4-bit semaphore field) ---
    ("sacq 16", "there are 16 semaphores (0..15), not 16"),
    ("srel -1", "there are 16 semaphores (0..15), not -1"),
    # --- field overrides ---
    ("add r0, r1, 1 {raddr_b=3}", "field 'raddr_b' does not exist in a alu_small_imm instruction"),
    ("nop {ws=2}", "ws=2 does not fit its 1-bit field"),
    ("ldi r0, 1 {immediate=0x100000000}", "immediate=4294967296 does not fit its 32-bit field"),
    ("nop {sig=15}", "field values do not describe a alu word"),
]


@pytest.mark.parametrize("text,fragment", CASES, ids=[c[0] for c in CASES])
def test_encoding_error_via_text(text, fragment):
    source = "nop\n" + text
    with pytest.raises(AssemblyError) as info:
        assemble_text(source, name="k.qasm")
    exc = info.value
    assert not isinstance(exc, TextSyntaxError), f"expected an encoding error, got a syntax error: {exc}"
    assert exc.location == SourceLocation("k.qasm", 2)
    assert exc.instruction == text.split("\n")[0]
    assert str(exc).startswith(f"k.qasm:2: {exc.instruction}: ")
    assert fragment in str(exc), str(exc)


def test_encoding_error_is_not_raised_raw():
    # Directly, the encoder raises EncodingError; the text assembler converts it.
    with pytest.raises(EncodingError):
        encode(parse_instruction("fadd r0, ra1, ra2"))


def test_relative_branch_to_label_needs_position():
    with pytest.raises(EncodingError, match="needs its own position"):
        encode(parse_instruction("brr top"), labels={"top": 0})
    assert encode(parse_instruction("brr top"), index=4, labels={"top": 0}) & 0xFFFFFFFF == (8 * (0 - 8)) & 0xFFFFFFFF


@pytest.mark.parametrize("text,fragment", [
    ("fadd r0, r1, 17", "17 is not a small immediate"),       # encoder: "load it with ldi"
    ("fadd r0, r1, 0.3", "0.3 is not a small immediate"),
    ("brr ra1, rb1 + 0", "only add a physical regfile-A register ra0..ra31"),
    ("bra ra32", "ra0..ra31"),                                 # encoder: "a branch adds a physical ..."
    ("ldi r0, -0x80000001", "does not fit in 32 bits"),        # encoder: "immediate ... does not fit"
    ("fadd r6, r1, r2", "unknown register 'r6'"),              # encoder: "there is no accumulator"
    ("fadd r0.8bc, r1, r2", None),                             # valid text: a colour pack on the add half
])
def test_encoder_checks_the_parser_makes_first(text, fragment):
    if fragment is None:
        with pytest.raises(AssemblyError, match="colour pack"):
            assemble_text(text)
        return
    with pytest.raises(TextSyntaxError) as info:
        assemble_text(text)
    assert fragment in str(info.value)
