"""Text assembler: QPU assembly text (docs/syntax.md) to instruction models and words.

The syntax is the one ``qpu.disassembler`` prints, so ``assemble_text`` reads back
everything the disassembler writes, bit for bit.  This module only parses: it
builds ``qpu.instruction`` objects and hands them to ``qpu.encoding.encode``, which
owns every field-level decision (mux allocation, write swap, default conditions,
small-immediate codes).  All names (opcodes, registers, conditions, signals,
pack/unpack modes, field names) come from the tables in ``qpu.isa``.

Two public entry points:

* ``parse_instruction(text)``: one instruction (no label) to its model.
* ``assemble_text(text, name, base_address)``: a whole file to a ``Program``, with
  labels and one ``SourceLocation(name, line)`` per instruction.

Syntax errors raise ``TextSyntaxError``; combinations that do not fit one word
(found by the encoder) raise ``AssemblyError``.  Both carry the file name, the line
number and the instruction text.
"""

from __future__ import annotations

import difflib
import math
import re
import struct
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .encoding import encode
from .errors import AssemblyError, EncodingError, SourceLocation, TextSyntaxError
from .instruction import (
    BOTH_FILES,
    FILE_A,
    FILE_B,
    NO_DEST,
    Accumulator,
    AluHalf,
    AluInstruction,
    BranchInstruction,
    Dest,
    Immediate,
    Instruction,
    Label,
    LoadImmInstruction,
    Overrides,
    RawWord,
    RegisterRead,
    SemaphoreInstruction,
    Source,
)
from .isa.formats import FIELDS, Format, LoadImmMode
from .isa.ops import (
    ADD_ALIASES,
    ADD_OPS,
    ADD_OPS_BY_NAME,
    MOV_ADD,
    MOV_MUL,
    MUL_ALIASES,
    MUL_OPS,
    MUL_OPS_BY_NAME,
    OpInfo,
    add_op,
    mul_op,
)
from .isa.packing import PACK_A_BY_TEXT, PACK_MUL_BY_TEXT, UNPACK_BY_TEXT
from .isa.registers import NAMES, Space
from .isa.signals import BRANCH_COND_BY_TEXT, COND_BY_TEXT, SIGNALS_BY_TEXT, Cond, Signal
from .isa.small_imm import CODE_BY_BITS, SMALL_IMMS, ImmKind, bits_float
from .program import Program

__all__ = ["parse_instruction", "assemble_text", "is_label_name"]


class _Bad(Exception):
    """A syntax problem found while parsing; turned into TextSyntaxError with the location."""


# --------------------------------------------------------------------------------------------
# Lexical helpers
# --------------------------------------------------------------------------------------------

_IDENT_RE = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*\Z")
_LABEL_DEF_RE = re.compile(r"\s*([A-Za-z_.][A-Za-z0-9_.]*)\s*:")
_INT_RE = re.compile(r"[+-]?(?:0x[0-9a-f]+|[0-9]+)\Z", re.IGNORECASE)
# A float needs a '.' or an exponent: "1" is the integer 1, "1.0" the float (docs/syntax.md).
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?:\.[0-9]*)?e[+-]?[0-9]+|\.[0-9]+e[+-]?[0-9]+)\Z",
                       re.IGNORECASE)
_ROTATION_RE = re.compile(r"(.*?)\s*(>>|<<)\s*([^\s,]*)\s*\Z", re.DOTALL)
_ACC_RE = re.compile(r"r([0-9]+)\Z")
_RAW_RE = re.compile(r"r([ab])([0-9]+)\Z")
_OVERRIDE_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S+)\s*\Z")

_SMALL_INT_MIN, _SMALL_INT_MAX = -16, 15
_SMALL_FLOATS = ", ".join(s.text for s in SMALL_IMMS if s.kind is ImmKind.FLOAT)
_SMALL_HELP = (f"ALU operands take the integers {_SMALL_INT_MIN}..{_SMALL_INT_MAX} and the floats {_SMALL_FLOATS} "
               "(guide Table 5); load any other value into a register with ldi first")


def _strip_comment(line: str) -> str:
    i = line.find("#")
    return line if i < 0 else line[:i]


def _split_operands(text: str) -> List[str]:
    """Split at commas outside square brackets (per-element ldi values hold commas)."""
    out: List[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip() or out:
        out.append(cur.strip())
    for op in out:
        if not op:
            raise _Bad("empty operand: check the commas")
    return out


def _parse_int(text: str) -> Optional[int]:
    t = text.strip()
    if not _INT_RE.match(t):
        return None
    return int(t, 0) if not re.match(r"[+-]?0[0-9]", t) else int(t, 10)


def _parse_float(text: str) -> Optional[float]:
    t = text.strip()
    if not _FLOAT_RE.match(t) or t.lower().lstrip("+-").startswith("0x"):
        return None
    return float(t)


def _float32_bits(value: float, text: str) -> int:
    try:
        return int(struct.unpack("<I", struct.pack("<f", value))[0])
    except OverflowError:
        raise _Bad(f"{text} is too large for a 32-bit float") from None


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.75)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _split_suffix(text: str) -> Tuple[str, str]:
    """'ra1.16a' -> ('ra1', '16a'); a name without suffix gives ''."""
    name, dot, suffix = text.partition(".")
    if dot and not suffix:
        raise _Bad(f"'{text}': missing pack/unpack mode after '.'")
    return name, suffix


# --------------------------------------------------------------------------------------------
# Registers
# --------------------------------------------------------------------------------------------

_READ_SPACES = (Space.READ_A, Space.READ_B)
_WRITE_SPACES = (Space.WRITE_A, Space.WRITE_B)
_ALL_REGISTER_NAMES = frozenset({n for space in Space for n in NAMES[space]} | {f"r{i}" for i in range(6)})


def _lookup(name: str, spaces: Tuple[Space, Space]) -> Optional[Tuple[int, Tuple[str, ...]]]:
    """Address and files of a register name in the A/B spaces of one direction.

    A name present in both files with the same address (unif, vpm, r0, tmu0_s ...) may be
    used through either file: the encoder chooses.  Raw names (ra37, rb37) name one file.
    """
    a = NAMES[spaces[0]].get(name)
    b = NAMES[spaces[1]].get(name)
    if a is not None and b is not None:
        if a != b:  # pragma: no cover - the register table has no such name
            raise _Bad(f"'{name}' means address {a} in file A and {b} in file B: write ra{a} or rb{b}")
        return a, BOTH_FILES
    if a is not None:
        return a, (FILE_A,)
    if b is not None:
        return b, (FILE_B,)
    return None


def _unknown_register(name: str, reading: bool) -> _Bad:
    raw = _RAW_RE.match(name)
    if raw and int(raw.group(2)) > 63:
        return _Bad(f"unknown register '{name}': raw addresses r{raw.group(1)}0..r{raw.group(1)}63 "
                    "(0-31 physical registers, 32-63 I/O)")
    other = _WRITE_SPACES if reading else _READ_SPACES
    if _lookup(name, other) is not None:
        if reading:
            return _Bad(f"'{name}' can only be written, not read")
        return _Bad(f"'{name}' can only be read, not written")
    space_names = sorted(set(NAMES[(_READ_SPACES if reading else _WRITE_SPACES)[0]])
                         | set(NAMES[(_READ_SPACES if reading else _WRITE_SPACES)[1]]))
    return _Bad(f"unknown register '{name}'{_suggest(name, space_names)}")


def _parse_source(text: str) -> Source:
    """An ALU operand or 'read' argument: accumulator, register (with unpack) or small immediate."""
    t = text.strip()
    if not t:
        raise _Bad("missing operand")
    as_int = _parse_int(t)
    if as_int is not None:
        if not _SMALL_INT_MIN <= as_int <= _SMALL_INT_MAX:
            raise _Bad(f"{t} is not a small immediate: {_SMALL_HELP}")
        return Immediate(as_int & 0xFFFFFFFF, ImmKind.INT)
    as_float = _parse_float(t)
    if as_float is not None:
        bits = _float32_bits(as_float, t)
        code = CODE_BY_BITS.get(bits)
        if code is None or SMALL_IMMS[code].kind is not ImmKind.FLOAT or bits_float(bits) != as_float:
            raise _Bad(f"{t} is not a small immediate: {_SMALL_HELP}")
        return Immediate(bits, ImmKind.FLOAT)
    name, suffix = _split_suffix(t.lower())
    unpack = 0
    if suffix:
        if suffix not in UNPACK_BY_TEXT:
            raise _Bad(f"unknown unpack mode '.{suffix}' on '{t}': the unpack modes are "
                       f"{', '.join(UNPACK_BY_TEXT)} (guide Tables 6 and 8)")
        unpack = UNPACK_BY_TEXT[suffix]
    acc = _ACC_RE.match(name)
    if acc and name in {f"r{i}" for i in range(6)}:
        return Accumulator(int(acc.group(1)), unpack)
    found = _lookup(name, _READ_SPACES)
    if found is None:
        raise _unknown_register(name, reading=True)
    addr, files = found
    return RegisterRead(addr, files, unpack)


def _parse_dest(text: str) -> Dest:
    """A write destination with an optional pack suffix (regfile-A pack or mul colour pack)."""
    t = text.strip()
    if not t:
        raise _Bad("missing destination")
    name, suffix = _split_suffix(t.lower())
    if name in ("r4", "r5"):
        hint = ("r4 only receives SFU, TMU and tile-buffer results" if name == "r4"
                else "write r5 as r5quad (element 0 of each quad) or r5rep (element 0 to all elements)")
        raise _Bad(f"'{name}' cannot be a destination: {hint}")
    found = _lookup(name, _WRITE_SPACES)
    if found is None:
        raise _unknown_register(name, reading=False)
    addr, files = found
    if not suffix:
        return Dest(addr, files)
    if suffix in PACK_A_BY_TEXT:
        return Dest(addr, files, PACK_A_BY_TEXT[suffix], False)
    if suffix in PACK_MUL_BY_TEXT:
        return Dest(addr, files, PACK_MUL_BY_TEXT[suffix], True)
    raise _Bad(f"unknown pack mode '.{suffix}' on '{t}': regfile-A packs are {', '.join(PACK_A_BY_TEXT)} "
               f"(guide Table 7); mul colour packs are {', '.join(PACK_MUL_BY_TEXT)} (Table 9)")


# --------------------------------------------------------------------------------------------
# Modifiers (.cond, .setf) and overrides
# --------------------------------------------------------------------------------------------

def _alu_modifiers(mods: List[str], mnemonic: str) -> Tuple[Optional[Cond], bool]:
    cond: Optional[Cond] = None
    setf = False
    for m in mods:
        m = m.lower()
        if m in ("setf", "sf"):
            if setf:
                raise _Bad(f"'{mnemonic}': .setf given twice")
            setf = True
        elif m in COND_BY_TEXT:
            if cond is not None:
                raise _Bad(f"'{mnemonic}': two conditions; an ALU writes under one condition")
            cond = COND_BY_TEXT[m]
        elif m in BRANCH_COND_BY_TEXT:
            raise _Bad(f"'{mnemonic}': .{m} is a branch condition; write conditions are "
                       f"{', '.join(COND_BY_TEXT)}")
        else:
            raise _Bad(f"'{mnemonic}': unknown modifier '.{m}'; write conditions are "
                       f"{', '.join(COND_BY_TEXT)}, and .setf sets the flags{_suggest(m, list(COND_BY_TEXT))}")
    return cond, setf


def _parse_overrides(text: str) -> Overrides:
    body = text.strip()
    assert body.startswith("{") and body.endswith("}")
    body = body[1:-1].strip()
    out: List[Tuple[str, int]] = []
    if not body:
        return ()
    for item in body.split(","):
        m = _OVERRIDE_RE.match(item)
        if not m:
            raise _Bad(f"field override '{item.strip()}' must look like name=value")
        name = m.group(1).lower()
        value = _parse_int(m.group(2))
        if value is None or value < 0:
            raise _Bad(f"field override {name}={m.group(2)}: the value must be a non-negative integer")
        if any(n == name for n, _ in out):
            raise _Bad(f"field {name} overridden twice")
        out.append((name, value))
    return tuple(out)


def _check_override_names(overrides: Overrides, formats: Sequence[Format], what: str) -> None:
    names: List[str] = []
    for fmt in formats:
        names += [f.name for f in FIELDS[fmt] if f.name not in names]
    for name, _ in overrides:
        if name not in names:
            raise _Bad(f"{what} has no field '{name}'{_suggest(name, names)}; its fields are {', '.join(names)}")


# --------------------------------------------------------------------------------------------
# ALU instructions
# --------------------------------------------------------------------------------------------

class _HalfText:
    """One ALU half as written: mnemonic, modifiers, operand texts and a rotation."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        m = re.match(r"(\S+)\s*(.*)\Z", self.text, re.DOTALL)
        assert m is not None
        token, rest = m.group(1), m.group(2)
        parts = token.split(".")
        self.name = parts[0].lower()
        self.mods = parts[1:]
        self.rotation: Optional[int] = None
        rot = _ROTATION_RE.match(rest)
        if rot:
            rest = rot.group(1)
            self.rotation = _parse_rotation(rot.group(2), rot.group(3), self.text)
        self.operands = _split_operands(rest) if rest.strip() else []


def _parse_rotation(direction: str, amount: str, text: str) -> int:
    """``>> n`` rotates up by n elements, ``<< n`` = ``>> 16-n``, ``>> r5`` by r5 (code 48)."""
    amount = amount.strip().lower()
    if amount == "r5":
        if direction != ">>":
            raise _Bad(f"'{text}': a rotation by r5 is written '>> r5'")
        return 0
    n = _parse_int(amount)
    if n is None or not 1 <= n <= 15:
        raise _Bad(f"'{text}': rotation amount '{amount}' must be 1..15 or r5 (guide Table 5, codes 48-63)")
    return n if direction == ">>" else 16 - n


def _op_names() -> List[str]:
    return sorted(set(ADD_OPS_BY_NAME) | set(MUL_OPS_BY_NAME) | set(ADD_ALIASES) | set(MUL_ALIASES)
                  | {"mov", "ldi", "sacq", "srel", "brr", "bra", ".word"})


def _build_half(h: _HalfText, op: OpInfo, mov: bool) -> AluHalf:
    cond, _ = _alu_modifiers(h.mods, h.name)
    ops = h.operands
    if op.is_nop:
        if len(ops) > 1:
            raise _Bad(f"'{h.text}': a nop takes at most a destination (the ALU's previous result is written)")
        dst = _parse_dest(ops[0]) if ops else NO_DEST
        return AluHalf(op, dst, None, None, cond)
    arity = 1 if mov else op.arity
    name = "mov" if mov else op.name
    if len(ops) != arity + 1:
        form = f"{name} dst, a" + (", b" if arity == 2 else "")
        raise _Bad(f"'{h.text}': {name} takes {arity + 1} operands ({form}), not {len(ops)}")
    dst = _parse_dest(ops[0])
    srcs = [_parse_source(o) for o in ops[1:]]
    if mov:
        return AluHalf(op, dst, srcs[0], srcs[0], cond)
    if arity == 1:
        return AluHalf(op, dst, srcs[0], None, cond)
    return AluHalf(op, dst, srcs[0], srcs[1], cond)


def _unknown_op(name: str) -> _Bad:
    return _Bad(f"unknown instruction '{name}'{_suggest(name, _op_names())}")


def _is_half(word: str) -> bool:
    name = word.split(".")[0].lower()
    return name == "mov" or add_op(name) is not None or mul_op(name) is not None


def _parse_alu(parts: List[str], overrides: Overrides) -> AluInstruction:
    first = _HalfText(parts[0])
    second: Optional[_HalfText] = None
    signal = Signal.NONE
    reads: List[Source] = []
    for i, part in enumerate(parts[1:], start=1):
        p = part.strip()
        if not p:
            raise _Bad("empty part between ';' separators")
        word = p.split()[0]
        lw = word.lower()
        if lw == "read":
            arg = p[len(word):].strip()
            if not arg:
                raise _Bad("'read' needs a register or small immediate to read")
            if len(_split_operands(arg)) > 1:
                raise _Bad(f"'{p}': one source per 'read' (write '; read X ; read Y')")
            reads.append(_parse_source(arg))
        elif lw in SIGNALS_BY_TEXT:
            if p.lower() != lw:
                raise _Bad(f"signal '{lw}' takes no operands: '{p}'")
            if signal is not Signal.NONE:
                raise _Bad("an instruction carries at most one signal (one sig field)")
            signal = SIGNALS_BY_TEXT[lw]
        elif _is_half(word):
            if i != 1:
                raise _Bad(f"'{p}': the mul-ALU half must come right after the add-ALU half")
            second = _HalfText(p)
        else:
            raise _Bad(f"'{p}' is not an ALU half, a signal or 'read SRC'"
                       f"{_suggest(lw, list(SIGNALS_BY_TEXT) + _op_names())}")

    # Which ALU does the first half go to?
    lone_mul = False
    if first.name == "mov":
        add = _build_half(first, MOV_ADD, True)
    else:
        aop = add_op(first.name)
        if aop is None:
            mop = mul_op(first.name)
            if mop is None:
                raise _unknown_op(first.name)
            if second is not None:
                raise _Bad(f"{first.name} is a mul-ALU op: write it as the second half (nop ; {first.text})")
            lone_mul = True
            add = AluHalf(ADD_OPS[0])
        else:
            add = _build_half(first, aop, False)
    mul_text = first if lone_mul else second
    mul = AluHalf(MUL_OPS[0])
    if mul_text is not None:
        if mul_text.name == "mov":
            mul = _build_half(mul_text, MOV_MUL, True)
        else:
            mop = mul_op(mul_text.name)
            if mop is None:
                if add_op(mul_text.name) is not None:
                    raise _Bad(f"{mul_text.name} is an add-ALU op: the second half is the mul ALU's "
                               f"(nop, fmul, mul24, v8muld, v8min, v8max, v8adds, v8subs, mov); "
                               f"write {mul_text.name} as the first half")
                raise _unknown_op(mul_text.name)
            mul = _build_half(mul_text, mop, False)

    if not lone_mul and first.rotation is not None:
        raise _Bad(f"'{first.text}': a rotation ('>> n') applies to the mul ALU's output only: "
                   f"write it on the second half (... ; nop ; mov dst, src >> n)")
    rotation = mul_text.rotation if mul_text is not None else None

    # .setf: flags come from the add ALU unless it is a nop (guide Table 1, "sf").
    add_setf = False if lone_mul else _alu_modifiers(first.mods, first.name)[1]
    mul_setf = _alu_modifiers(mul_text.mods, mul_text.name)[1] if mul_text is not None else False
    if mul_setf and not add.op.is_nop:
        raise _Bad(f"'.setf' on the mul half: the flags come from the add ALU when it is not a nop "
                   f"(guide Table 1, sf); put .setf on '{add.op.name}'")
    _check_override_names(overrides, (Format.ALU, Format.ALU_SMALL_IMM), "an ALU instruction")
    return AluInstruction(add, mul, signal, add_setf or mul_setf, rotation, tuple(reads), overrides)


# --------------------------------------------------------------------------------------------
# ldi, sacq/srel, brr/bra, .word
# --------------------------------------------------------------------------------------------

def _per_element(kind: str, body: str, text: str) -> Tuple[int, LoadImmMode]:
    items = [x.strip() for x in body.split(",")]
    values: List[int] = []
    for x in items:
        v = _parse_int(x)
        if v is None:
            raise _Bad(f"per-element value '{x}' in '{text}' is not an integer")
        values.append(v)
    if len(values) != 16:
        raise _Bad(f"'{text}': a per-element load gives exactly 16 values (one per element), not {len(values)}")
    if kind == "":
        kind = "signed" if any(v < 0 for v in values) else "unsigned"
    lo, hi = (-2, 1) if kind == "signed" else (0, 3)
    for v in values:
        if not lo <= v <= hi:
            raise _Bad(f"per-element value {v} out of range: {kind} 2-bit values are {lo}..{hi} "
                       "(guide Figure 5)")
    # Figure 5 (p.33): element i's LS bit is bit i, its MS bit is bit 16+i.
    word = 0
    for i, v in enumerate(values):
        p = v & 3
        word |= (p & 1) << i | (p >> 1) << (16 + i)
    mode = LoadImmMode.PER_ELEMENT_SIGNED if kind == "signed" else LoadImmMode.PER_ELEMENT_UNSIGNED
    return word, mode


def _ldi_value(text: str) -> Tuple[int, LoadImmMode]:
    t = text.strip()
    m = re.match(r"(signed|unsigned|)\s*\[(.*)\]\Z", t, re.IGNORECASE | re.DOTALL)
    if m:
        return _per_element(m.group(1).lower(), m.group(2), t)
    v = _parse_int(t)
    if v is not None:
        if not -(1 << 31) <= v < (1 << 32):
            raise _Bad(f"ldi value {t} does not fit in 32 bits")
        return v & 0xFFFFFFFF, LoadImmMode.U32
    f = _parse_float(t)
    if f is not None:
        if math.isinf(f):
            raise _Bad(f"ldi value {t} is too large for a 32-bit float")
        return _float32_bits(f, t), LoadImmMode.U32
    raise _Bad(f"ldi value '{t}' must be a 32-bit integer (decimal or 0x hex), a float (1.5), or "
               "signed[16 values -2..1] / unsigned[16 values 0..3]")


def _imm_like_mods(mods: List[str], mnemonic: str) -> Tuple[Optional[Cond], bool]:
    return _alu_modifiers(mods, mnemonic)


def _two_dests(ops: Sequence[str], what: str) -> Tuple[Dest, Dest]:
    if len(ops) > 2:
        raise _Bad(f"{what} writes at most two destinations (add ALU, mul ALU), not {len(ops)}")
    add_dst = _parse_dest(ops[0]) if ops else NO_DEST
    mul_dst = _parse_dest(ops[1]) if len(ops) > 1 else NO_DEST
    return add_dst, mul_dst


def _parse_ldi(mods: List[str], rest: str, overrides: Overrides) -> LoadImmInstruction:
    cond, setf = _imm_like_mods(mods, "ldi")
    ops = _split_operands(rest) if rest.strip() else []
    if len(ops) < 2:
        raise _Bad("ldi needs a destination and a value: ldi dst[, dst2], value")
    add_dst, mul_dst = _two_dests(ops[:-1], "ldi")
    value, mode = _ldi_value(ops[-1])
    _check_override_names(overrides, (Format.LOAD_IMM,), "a load-immediate instruction")
    return LoadImmInstruction(value, mode, add_dst, mul_dst, cond, setf, overrides)


def _parse_semaphore(acquire: bool, mods: List[str], rest: str, overrides: Overrides) -> SemaphoreInstruction:
    mnemonic = "sacq" if acquire else "srel"
    cond, setf = _imm_like_mods(mods, mnemonic)
    ops = _split_operands(rest) if rest.strip() else []
    if not ops:
        raise _Bad(f"{mnemonic} needs a semaphore number 0..15: {mnemonic} [dst[, dst2],] n")
    n = _parse_int(ops[-1])
    if n is None:
        raise _Bad(f"semaphore number '{ops[-1]}' must be an integer 0..15")
    add_dst, mul_dst = _two_dests(ops[:-1], mnemonic)
    _check_override_names(overrides, (Format.SEMAPHORE,), "a semaphore instruction")
    return SemaphoreInstruction(acquire, n, add_dst, mul_dst, cond, setf, overrides)


def _branch_target(text: str) -> Tuple[Union[int, Label], Optional[int]]:
    """(immediate or label, register) of a branch target: label | number | raN | raN + number."""
    t = text.strip()
    value = _parse_int(t)
    if value is not None:
        return value, None
    m = re.match(r"([A-Za-z_.][A-Za-z0-9_.]*)\s*([+-])\s*(\S.*)\Z", t)
    if m:
        reg = _branch_register(m.group(1))
        if reg is None:
            raise _Bad(f"branch target '{t}': only 'raN + number' may add an offset; "
                       "a label is written alone")
        off = _parse_int(m.group(3))
        if off is None:
            raise _Bad(f"branch target '{t}': the offset '{m.group(3)}' must be an integer")
        return (off if m.group(2) == "+" else -off), reg
    reg = _branch_register(t)
    if reg is not None:
        return 0, reg
    if not _IDENT_RE.match(t):
        raise _Bad(f"branch target '{t}' must be a label, a number, raN or raN + number")
    return Label(t), None


def _branch_register(name: str) -> Optional[int]:
    low = name.lower()
    raw = re.match(r"ra([0-9]+)\Z", low)
    if raw:
        n = int(raw.group(1))
        if n > 31:
            raise _Bad(f"a branch adds a physical regfile-A register ra0..ra31, not '{name}'")
        return n
    if low in _ALL_REGISTER_NAMES:
        raise _Bad(f"a branch can only add a physical regfile-A register ra0..ra31 (guide Table 10, reg), "
                   f"not '{name}'")
    return None


def _parse_branch(relative: bool, mods: List[str], rest: str, overrides: Overrides) -> BranchInstruction:
    mnemonic = "brr" if relative else "bra"
    cond = None
    setf = False
    for m in mods:
        lm = m.lower()
        if lm in ("setf", "sf"):
            setf = True
        elif lm in BRANCH_COND_BY_TEXT:
            if cond is not None:
                raise _Bad(f"'{mnemonic}': two branch conditions")
            cond = BRANCH_COND_BY_TEXT[lm]
        elif lm in COND_BY_TEXT:
            raise _Bad(f"'.{lm}' is an ALU write condition; branch conditions are "
                       f"{', '.join(BRANCH_COND_BY_TEXT)} (guide Table 11)")
        else:
            raise _Bad(f"'{mnemonic}': unknown branch condition '.{lm}'; they are "
                       f"{', '.join(BRANCH_COND_BY_TEXT)}{_suggest(lm, list(BRANCH_COND_BY_TEXT))}")
    ops = _split_operands(rest) if rest.strip() else []
    if not ops:
        raise _Bad(f"{mnemonic} needs a target: {mnemonic} [dst[, dst2],] label|number|raN[ + number]")
    target, reg = _branch_target(ops[-1])
    add_dst, mul_dst = _two_dests(ops[:-1], mnemonic)
    _check_override_names(overrides, (Format.BRANCH,), "a branch instruction")
    kwargs = {} if cond is None else {"cond": cond}
    return BranchInstruction(target, relative=relative, reg=reg, add_dst=add_dst, mul_dst=mul_dst,
                             setf=setf, overrides=overrides, **kwargs)


def _parse_word(rest: str, overrides: Overrides) -> RawWord:
    if overrides:
        raise _Bad(".word takes no field overrides: write the final value")
    v = _parse_int(rest)
    if v is None or not 0 <= v < 1 << 64:
        raise _Bad(f".word needs one 64-bit value (0 .. 0xffffffffffffffff), not '{rest.strip()}'")
    return RawWord(v, ".word")


# --------------------------------------------------------------------------------------------
# Instructions and files
# --------------------------------------------------------------------------------------------

def _parse_code(code: str) -> Instruction:
    """One instruction without label or comment."""
    overrides: Overrides = ()
    if code.endswith("}"):
        start = code.rfind("{")
        if start < 0:
            raise _Bad("'}' without '{'")
        overrides = _parse_overrides(code[start:])
        code = code[:start].rstrip()
    elif "{" in code or "}" in code:
        raise _Bad("field overrides {name=value, ...} go at the end of the instruction")
    if not code:
        raise _Bad("missing instruction")
    parts = code.split(";")
    head = parts[0].strip()
    m = re.match(r"([^\s,;]+)\s*(.*)\Z", head, re.DOTALL)
    if m is None:
        raise _Bad("missing instruction before ';'")
    token, rest = m.group(1), m.group(2)
    lt = token.lower()
    if lt == ".word":
        base, mods = ".word", []
    else:
        base, *mods = token.split(".")
        base = base.lower()
    if base in (".word", "ldi", "sacq", "srel", "brr", "bra"):
        if len(parts) > 1:
            raise _Bad(f"{base} is a whole instruction: it takes no '; ...' parts (signals, a mul half "
                       "and reads go with ALU instructions)")
        if base == ".word":
            return _parse_word(rest, overrides)
        if base == "ldi":
            return _parse_ldi(mods, rest, overrides)
        if base in ("sacq", "srel"):
            return _parse_semaphore(base == "sacq", mods, rest, overrides)
        return _parse_branch(base == "brr", mods, rest, overrides)
    if base in SIGNALS_BY_TEXT:
        raise _Bad(f"a signal goes after the ALU halves: nop ; {base}")
    if base == "read":
        raise _Bad(f"a 'read' clause goes after the ALU halves: nop ; {head}")
    return _parse_alu(parts, overrides)


def _parse(code: str, location: Optional[SourceLocation]) -> Instruction:
    try:
        return _parse_code(code)
    except _Bad as exc:
        raise TextSyntaxError(str(exc), location, code) from None


def parse_instruction(text: str) -> Instruction:
    """The instruction model of one line of QPU assembly (no label; comment and overrides allowed).

    A branch to a label gives a ``BranchInstruction`` whose target is a ``Label``.
    """
    code = _strip_comment(text).strip()
    label = _LABEL_DEF_RE.match(code)
    if label:
        raise TextSyntaxError(f"'{label.group(1)}:' is a label: parse_instruction takes one instruction "
                              "without label (assemble_text reads labels)", None, code)
    return _parse(code, None)


def is_label_name(name: str) -> bool:
    """Whether ``name`` can be a label in the text syntax (an identifier that is not a register)."""
    return bool(_IDENT_RE.match(name)) and name.lower() not in _ALL_REGISTER_NAMES


def _check_label_name(name: str, location: SourceLocation, line: str) -> None:
    if name.lower() in _ALL_REGISTER_NAMES:
        raise TextSyntaxError(f"label '{name}' is a register name: choose another name", location, line)


def assemble_text(text: str, name: str = "<text>", base_address: Optional[int] = None) -> Program:
    """Assemble a whole file of QPU assembly text into a ``Program``.

    ``name`` is the file name used in source locations and error messages.
    ``base_address`` (the program's bus address) is only needed for ``bra`` to a label.
    """
    entries: List[Tuple[Instruction, SourceLocation, str]] = []
    labels: Dict[str, int] = {}
    defined_at: Dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        location = SourceLocation(name, lineno)
        code = _strip_comment(raw).strip()
        while True:
            m = _LABEL_DEF_RE.match(code)
            if not m:
                break
            label = m.group(1)
            _check_label_name(label, location, code)
            if label in labels:
                raise TextSyntaxError(
                    f"label '{label}' defined twice (first on line {defined_at[label]}): rename one",
                    location, code)
            labels[label] = len(entries)
            defined_at[label] = lineno
            code = code[m.end():].strip()
        if not code:
            continue
        entries.append((_parse(code, location), location, code))

    words: List[int] = []
    for index, (ins, location, code) in enumerate(entries):
        try:
            words.append(encode(ins, index, labels, base_address))
        except EncodingError as exc:
            message = str(exc)
            if isinstance(ins, BranchInstruction) and isinstance(ins.target, Label) \
                    and ins.target.name not in labels:
                message += _suggest(ins.target.name, list(labels)) or (
                    f" (defined labels: {', '.join(sorted(labels))})" if labels else " (the file defines no labels)")
            raise AssemblyError(message, location, code) from None
    return Program(words, labels, [loc for _, loc, _ in entries], name)
