"""Pack and unpack modes.

The 4-bit pack field and 3-bit unpack field program different units depending on
the pm bit (Reference Guide "Pack/Unpack Bits", p.30-32):

* pm = 0: ``unpack`` converts values read from regfile A (Table 6), ``pack``
  converts the result written to regfile A (Table 7).
* pm = 1: ``unpack`` converts values read from accumulator r4 (Table 8, which the
  guide titles "R4 Pack Encoding": it is the r4 *unpack* table), ``pack`` converts
  the mul ALU's float result to an 8-bit colour (Table 9).

Errata: the guide prints "32->8a" for rows 5, 6 and 7 of the mul pack table (and
py-videocore's APPENDIX.rst records the same misprint for the r4 table of its
copy); they are 8b, 8c and 8d (py-videocore APPENDIX.rst; Mesa's
vc4_qpu_defines.h ``QPU_PACK_MUL_8A..8D``).  Mul pack codes 1, 2 and 8-15 are
reserved.

The vc4asm addendum adds: mul pack modes that write a single byte cannot target
I/O registers ("MUL ALU pack modes and I/O register targets").

``text`` is the suffix used in the text syntax (``ra1.16a``, ``r4.8b``,
``r0.8ac``); ``semantics`` names the conversion the emulator applies.
"""

from __future__ import annotations

import enum
from typing import Dict, NamedTuple, Tuple


class PackTarget(enum.Enum):
    REGFILE_A = "regfile_a"  # pm = 0
    MUL = "mul"              # pm = 1


class UnpackSource(enum.Enum):
    REGFILE_A = "regfile_a"  # pm = 0
    R4 = "r4"                # pm = 1


class UnpackMode(NamedTuple):
    code: int
    text: str
    doc: str
    # Mask of the source bytes (bit i = byte i) the mode reads: the emulator tracks which
    # bytes of a register were ever written, so a 16a unpack of a half-written word is defined.
    bytes_read: int = 0xF


class PackMode(NamedTuple):
    code: int
    text: str
    saturate: bool
    byte_lane: int   # -1: whole word / 16-bit; 0..3: which byte is written; 4: all bytes (replicate)
    half: int        # -1: not a 16-bit pack; 0: low half (a); 1: high half (b)
    doc: str
    aliases: Tuple[str, ...] = ()


# Unpack: identical meaning for regfile A (pm=0) and r4 (pm=1), except that the r4
# unpacker always produces floats for the 16-bit and 8-bit colour modes (Table 8),
# while the regfile-A unpacker produces ints when no consuming ALU op is a float op.
UNPACK_MODES: Dict[int, UnpackMode] = {m.code: m for m in (
    UnpackMode(0, "", "no unpack"),
    UnpackMode(1, "16a", "low 16 bits: float16 -> float32, or int16 -> int32", 0x3),
    UnpackMode(2, "16b", "high 16 bits: float16 -> float32, or int16 -> int32", 0xC),
    UnpackMode(3, "8dr", "replicate the high byte to all four bytes", 0x8),
    UnpackMode(4, "8a", "byte 0: colour [0,1] -> float32, or uint8 -> int32", 0x1),
    UnpackMode(5, "8b", "byte 1: colour [0,1] -> float32, or uint8 -> int32", 0x2),
    UnpackMode(6, "8c", "byte 2: colour [0,1] -> float32, or uint8 -> int32", 0x4),
    UnpackMode(7, "8d", "byte 3: colour [0,1] -> float32, or uint8 -> int32", 0x8),
)}
UNPACK_BY_TEXT: Dict[str, int] = {m.text: m.code for m in UNPACK_MODES.values() if m.text}

PACK_A_MODES: Dict[int, PackMode] = {m.code: m for m in (
    PackMode(0, "", False, -1, -1, "no pack"),
    PackMode(1, "16a", False, -1, 0, "to float16 if the result is float, else low 16 bits; written to the low half"),
    PackMode(2, "16b", False, -1, 1, "to float16 if the result is float, else low 16 bits; written to the high half"),
    PackMode(3, "8888", False, 4, -1, "low 8 bits replicated to all four bytes", ("8abcd",)),
    PackMode(4, "8a", False, 0, -1, "low 8 bits written to byte 0"),
    PackMode(5, "8b", False, 1, -1, "low 8 bits written to byte 1"),
    PackMode(6, "8c", False, 2, -1, "low 8 bits written to byte 2"),
    PackMode(7, "8d", False, 3, -1, "low 8 bits written to byte 3"),
    PackMode(8, "32s", False, -1, -1, "saturate the signed 32-bit result on overflow (add/sub carry)"),
    PackMode(9, "16as", True, -1, 0, "to float16, or int16 with signed saturation; low half"),
    PackMode(10, "16bs", True, -1, 1, "to float16, or int16 with signed saturation; high half"),
    PackMode(11, "8888s", True, 4, -1, "uint8 with saturation replicated to all bytes", ("8abcds",)),
    PackMode(12, "8as", True, 0, -1, "uint8 with saturation to byte 0"),
    PackMode(13, "8bs", True, 1, -1, "uint8 with saturation to byte 1"),
    PackMode(14, "8cs", True, 2, -1, "uint8 with saturation to byte 2"),
    PackMode(15, "8ds", True, 3, -1, "uint8 with saturation to byte 3"),
)}

# Mul pack: c = sat[round(f * 255)] into the chosen byte(s) of the destination (p.30).
PACK_MUL_MODES: Dict[int, PackMode] = {m.code: m for m in (
    PackMode(0, "", False, -1, -1, "no pack"),
    PackMode(3, "8888c", True, 4, -1, "float -> 8-bit colour, replicated to all bytes", ("8888sf", "8abcdsf")),
    PackMode(4, "8ac", True, 0, -1, "float -> 8-bit colour in byte 0", ("8asf",)),
    PackMode(5, "8bc", True, 1, -1, "float -> 8-bit colour in byte 1", ("8bsf",)),
    PackMode(6, "8cc", True, 2, -1, "float -> 8-bit colour in byte 2", ("8csf",)),
    PackMode(7, "8dc", True, 3, -1, "float -> 8-bit colour in byte 3", ("8dsf",)),
)}
RESERVED_PACK_MUL_CODES = frozenset(range(16)) - frozenset(PACK_MUL_MODES)

PACK_A_BY_TEXT: Dict[str, int] = {}
for _m in PACK_A_MODES.values():
    for _n in (_m.text,) + _m.aliases:
        if _n:
            PACK_A_BY_TEXT[_n] = _m.code
PACK_MUL_BY_TEXT: Dict[str, int] = {}
for _m in PACK_MUL_MODES.values():
    for _n in (_m.text,) + _m.aliases:
        if _n:
            PACK_MUL_BY_TEXT[_n] = _m.code
