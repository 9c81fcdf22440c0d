"""Text assembler features: files, labels, comments, aliases, models, and syntax errors.

Expected words are spelled out with the guide's field positions (Figure 3 / Table 1)
where a bit pattern matters; elsewhere two spellings are checked to give the same
word, or the parsed model is compared with one built by hand.
"""

from __future__ import annotations

import pytest

from qpu.errors import AssemblyError, SourceLocation, TextSyntaxError
from qpu.instruction import (
    BOTH_FILES,
    Accumulator,
    AluHalf,
    AluInstruction,
    BranchInstruction,
    Dest,
    Immediate,
    Label,
    LoadImmInstruction,
    RawWord,
    RegisterRead,
    SemaphoreInstruction,
)
from qpu.isa.formats import LoadImmMode
from qpu.isa.ops import ADD_OPS, MUL_OPS
from qpu.isa.signals import BranchCond, Cond, Signal
from qpu.isa.small_imm import ImmKind
from qpu.text_assembler import assemble_text, parse_instruction

NOP_WORD = 0x100009E7_009E7000  # guide Table 4 sig=1, Table 14 addresses 39, conds never


def words(text: str, **kw) -> list:
    return assemble_text(text, **kw).words


def branch_word(imm: int, cond_br: int = 15, rel: int = 1) -> int:
    # Figure 7 / Table 10: sig 15, cond_br 55:52, rel 51, waddr_add/mul 39 (no link).
    return 15 << 60 | cond_br << 52 | rel << 51 | 39 << 38 | 39 << 32 | (imm & 0xFFFFFFFF)


# --------------------------------------------------------------------------------------------
# Files: lines, comments, labels, locations
# --------------------------------------------------------------------------------------------

def test_blank_lines_comments_and_locations():
    text = """
# a comment-only line
    nop            # trailing comment

start:   fadd r0, r1, r2   # label on the same line
  .word 0x0123456789abcdef
"""
    program = assemble_text(text, name="k.qasm")
    assert len(program) == 3
    assert program.words[0] == NOP_WORD
    assert program.words[2] == 0x0123456789ABCDEF
    assert program.labels == {"start": 1}
    assert program.source == [SourceLocation("k.qasm", 3), SourceLocation("k.qasm", 5), SourceLocation("k.qasm", 6)]
    assert program.name == "k.qasm"


def test_label_on_its_own_line_names_the_next_instruction():
    program = assemble_text("nop\nfirst:\n\n# comment\nsecond: third:\n  nop\nend:")
    assert program.labels == {"first": 1, "second": 1, "third": 1, "end": 2}


def test_forward_and_backward_branches():
    text = """
loop:   nop
        brr.anynz loop      # index 1: 8*(0-(1+4)) = -40
        nop
        nop
        nop
        brr done            # index 5: 8*(7-(5+4)) = -16
        nop
done:   nop
"""
    w = words(text)
    assert w[1] == branch_word(-40, cond_br=3)   # Table 11: anynz = 3
    assert w[5] == branch_word(-16)


def test_absolute_branch_to_label_uses_base_address():
    w = words("nop\nbra.allz target\nnop\ntarget: nop", base_address=0x8000_0000)
    assert w[1] == branch_word(0x8000_0000 + 8 * 3, cond_br=0, rel=0)


def test_labels_are_case_sensitive_and_mnemonics_are_not():
    w = words("Loop: nop\nloop: nop\nBRR Loop\nbrr loop")
    assert w[2] == branch_word(8 * (0 - 6))
    assert w[3] == branch_word(8 * (1 - 7))
    assert words("FADD.ZS.SETF RA1, R0, UNIF ; FMUL RB2, R4.8A, R3 ; LDTMU0") == \
        words("fadd.zs.setf ra1, r0, unif ; fmul rb2, r4.8a, r3 ; ldtmu0")


def test_whitespace_is_tolerated():
    assert words("  fadd   ra1 ,r0,r1;fmul rb2 , r2 ,  r3   ;  thrend  ") == \
        words("fadd ra1, r0, r1 ; fmul rb2, r2, r3 ; thrend")
    assert words("bra ra3+0x10 {dont_care = 3}".replace("bra", "bra.setf")) == \
        words("bra.setf ra3 + 16 {dont_care=3}")
    assert words("ldi r0, signed[ -2,-1, 0,1,  -2,-1,0,1,-2,-1,0,1,-2,-1,0,1 ]") == \
        words("ldi r0, signed[-2, -1, 0, 1, -2, -1, 0, 1, -2, -1, 0, 1, -2, -1, 0, 1]")


def test_dot_word():
    assert words(".word 0xffffffffffffffff\n.WORD 12") == [(1 << 64) - 1, 12]


# --------------------------------------------------------------------------------------------
# Spellings and aliases
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alias,name", [("iadd", "add"), ("isub", "sub"), ("imin", "min"), ("imax", "max"),
                                        ("band", "and"), ("bor", "or"), ("bxor", "xor")])
def test_py_videocore_add_op_names(alias, name):
    assert words(f"{alias} r0, r1, r2") == words(f"{name} r0, r1, r2")


def test_py_videocore_unary_and_mul_names():
    assert words("bnot r0, r1") == words("not r0, r1")
    assert words("nop ; imul24 r0, r1, r2") == words("nop ; mul24 r0, r1, r2")
    assert words("imul24 r0, r1, r2") == words("nop ; mul24 r0, r1, r2")


@pytest.mark.parametrize("alias,name", [
    ("uniform", "unif"), ("varying", "vary"), ("element_number", "elem_num"), ("qpu_number", "qpu_num"),
    ("vpm_ld_wait", "vr_wait"), ("vpm_st_wait", "vw_wait"), ("mutex_acquire", "mutex")])
def test_register_read_aliases(alias, name):
    assert words(f"mov r0, {alias}") == words(f"mov r0, {name}")


@pytest.mark.parametrize("alias,name", [
    ("host_interrupt", "host_int"), ("vpmvcd_wr_setup", "vw_setup"), ("vpm_st_addr", "vw_addr"),
    ("sfu_exp2", "sfu_exp"), ("sfu_log2", "sfu_log"), ("tmu0s", "tmu0_s"), ("broadcast", "r5rep"),
    ("uniforms_address", "unif_addr"), ("nop", "-"), ("null", "-")])
def test_register_write_aliases(alias, name):
    assert words(f"mov {alias}, r0") == words(f"mov {name}, r0")


def test_raw_register_names_force_a_file():
    # Table 14: 32 is the uniform in both read files; ra32/rb32 pick the file.
    a = words("mov r0, ra32")[0]
    b = words("mov r0, rb32")[0]
    assert (a >> 18) & 63 == 32 and (a >> 9) & 7 == 6     # raddr_a, add_a = mux A
    assert (b >> 12) & 63 == 32 and (b >> 9) & 7 == 7     # raddr_b, add_b = mux B
    assert words("mov r0, unif") == [a]
    # An address the guide leaves unmapped can still be named raw.
    w = words("mov rb43, ra43")[0]
    assert (w >> 38) & 63 == 43 and (w >> 44) & 1 == 1 and (w >> 18) & 63 == 43


def test_op_in_both_alus_goes_by_position():
    add_v8adds = words("v8adds r0, r1, r2")[0]
    mul_v8adds = words("nop ; v8adds r0, r1, r2")[0]
    assert (add_v8adds >> 24) & 31 == 30 and (add_v8adds >> 29) & 7 == 0   # Table 12: v8adds = 30
    assert (mul_v8adds >> 29) & 7 == 6 and (mul_v8adds >> 24) & 31 == 0    # Table 13: v8adds = 6


def test_setf_alias_and_placement():
    assert words("nop ; fmul.sf r0, r1, r2") == words("nop ; fmul.setf r0, r1, r2")
    # With a nop add half, .setf may be written on either half: the mul ALU sets the flags.
    assert words("nop.setf ; fmul r0, r1, r2") == words("nop ; fmul.setf r0, r1, r2")
    assert words("fmul.setf r0, r1, r2") == words("nop ; fmul.setf r0, r1, r2")


def test_ldi_value_spellings():
    assert words("ldi r0, -1") == words("ldi r0, 0xffffffff") == words("ldi r0, 4294967295")
    assert words("ldi r0, 1.0") == words("ldi r0, 0x3f800000")   # IEEE 754 single 1.0
    assert words("ldi r0, -2.5e0") == words("ldi r0, 0xc0200000")
    assert words("ldi.ifz.sf r0, 1") == words("ldi.zs.setf r0, 1")


def test_semaphore_and_branch_spellings():
    assert words("sacq -, 3") == words("sacq 3")
    assert words("sacq -, -, 3") == words("sacq 3")
    assert words("brr -, 0") == words("brr 0")
    assert words("bra.setf ra3 - 8") == words("bra.setf ra3 + -8")
    assert words("brr.always 8") == words("brr 8")


def test_override_values_decimal_and_hex():
    assert words("nop {add_a=3, WS=0x1}") == words("nop {ws=1, add_a=3}")


# --------------------------------------------------------------------------------------------
# Models built by parse_instruction
# --------------------------------------------------------------------------------------------

def test_parse_alu_model():
    ins = parse_instruction("fadd.zs ra1.16a, r4.8b, unif ; mov r1, -3 >> 2 ; ldtmu1 ; read vw_wait  # x")
    fadd, mov = ADD_OPS[1], MUL_OPS[4]
    assert ins == AluInstruction(
        add=AluHalf(fadd, Dest(1, ("a",), 1, False), Accumulator(4, 5), RegisterRead(32, BOTH_FILES), Cond.ZS),
        mul=AluHalf(mov, Dest(33, BOTH_FILES), Immediate(0xFFFFFFFD, ImmKind.INT), Immediate(0xFFFFFFFD)),
        signal=Signal.LOAD_TMU1, setf=False, rotation=2, reads=(RegisterRead(50, ("b",)),))


def test_parse_float_immediate_and_unary_model():
    ins = parse_instruction("ftoi r0, 0.5")
    assert ins == AluInstruction(add=AluHalf(ADD_OPS[7], Dest(32, BOTH_FILES), Immediate(0x3F000000, ImmKind.FLOAT)))


def test_parse_other_models():
    assert parse_instruction("ldi.setf rb1, ra2, unsigned[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]") == \
        LoadImmInstruction(0x00010001, LoadImmMode.PER_ELEMENT_UNSIGNED, Dest(1, ("b",)), Dest(2, ("a",)), None,
                           True)
    assert parse_instruction("srel.nc r0, 7") == SemaphoreInstruction(False, 7, Dest(32, BOTH_FILES), cond=Cond.NC)
    assert parse_instruction("brr.anyc ra31, away") == BranchInstruction(
        Label("away"), BranchCond.ANY_CS, True, None, Dest(31, ("a",)))
    assert parse_instruction("bra ra4 + 0x40 {dont_care=2}") == BranchInstruction(
        64, relative=False, reg=4, overrides=(("dont_care", 2),))
    assert parse_instruction(".word 5") == RawWord(5)


# --------------------------------------------------------------------------------------------
# Syntax errors: precise message, location and the offending text
# --------------------------------------------------------------------------------------------

def syntax_error(text: str, *fragments: str, line: int = 2) -> TextSyntaxError:
    source = "nop\n" + text + "\nnop"
    with pytest.raises(TextSyntaxError) as info:
        assemble_text(source, name="kernel.qasm")
    exc = info.value
    message = str(exc)
    assert exc.location == SourceLocation("kernel.qasm", line)
    assert f"kernel.qasm:{line}" in message
    for fragment in fragments:
        assert fragment in message, message
    return exc


def test_unknown_register():
    exc = syntax_error("fadd r0, ra32x, r1", "unknown register 'ra32x'")
    assert exc.instruction == "fadd r0, ra32x, r1"
    syntax_error("fadd r0, ra64, r1", "unknown register 'ra64'", "0..ra63")
    syntax_error("mov r0, unfi", "unknown register 'unfi'", "did you mean 'unif'")


def test_wrong_direction_registers():
    syntax_error("mov elem_num, r0", "'elem_num' can only be read")
    syntax_error("mov r0, tmu0_s", "'tmu0_s' can only be written")
    syntax_error("mov r4, r0", "'r4' cannot be a destination")
    syntax_error("mov r5, r0", "r5quad", "r5rep")


def test_alu_placement_errors():
    syntax_error("fmul r0, r1, r2 ; fadd r3, r0, r1",
                 "fmul is a mul-ALU op: write it as the second half (nop ; fmul r0, r1, r2)")
    syntax_error("nop ; fadd r0, r1, r2", "fadd is an add-ALU op", "first half")
    syntax_error("mov r0, r1 >> 2", "rotation", "mul ALU's output only")
    syntax_error("fadd r0, r1, r2 ; fmul.setf r3, r1, r2", ".setf", "put .setf on 'fadd'")
    syntax_error("nop ; ldtmu0 ; fmul r0, r1, r2", "right after the add-ALU half")
    syntax_error("nop ; ldtmu0 ; thrend", "at most one signal")
    syntax_error("ldtmu0", "signal goes after the ALU halves")
    syntax_error("read unif", "'read' clause goes after the ALU halves")


def test_operand_errors():
    syntax_error("fadd r0, r1", "fadd takes 3 operands", "not 2")
    syntax_error("not r0, r1, r2", "not takes 2 operands")
    syntax_error("mov r0", "mov takes 2 operands")
    syntax_error("nop r0, r1", "nop takes at most a destination")
    syntax_error("fadd r0, r1, 16", "16 is not a small immediate", "ldi")
    syntax_error("fadd r0, r1, 3.0", "3.0 is not a small immediate", "ldi")
    syntax_error("fadd r0, r1, -1.0", "-1.0 is not a small immediate")
    syntax_error("fadd r0, r1,, r2", "empty operand")
    syntax_error("fadd r0.16x, r1, r2", "unknown pack mode '.16x'")
    syntax_error("fadd r0, ra1.16, r2", "unknown unpack mode '.16'")
    syntax_error("nop ; mov r0, r1 >> 16", "rotation amount '16' must be 1..15 or r5")
    syntax_error("nop ; mov r0, r1 << r5", "'>> r5'")


def test_unknown_names():
    syntax_error("fadd2 r0, r1, r2", "unknown instruction 'fadd2'")
    syntax_error("fmull r0, r1, r2", "unknown instruction 'fmull'", "did you mean 'fmul'")
    syntax_error("fadd.zz r0, r1, r2", "unknown modifier '.zz'")
    syntax_error("fadd.zs.zc r0, r1, r2", "two conditions")
    syntax_error("fadd.allz r0, r1, r2", ".allz is a branch condition")
    syntax_error("nop ; ldtmu3", "'ldtmu3' is not an ALU half, a signal or 'read SRC'")


def test_ldi_semaphore_branch_errors():
    syntax_error("ldi r0", "ldi needs a destination and a value")
    syntax_error("ldi r0, 0x100000000", "does not fit in 32 bits")
    syntax_error("ldi r0, 1e40", "too large")
    syntax_error("ldi r0, [0, 1, 2]", "exactly 16 values", "not 3")
    syntax_error("ldi r0, signed[" + ", ".join(["2"] * 16) + "]", "per-element value 2 out of range", "-2..1")
    syntax_error("ldi r0, [" + ", ".join(["-1"] * 15 + ["3"]) + "]", "per-element value 3 out of range")
    syntax_error("ldi r0, foo", "ldi value 'foo'")
    syntax_error("ldi r0, r1, r2, 5", "at most two destinations")
    syntax_error("ldi r0, 1 ; thrend", "ldi is a whole instruction")
    syntax_error("sacq", "sacq needs a semaphore number")
    syntax_error("srel x", "semaphore number 'x'")
    syntax_error("brr.zs 0", "'.zs' is an ALU write condition", "allz")
    syntax_error("brr.allq 0", "unknown branch condition '.allq'")
    syntax_error("bra rb3", "only add a physical regfile-A register")
    syntax_error("bra ra40", "ra0..ra31")
    syntax_error("brr somewhere + 8", "only 'raN + number'")
    syntax_error("brr", "brr needs a target")


def test_override_errors():
    syntax_error("nop {foo=1}", "an ALU instruction has no field 'foo'")
    syntax_error("ldi r0, 1 {add_a=1}", "a load-immediate instruction has no field 'add_a'")
    syntax_error("nop {ws}", "must look like name=value")
    syntax_error("nop {ws=-1}", "non-negative integer")
    syntax_error("nop {ws=1, ws=0}", "overridden twice")
    syntax_error(".word 1 {ws=1}", ".word takes no field overrides")
    syntax_error("nop {ws=1} ; thrend", "go at the end of the instruction")


def test_label_errors():
    syntax_error("ra1: nop", "label 'ra1' is a register name")
    with pytest.raises(TextSyntaxError) as info:
        assemble_text("a: nop\nnop\na: nop", name="f.qasm")
    assert "f.qasm:3" in str(info.value) and "label 'a' defined twice (first on line 1)" in str(info.value)


def test_undefined_label_is_an_assembly_error_with_a_suggestion():
    with pytest.raises(AssemblyError) as info:
        assemble_text("loop: nop\nbrr lopo", name="f.qasm")
    message = str(info.value)
    assert "f.qasm:2" in message and "brr lopo" in message
    assert "undefined label 'lopo'" in message and "did you mean 'loop'" in message


def test_encoding_errors_carry_location_and_text():
    with pytest.raises(AssemblyError) as info:
        assemble_text("nop\n\n  fadd r0, ra1, ra2   # two A reads", name="x.qasm")
    exc = info.value
    assert not isinstance(exc, TextSyntaxError)
    assert exc.location == SourceLocation("x.qasm", 3)
    assert exc.instruction == "fadd r0, ra1, ra2"
    assert str(exc).startswith("x.qasm:3: fadd r0, ra1, ra2: two different regfile-A reads (ra1 and ra2)")


def test_parse_instruction_errors_have_no_location():
    with pytest.raises(TextSyntaxError) as info:
        parse_instruction("fadd r0, r1, bogus")
    assert info.value.location is None
    assert str(info.value) == "fadd r0, r1, bogus: unknown register 'bogus'"
    with pytest.raises(TextSyntaxError, match="without label"):
        parse_instruction("loop: nop")
    with pytest.raises(TextSyntaxError, match="one source per 'read'"):
        parse_instruction("nop ; read unif, ra1")
