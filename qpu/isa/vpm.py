"""Layouts of the 32-bit setup words written to vr_setup / vw_setup.

A single write address per side carries several setup formats, told apart by the
high bits of the value (element 0 of the written vector is used).  Source:
Reference Guide Section 7, Tables 32-37 (p.57-60):

=====================  =========  =======================================
format                 register   selected by
=====================  =========  =======================================
VPM_WRITE              vw_setup   bits 31:30 = 0
VDW_BASIC (DMA store)  vw_setup   bits 31:30 = 2
VDW_STRIDE             vw_setup   bits 31:30 = 3
VPM_READ               vr_setup   bits 31:30 = 0
VDR_BASIC (DMA load)   vr_setup   bit 31 = 1 and bits 30:28 != 1
VDR_STRIDE             vr_setup   bits 31:28 = 9
=====================  =========  =======================================

vw_setup with bits 31:30 = 1 and vr_setup with bits 31:30 = 1 are not described
by the guide: reserved.

Errata: the VDW stride field is 16 bits wide (15:0), not 13 as Table 35 prints
(vc4asm addendum, "Table 35: VCD DMA Write (VDW) Stride Setup Format").

Each field records the value that a 0 stands for ("0 => 64" etc.), so encoders
accept the natural value and decoders return it.
"""

from __future__ import annotations

import enum
from typing import Dict, Mapping, NamedTuple, Optional, Tuple


class SetupField(NamedTuple):
    name: str
    hi: int
    lo: int
    zero_means: Optional[int] = None  # e.g. NUM: 0 => 16
    doc: str = ""

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def max_value(self) -> int:
        """Largest natural value: ``zero_means`` if the field has one, else all ones."""
        return self.zero_means if self.zero_means is not None else (1 << self.width) - 1

    @property
    def min_value(self) -> int:
        return 1 if self.zero_means is not None else 0


class SetupFormat(enum.Enum):
    VPM_WRITE = "vpm_write"
    VPM_READ = "vpm_read"
    VDW_BASIC = "vdw_basic"
    VDW_STRIDE = "vdw_stride"
    VDR_BASIC = "vdr_basic"
    VDR_STRIDE = "vdr_stride"


class SetupLayout(NamedTuple):
    fmt: SetupFormat
    register: str                 # text name of the write register
    id_field: Tuple[int, int, int]  # (hi, lo, value) of the selector bits
    fields: Tuple[SetupField, ...]
    doc: str


_F = SetupField

# VPM block address (bits 7:0) for the QPU-side formats (Tables 32/33):
#   horizontal 8-bit {Y[5:0],B[1:0]}, 16-bit {Y[5:0],H}, 32-bit Y[5:0]
#   vertical   8-bit {Y[5:4],X[3:0],B[1:0]}, 16-bit {Y[5:4],X[3:0],H}, 32-bit {Y[5:4],X[3:0]}
LAYOUTS: Dict[SetupFormat, SetupLayout] = {
    SetupFormat.VPM_WRITE: SetupLayout(SetupFormat.VPM_WRITE, "vw_setup", (31, 30, 0), (
        _F("stride", 17, 12, 64, "added to ADDR after every vector written"),
        _F("horiz", 11, 11, None, "1 = horizontal, 0 = vertical"),
        _F("laned", 10, 10, None, "1 = laned, 0 = packed (ignored for 32-bit)"),
        _F("size", 9, 8, None, "0 = 8-bit, 1 = 16-bit, 2 = 32-bit"),
        _F("addr", 7, 0, None, "first vector: Y (and X, byte/half select)"),
    ), "VPM generic block write setup (Table 32)"),
    SetupFormat.VPM_READ: SetupLayout(SetupFormat.VPM_READ, "vr_setup", (31, 30, 0), (
        _F("num", 23, 20, 16, "number of vectors to read"),
        _F("stride", 17, 12, 64, "added to ADDR after every vector read"),
        _F("horiz", 11, 11, None, "1 = horizontal, 0 = vertical"),
        _F("laned", 10, 10, None, "1 = laned, 0 = packed (ignored for 32-bit)"),
        _F("size", 9, 8, None, "0 = 8-bit, 1 = 16-bit, 2 = 32-bit"),
        _F("addr", 7, 0, None, "first vector: Y (and X, byte/half select)"),
    ), "VPM generic block read setup (Table 33)"),
    SetupFormat.VDW_BASIC: SetupLayout(SetupFormat.VDW_BASIC, "vw_setup", (31, 30, 2), (
        _F("units", 29, 23, 128, "number of rows of the 2D block in memory"),
        _F("depth", 22, 16, 128, "row length of the 2D block in memory (in words of the width)"),
        _F("laned", 15, 15, None, "write as 0"),
        _F("horiz", 14, 14, None, "1 = horizontal, 0 = vertical"),
        _F("vpmbase", 13, 3, None, "VPM address of the first word {Y[6:0], X[3:0]}"),
        _F("modew", 2, 0, None, "0: 32-bit; 2-3: 16-bit, half = bit 0; 4-7: 8-bit, byte = bits 1:0"),
    ), "VDW DMA store basic setup (Table 34)"),
    SetupFormat.VDW_STRIDE: SetupLayout(SetupFormat.VDW_STRIDE, "vw_setup", (31, 30, 3), (
        _F("blockmode", 16, 16, None, "1 = rows packed consecutively in the VPM"),
        _F("stride", 15, 0, None, "bytes from the end of a row to the start of the next (16 bits per the addendum)"),
    ), "VDW DMA store stride setup (Table 35, width per vc4asm addendum)"),
    SetupFormat.VDR_BASIC: SetupLayout(SetupFormat.VDR_BASIC, "vr_setup", (31, 31, 1), (
        _F("modew", 30, 28, None, "0: 32-bit; 2-3: 16-bit, half = bit 0; 4-7: 8-bit, byte = bits 1:0 (1 selects VDR_STRIDE)"),
        _F("mpitch", 27, 24, None, "row pitch in memory = 8 * 2**mpitch bytes; 0 uses VDR_STRIDE's mpitchb"),
        _F("rowlen", 23, 20, 16, "row length in memory, in items of the width"),
        _F("nrows", 19, 16, 16, "number of rows"),
        _F("vpitch", 15, 12, 16, "row-to-row pitch in the VPM"),
        _F("vert", 11, 11, None, "1 = vertical, 0 = horizontal"),
        _F("addrxy", 10, 0, None, "VPM address of the first word {Y, X[3:0]}"),
    ), "VCD DMA load basic setup (Table 36)"),
    SetupFormat.VDR_STRIDE: SetupLayout(SetupFormat.VDR_STRIDE, "vr_setup", (31, 28, 9), (
        _F("mpitchb", 12, 0, None, "row-to-row pitch in memory, in bytes"),
    ), "VCD DMA load extended memory stride setup (Table 37)"),
}


class SetupError(ValueError):
    """A setup field value out of range, or a word that matches no setup format."""


def encode_setup(fmt: SetupFormat, **values: int) -> int:
    """Build a setup word from natural field values (e.g. num=16 is stored as 0).

    Every field must be given; a value outside the field's range raises SetupError
    naming the field and the range.
    """
    layout = LAYOUTS[fmt]
    hi, lo, ident = layout.id_field
    word = ident << lo
    names = {f.name for f in layout.fields}
    unknown = set(values) - names
    if unknown:
        raise SetupError(f"{fmt.value} setup has no field(s) {sorted(unknown)}; fields: {sorted(names)}")
    for f in layout.fields:
        if f.name not in values:
            raise SetupError(f"{fmt.value} setup: field {f.name!r} missing")
        v = values[f.name]
        if not f.min_value <= v <= f.max_value:
            raise SetupError(
                f"{fmt.value} setup: {f.name}={v} out of range {f.min_value}..{f.max_value}")
        raw = 0 if (f.zero_means is not None and v == f.zero_means) else v
        word |= raw << f.lo
    return word


def setup_format_of(register: str, word: int) -> Optional[SetupFormat]:
    """Which format a value written to ``vr_setup`` / ``vw_setup`` selects (None: reserved)."""
    word &= 0xFFFFFFFF
    if register == "vr_setup":
        if word >> 28 == 9:
            return SetupFormat.VDR_STRIDE
        if word >> 31 == 1:
            return SetupFormat.VDR_BASIC
        if word >> 30 == 0:
            return SetupFormat.VPM_READ
        return None
    if register == "vw_setup":
        return {0: SetupFormat.VPM_WRITE, 2: SetupFormat.VDW_BASIC, 3: SetupFormat.VDW_STRIDE}.get(word >> 30)
    raise ValueError(f"not a setup register: {register!r}")


def decode_setup(fmt: SetupFormat, word: int) -> Dict[str, int]:
    """Natural field values of a setup word (0 in a "0 => N" field comes back as N)."""
    out: Dict[str, int] = {}
    for f in LAYOUTS[fmt].fields:
        raw = (word >> f.lo) & ((1 << f.width) - 1)
        out[f.name] = f.zero_means if (raw == 0 and f.zero_means is not None) else raw
    return out


def field_map(fmt: SetupFormat) -> Mapping[str, SetupField]:
    return {f.name: f for f in LAYOUTS[fmt].fields}


# VPM geometry (Section 7, p.53): the QPU sees "a 2D array of 32-bit words, 16 words wide with
# a maximum height of 64 words" (addresses wrap beyond Y = 63); a fully configured V3D, as on
# the Pi, has 16 KB of VPM (256 rows of 16 words), of which general-purpose programs get the
# share reserved with V3D_VPMRSV, mapped from the start of the VPM.
VPM_COLUMNS = 16
VPM_WINDOW_ROWS = 64
VPM_TOTAL_BYTES = 16 * 1024
VPM_TOTAL_ROWS = VPM_TOTAL_BYTES // (VPM_COLUMNS * 4)
