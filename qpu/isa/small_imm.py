"""The 64 small-immediate codes: 32-bit values fed to the B input and mul-output rotations.

Source: Reference Guide Table 5 "Small Immediate Encoding" (p.29-30): codes 0-15
are the integers 0..15, 16-31 the integers -16..-1, 32-39 the floats 1.0..128.0,
40-47 the floats 1/256..1/2, 48 rotates the mul output by r5 (element 0, bits
3:0), 49-63 rotate it by 1..15 elements upwards (element 0 moves to element n).

The vc4asm addendum ("Section 3, Table 5: Small immediate values") records from
hardware that codes 48-63, when read as a value through the B mux, give the
integers -16..-1 (0xfffffff0..0xffffffff), the same as codes 16-31, while the
rotation still applies to the mul output.

Values are kept as 32-bit patterns: 1 (0x00000001) and 1.0 (0x3f800000) are
different codes.
"""

from __future__ import annotations

import enum
import struct
from typing import Dict, List, NamedTuple, Optional, Union


class ImmKind(enum.Enum):
    INT = "int"
    FLOAT = "float"


class SmallImm(NamedTuple):
    code: int
    bits: int                 # the 32-bit pattern read through the B mux
    kind: ImmKind             # how the canonical text spells it
    rotation: Optional[int]   # None: no rotation; 0: by r5; 1..15: fixed rotation

    @property
    def text(self) -> str:
        return imm_text(self.bits, self.kind)


def float_bits(value: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


def bits_float(bits: int) -> float:
    return float(struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0])


def imm_text(bits: int, kind: ImmKind) -> str:
    if kind is ImmKind.FLOAT:
        return repr(bits_float(bits))
    v = bits - (1 << 32) if bits & 0x80000000 else bits
    return str(v)


def _build() -> List[SmallImm]:
    codes: List[SmallImm] = []
    for code in range(64):
        if code < 16:
            codes.append(SmallImm(code, code, ImmKind.INT, None))
        elif code < 32:
            codes.append(SmallImm(code, (code - 32) & 0xFFFFFFFF, ImmKind.INT, None))
        elif code < 40:
            codes.append(SmallImm(code, float_bits(2.0 ** (code - 32)), ImmKind.FLOAT, None))
        elif code < 48:
            codes.append(SmallImm(code, float_bits(2.0 ** (code - 48)), ImmKind.FLOAT, None))
        else:
            # value per the vc4asm addendum; rotation per the guide
            codes.append(SmallImm(code, (code - 64) & 0xFFFFFFFF, ImmKind.INT, code - 48))
    return codes


SMALL_IMMS: List[SmallImm] = _build()

# The canonical code for each value: the first code without a rotation side effect.
CODE_BY_BITS: Dict[int, int] = {}
for _s in SMALL_IMMS:
    if _s.rotation is None:
        CODE_BY_BITS.setdefault(_s.bits, _s.code)

ROTATE_R5_CODE = 48


def rotation_code(rotation: Union[int, str]) -> int:
    """Code for a mul-output rotation: 'r5' or 1..15 (0 means no rotation: not a code)."""
    if rotation == "r5":
        return ROTATE_R5_CODE
    if isinstance(rotation, int) and 1 <= rotation <= 15:
        return 48 + rotation
    raise ValueError(f"rotation must be 1..15 or r5, not {rotation!r}")


def value_bits(value: Union[int, float]) -> int:
    """32-bit pattern of a Python number as the QPU would see it (ints two's complement)."""
    if isinstance(value, bool):
        raise TypeError("a bool is not an immediate value")
    if isinstance(value, float):
        return float_bits(value)
    if isinstance(value, int):
        if not -(1 << 31) <= value < (1 << 32):
            raise ValueError(f"{value} does not fit in 32 bits")
        return value & 0xFFFFFFFF
    raise TypeError(f"not a number: {value!r}")


def code_for(value: Union[int, float]) -> Optional[int]:
    """The canonical small-immediate code of a Python int or float, or None."""
    return CODE_BY_BITS.get(value_bits(value))
