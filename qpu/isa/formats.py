"""Instruction formats of the VideoCore IV QPU: which bits of the 64-bit word hold which field.

Every QPU instruction is one little-endian 64-bit word.  The signalling field
(bits 63:60) selects the format; for load-immediate words the 3-bit field at
59:57 (the ALU format's ``unpack`` field) further selects the immediate kind or
the semaphore instruction.

Source: Broadcom, VideoCore IV 3D Architecture Reference Guide (2013-09-16),
"QPU Instruction Encoding", Figure 3 and Tables 1 and 10 (pages 26-34).  The
bit positions of the figure match Mesa's ``vc4_qpu_defines.h``.  The branch
word's raddr_a field (49:45) overlaps the ALU word's set-flags bit 45, which the
hardware honours (vc4asm addendum, "Branch Instruction - implicit set flags").

This module is data plus the two generic operations on it (extract a field,
insert a field); everything that encodes or decodes words goes through it.
"""

from __future__ import annotations

import enum
from typing import Dict, Iterator, Mapping, NamedTuple, Tuple


class Field(NamedTuple):
    """A bit field of the 64-bit instruction word, bits ``hi`` down to ``lo`` inclusive."""

    name: str
    hi: int
    lo: int

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def mask(self) -> int:
        """Mask of the field's value once shifted down (e.g. 0xf for a 4-bit field)."""
        return (1 << self.width) - 1

    def get(self, word: int) -> int:
        return (word >> self.lo) & self.mask

    def put(self, word: int, value: int) -> int:
        if not 0 <= value <= self.mask:
            raise ValueError(f"value {value} does not fit the {self.width}-bit field {self.name}")
        return (word & ~(self.mask << self.lo)) | (value << self.lo)


class Format(enum.Enum):
    """The five instruction layouts (the guide's Figure 3 draws the load-immediate ones as three)."""

    ALU = "alu"
    ALU_SMALL_IMM = "alu_small_imm"
    LOAD_IMM = "load_imm"  # 32-bit, per-element signed and per-element unsigned share one layout
    SEMAPHORE = "semaphore"
    BRANCH = "branch"


# Fields common to the upper half of ALU, load-immediate and semaphore words (Table 1).
_UPPER = (
    Field("sig", 63, 60),
    Field("unpack", 59, 57),   # load-imm/semaphore words: the mode, see LoadImmMode
    Field("pm", 56, 56),
    Field("pack", 55, 52),
    Field("cond_add", 51, 49),
    Field("cond_mul", 48, 46),
    Field("sf", 45, 45),
    Field("ws", 44, 44),
    Field("waddr_add", 43, 38),
    Field("waddr_mul", 37, 32),
)

_ALU_LOWER = (
    Field("op_mul", 31, 29),
    Field("op_add", 28, 24),
    Field("raddr_a", 23, 18),
    Field("raddr_b", 17, 12),
    Field("add_a", 11, 9),
    Field("add_b", 8, 6),
    Field("mul_a", 5, 3),
    Field("mul_b", 2, 0),
)

FIELDS: Dict[Format, Tuple[Field, ...]] = {
    Format.ALU: _UPPER + _ALU_LOWER,
    # Same as ALU, but raddr_b holds the small immediate / rotation code (Table 5).
    Format.ALU_SMALL_IMM: _UPPER + tuple(
        Field("small_imm", f.hi, f.lo) if f.name == "raddr_b" else f for f in _ALU_LOWER
    ),
    Format.LOAD_IMM: _UPPER + (Field("immediate", 31, 0),),
    # Bits 31:5 are "don't care" (Figure 6); they still reach the ALU outputs as part of
    # the immediate when the instruction writes a register (guide p.33).
    Format.SEMAPHORE: _UPPER + (
        Field("dont_care", 31, 5),
        Field("sa", 4, 4),
        Field("semaphore", 3, 0),
    ),
    Format.BRANCH: (
        Field("sig", 63, 60),
        Field("dont_care", 59, 56),
        Field("cond_br", 55, 52),
        Field("rel", 51, 51),
        Field("reg", 50, 50),
        Field("raddr_a", 49, 45),  # its bit 0 is the ALU word's sf bit: odd raddr_a sets flags
        Field("ws", 44, 44),
        Field("waddr_add", 43, 38),
        Field("waddr_mul", 37, 32),
        Field("immediate", 31, 0),
    ),
}

FIELD_BY_NAME: Dict[Format, Dict[str, Field]] = {
    fmt: {f.name: f for f in fields} for fmt, fields in FIELDS.items()
}

# Fields whose value the hardware ignores.  The disassembler must still preserve them.
DONT_CARE_FIELDS: Dict[Format, Tuple[str, ...]] = {
    Format.ALU: (),
    Format.ALU_SMALL_IMM: (),
    Format.LOAD_IMM: (),
    Format.SEMAPHORE: ("dont_care",),
    Format.BRANCH: ("dont_care",),
}

SIG_FIELD = Field("sig", 63, 60)
MODE_FIELD = Field("unpack", 59, 57)

# Signalling values that select a format rather than a signal (Table 4).
SIG_SMALL_IMM = 13
SIG_LOAD_IMM = 14
SIG_BRANCH = 15


class LoadImmMode(enum.IntEnum):
    """Bits 59:57 of a word whose sig field is 14 (Figures 5 and 6)."""

    U32 = 0                   # one 32-bit immediate, replicated to all 16 elements
    PER_ELEMENT_SIGNED = 1    # 16 two-bit signed values (-2..1)
    PER_ELEMENT_UNSIGNED = 3  # 16 two-bit unsigned values (0..3)
    SEMAPHORE = 4             # semaphore instruction
    # 2, 5, 6 and 7 are not described by the guide: they are reserved encodings here.


LOAD_IMM_MODES = frozenset(int(m) for m in LoadImmMode if m is not LoadImmMode.SEMAPHORE)


def format_of(word: int) -> Format:
    """The layout of a 64-bit instruction word.

    Words with sig=14 and a reserved mode (2, 5, 6, 7) are reported as LOAD_IMM; callers
    that care check ``unpack`` against LOAD_IMM_MODES.
    """
    sig = SIG_FIELD.get(word)
    if sig == SIG_BRANCH:
        return Format.BRANCH
    if sig == SIG_LOAD_IMM:
        if MODE_FIELD.get(word) == LoadImmMode.SEMAPHORE:
            return Format.SEMAPHORE
        return Format.LOAD_IMM
    if sig == SIG_SMALL_IMM:
        return Format.ALU_SMALL_IMM
    return Format.ALU


def decode_fields(word: int) -> Tuple[Format, Dict[str, int]]:
    """Split a word into its format and the value of every field of that format."""
    if not 0 <= word < 1 << 64:
        raise ValueError(f"not a 64-bit instruction word: {word!r}")
    fmt = format_of(word)
    return fmt, {f.name: f.get(word) for f in FIELDS[fmt]}


def encode_fields(fmt: Format, values: Mapping[str, int]) -> int:
    """Assemble a word from field values; every field of ``fmt`` must be given, no others."""
    layout = FIELD_BY_NAME[fmt]
    unknown = set(values) - set(layout)
    if unknown:
        raise ValueError(f"fields {sorted(unknown)} do not exist in the {fmt.value} format")
    word = 0
    for field in FIELDS[fmt]:
        if field.name not in values:
            raise ValueError(f"field {field.name} missing for the {fmt.value} format")
        word = field.put(word, values[field.name])
    if format_of(word) is not fmt:
        raise ValueError(f"field values do not describe a {fmt.value} word (check sig/unpack)")
    return word


def iter_layout(fmt: Format) -> Iterator[Field]:
    return iter(FIELDS[fmt])


def _check_layouts() -> None:
    # Each layout must cover all 64 bits exactly once: catches typos in the table.
    for fmt, fields in FIELDS.items():
        covered = 0
        for f in fields:
            bits = f.mask << f.lo
            assert covered & bits == 0, f"{fmt}: field {f.name} overlaps another"
            covered |= bits
        assert covered == (1 << 64) - 1, f"{fmt}: fields do not cover 64 bits"


_check_layouts()
