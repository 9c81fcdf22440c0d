"""Text round trip: ``assemble_text(disassemble(words)) == words`` bit for bit.

Words come from hypothesis: arbitrary 64-bit integers, and words built field by field
(field positions of the guide's Figure 3 / Tables 1 and 10, written out here with
explicit shifts) so that every format, every signal, every load-immediate mode
(including the reserved 2, 5, 6, 7), every pack/unpack/pm combination, every
small-immediate code (including the rotations 48-63, with and without a mux reading
the value) and every branch condition (including the reserved 12-14) is hit.

A second property: decoding falls back to ``RawWord`` (printed as ``.word``) exactly
for the encodings the guide calls reserved, computed here independently of the code.
"""

from __future__ import annotations

from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qpu.disassembler import disassemble, format_instruction
from qpu.encoding import decode, encode
from qpu.instruction import BranchInstruction, RawWord
from qpu.program import Program
from qpu.text_assembler import assemble_text, parse_instruction

WORD = st.integers(min_value=0, max_value=(1 << 64) - 1)

# Table 12 (p.35-36): add opcodes 9-11 and 25-29 are reserved.
RESERVED_ADD = {9, 10, 11, 25, 26, 27, 28, 29}
# Table 9 (p.32): mul pack codes 1-2 and 8-15 are reserved (pm = 1).
RESERVED_MUL_PACK = {1, 2} | set(range(8, 16))
# Figure 5/6 (p.33): load-immediate modes 0, 1, 3 and the semaphore 4; the rest undescribed.
RESERVED_LDI_MODES = {2, 5, 6, 7}
# Table 11 (p.34-35): branch conditions 12-14 are reserved.
RESERVED_BRANCH_CONDS = {12, 13, 14}


def is_reserved(word: int) -> bool:
    """Whether the guide leaves this word's encoding undefined (reserved)."""
    sig = word >> 60
    if sig == 15:
        return (word >> 52) & 0xF in RESERVED_BRANCH_CONDS
    if sig == 14:
        return (word >> 57) & 0x7 in RESERVED_LDI_MODES
    if (word >> 24) & 0x1F in RESERVED_ADD:
        return True
    pm, pack = (word >> 56) & 1, (word >> 52) & 0xF
    return pm == 1 and pack in RESERVED_MUL_PACK


def upper(sig, unpack, pm, pack, cond_add, cond_mul, sf, ws, waddr_add, waddr_mul) -> int:
    """Bits 63:32 shared by ALU, load-immediate and semaphore words (Table 1)."""
    return (sig << 60 | unpack << 57 | pm << 56 | pack << 52 | cond_add << 49 | cond_mul << 46 | sf << 45
            | ws << 44 | waddr_add << 38 | waddr_mul << 32)


def alu_lower(op_mul, op_add, raddr_a, raddr_b, add_a, add_b, mul_a, mul_b) -> int:
    """Bits 31:0 of an ALU word (Table 1); raddr_b is the small immediate when sig = 13."""
    return (op_mul << 29 | op_add << 24 | raddr_a << 18 | raddr_b << 12 | add_a << 9 | add_b << 6
            | mul_a << 3 | mul_b)


# Interesting addresses: physical, regfile I/O of Table 14 (uniform, varying, element/qpu
# number, nop, vpm, dma busy/wait, mutex) and everything else.
ADDR = st.one_of(st.sampled_from([0, 1, 14, 31, 32, 35, 37, 38, 39, 40, 41, 42, 48, 49, 50, 51, 52, 56, 63]),
                 st.integers(0, 63))
MUX = st.integers(0, 7)
COND = st.integers(0, 7)
BIT = st.integers(0, 1)


@st.composite
def upper_fields(draw, sig=None) -> int:
    return upper(draw(st.integers(0, 15)) if sig is None else sig, draw(st.integers(0, 7)), draw(BIT),
                 draw(st.integers(0, 15)), draw(COND), draw(COND), draw(BIT), draw(BIT), draw(ADDR), draw(ADDR))


@st.composite
def alu_words(draw) -> int:
    """ALU words (with or without small immediate) with every sig 0..13."""
    sig = draw(st.integers(0, 13))
    op_add = draw(st.one_of(st.sampled_from([0, 1, 7, 8, 12, 21, 23, 24, 30]), st.integers(0, 31)))
    op_mul = draw(st.integers(0, 7))
    # Bias the muxes toward the register file / immediate ports so raddr and small_imm matter.
    mux = st.one_of(st.sampled_from([6, 7, 4, 0]), MUX)
    raddr_b = draw(st.integers(0, 63)) if sig == 13 else draw(ADDR)
    return draw(upper_fields(sig)) | alu_lower(op_mul, op_add, draw(ADDR), raddr_b, draw(mux), draw(mux),
                                               draw(mux), draw(mux))


@st.composite
def small_imm_words(draw) -> int:
    """sig = 13 with every small_imm code 0..63; the B mux used or not by each port."""
    code = draw(st.integers(0, 63))
    use_b = draw(st.lists(st.booleans(), min_size=4, max_size=4))
    muxes = [7 if u else draw(st.integers(0, 6)) for u in use_b]
    op_add = draw(st.sampled_from([0, 1, 7, 12, 21, 24]))
    op_mul = draw(st.integers(0, 7))
    return draw(upper_fields(13)) | alu_lower(op_mul, op_add, draw(ADDR), code, *muxes)


@st.composite
def pack_unpack_words(draw) -> int:
    """Every pack (0..15) x unpack (0..7) x pm combination, with r4 / regfile-A sources."""
    mux = st.sampled_from([4, 6, 4, 6, 0, 7])
    hi = upper(draw(st.sampled_from([1, 10, 13])), draw(st.integers(0, 7)), draw(BIT), draw(st.integers(0, 15)),
               draw(COND), draw(COND), draw(BIT), draw(BIT), draw(ADDR), draw(ADDR))
    op_add = draw(st.sampled_from([0, 1, 7, 8, 12, 21]))
    return hi | alu_lower(draw(st.integers(0, 7)), op_add, draw(ADDR), draw(st.integers(0, 63)), draw(mux),
                          draw(mux), draw(mux), draw(mux))


@st.composite
def load_imm_words(draw) -> int:
    """sig = 14 with every mode 0..7 (0, 1, 3 load immediate; 4 semaphore; 2, 5, 6, 7 reserved)."""
    hi = upper(14, draw(st.integers(0, 7)), draw(BIT), draw(st.integers(0, 15)), draw(COND), draw(COND),
               draw(BIT), draw(BIT), draw(ADDR), draw(ADDR))
    return hi | draw(st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 1, 0x10, 0xF, 0x1F, 0xFFFFFFFF])))


@st.composite
def branch_words(draw, imm=None) -> int:
    """sig = 15 with every cond_br 0..15 (Table 11; 12-14 reserved) and Table 10's fields."""
    value = draw(st.integers(0, 0xFFFFFFFF)) if imm is None else imm & 0xFFFFFFFF
    return (15 << 60 | draw(st.integers(0, 15)) << 56 | draw(st.integers(0, 15)) << 52 | draw(BIT) << 51
            | draw(BIT) << 50 | draw(st.integers(0, 31)) << 45 | draw(BIT) << 44 | draw(ADDR) << 38
            | draw(ADDR) << 32 | value)


@st.composite
def any_sig_words(draw) -> int:
    """Structured upper half with every sig 0..15 over a random lower half."""
    return draw(upper_fields()) | draw(st.integers(0, 0xFFFFFFFF))


STRUCTURED = st.one_of(alu_words(), small_imm_words(), pack_unpack_words(), load_imm_words(), branch_words(),
                       any_sig_words())


def roundtrip(words: List[int]) -> None:
    text = "\n".join(disassemble(words))
    assert assemble_text(text).words == words, text


def check_single(word: int) -> None:
    roundtrip([word])
    ins = decode(word)
    # No fallback for valid words; reserved encodings (and only those) print as .word.
    assert isinstance(ins, RawWord) == is_reserved(word), (hex(word), ins)
    line = format_instruction(ins)
    assert line.startswith(".word") == is_reserved(word), line
    # The printed text parses back to the very model the decoder built.
    parsed = parse_instruction(line)
    assert parsed == ins, line
    assert encode(parsed) == word


@given(WORD)
def test_any_word_round_trips(word):
    check_single(word)


@given(STRUCTURED)
def test_structured_word_round_trips(word):
    check_single(word)


@pytest.mark.parametrize("sig", range(16))
def test_every_sig_value(sig):
    # Fixed lower and upper patterns (all zero, all one, nop-like) under every sig value.
    for lo in (0, 0xFFFFFFFF, 0x009E7000):
        for hi in (0, 0x0FFFFFFF, 0x000009E7):
            check_single((sig << 60) | (hi << 32) | lo)


@st.composite
def programs(draw) -> List[int]:
    """Several words; relative branches aim inside, outside, and at odd offsets of the program."""
    n = draw(st.integers(1, 10))
    words = []
    for i in range(n):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            words.append(draw(WORD))
        elif kind == 1:
            words.append(draw(STRUCTURED))
        else:
            target = draw(st.integers(-3, n + 2))     # instruction index, maybe outside
            offset = draw(st.sampled_from([0, 0, 0, 4, 1, 7, -4]))
            words.append(draw(branch_words(imm=8 * (target - (i + 4)) + offset)))
    return words


@given(programs())
def test_program_round_trips(words):
    roundtrip(words)


LABEL_NAMES = st.sampled_from(["entry", "loop", "L0", "L3", "L5", "L7", "L9", "L9_", "ra1", "my label", "2x"])


@given(programs(), st.dictionaries(LABEL_NAMES, st.integers(-1, 12), max_size=5))
def test_program_with_own_labels_round_trips(words, names):
    # Disassembling a Program prints its own label names; generated names (L<index>) must
    # not collide with them, and names the syntax cannot hold (register names, spaces)
    # are left out.  The words come back the same, and so do the printable labels.
    program = Program(list(words), labels=dict(names))
    lines = disassemble(program)
    again = assemble_text("\n".join(lines))
    assert again.words == words
    printed = {}
    for name, index in names.items():
        if 0 <= index < len(words) and name not in ("ra1", "my label", "2x"):
            printed.setdefault(index, []).append(name)
    for index, candidates in printed.items():
        # One name per instruction is printed: the last one given for that index.
        assert again.labels[candidates[-1]] == index


def test_generated_label_does_not_repeat_a_program_label():
    # A program label "L9" on instruction 5 and a branch from 4 to 9 (imm 8*(9-(4+4)) = 8).
    nop = 0x100009e7_009e7000
    words = [nop] * 10
    words[4] = 15 << 60 | 2 << 52 | 1 << 51 | 39 << 38 | 39 << 32 | 8     # brr.anyz (Table 11: 2)
    lines = disassemble(Program(words, labels={"L9": 5}))
    assert lines[4] == "brr.anyz L9_" and lines[5] == "L9: nop" and lines[9] == "L9_: nop"
    assert assemble_text("\n".join(lines)).words == words


def test_relative_branch_labels_are_used():
    # A relative branch to an instruction of the program prints a label, not a number.
    words = [0x100009e7_009e7000] * 6
    words[1] = 15 << 60 | 15 << 52 | 1 << 51 | 39 << 38 | 39 << 32 | (8 * (5 - (1 + 4)))
    lines = disassemble(words)
    assert lines[1] == "brr L5" and lines[5].startswith("L5: ")
    assert assemble_text("\n".join(lines)).words == words
    decoded = decode(words[1])
    assert isinstance(decoded, BranchInstruction) and decoded.target == 0


# --------------------------------------------------------------------------------------------
# Exhaustive sweeps of the small fields (deterministic, about a thousand words each)
# --------------------------------------------------------------------------------------------

def test_every_pack_unpack_pm_combination():
    # Sources: r4 (mux 4) and regfile A (mux 6) so both unpackers have something to convert;
    # destinations: add writes ra5 / mul writes rb6, or the reverse with ws = 1, or nothing.
    for pm in (0, 1):
        for pack in range(16):
            for unpack in range(8):
                for ws, wa, wm in ((0, 5, 6), (1, 5, 6), (0, 39, 39), (0, 39, 33)):
                    for muxes in ((4, 6, 6, 4), (6, 0, 1, 2), (4, 4, 0, 0)):
                        hi = upper(1, unpack, pm, pack, 1, 1, 0, ws, wa, wm)
                        check_single(hi | alu_lower(1, 1, 7, 39, *muxes))


def test_every_sig_and_load_immediate_mode():
    for sig in range(16):
        for mode in range(8):
            for lo in (0x00000000, 0x0000001F, 0xFFFFFFFF, 0x12345678):
                check_single(upper(sig, mode, 0, 0, 1, 0, 0, 0, 32, 39) | lo)


def test_every_branch_condition_and_flag_bits():
    for cond_br in range(16):
        for rel in (0, 1):
            for reg in (0, 1):
                for raddr_a in (0, 1, 6, 31):
                    word = (15 << 60 | cond_br << 52 | rel << 51 | reg << 50 | raddr_a << 45 | 4 << 38 | 39 << 32
                            | 0xB0)
                    check_single(word)


def test_every_small_immediate_code_with_each_port():
    for code in range(64):
        for port in range(5):   # port 4: no mux reads the immediate
            muxes = [7 if i == port else 1 for i in range(4)]
            check_single(upper(13, 0, 0, 0, 1, 1, 0, 0, 32, 33) | alu_lower(1, 1, 39, code, *muxes))
