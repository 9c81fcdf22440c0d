"""Register constants for the Python DSL: ``r0``..``r5``, ``ra0``..``rb31`` and every I/O register.

Each constant is a :class:`Register` that knows how it is read (a
``qpu.instruction`` Source, or None for write-only registers) and how it is
written (a ``Dest``, or None for read-only ones).  All of them are built from
the register map in ``qpu.isa.registers`` (Reference Guide Table 14, p.37-38),
which stays the one source of truth: the helpers below only look names up.

Kernel code imports them explicitly (``from qpu.dsl import *`` or
``from qpu.registers import ra1, uniform``); nothing is injected anywhere.

Pack and unpack modes (guide "Pack/Unpack Bits", p.30-32) are methods that return
new registers::

    k.fadd(ra1.pack("16a"), r0, r1)        # regfile-A pack of the add result
    k.nop().fmul(r0.pack("8ac"), r1, r2)   # mul ALU colour pack
    k.fadd(r0, ra1.unpack("16b"), r1)      # regfile-A unpack
    k.fmul(r0, r4.unpack("8a"), r1)        # r4 unpack (TMU / TLB colour data)

Python numbers used as operands are small immediates (guide Table 5, p.29-30):
an ``int`` is the integer pattern, a ``float`` the IEEE pattern, so ``1`` and
``1.0`` are different operands.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple, Union

from .errors import AssemblyError, SourceLocation
from .instruction import FILE_A, FILE_B, Accumulator, Dest, Immediate, RegisterRead, Source
from .isa.packing import PACK_A_BY_TEXT, PACK_MUL_BY_TEXT, PACK_MUL_MODES, UNPACK_BY_TEXT
from .isa.registers import REGISTERS, RegInfo, Space, Unit
from .isa.small_imm import CODE_BY_BITS, ImmKind, float_bits, imm_text

# --------------------------------------------------------------------------------------------
# Where in the kernel author's code are we?
# --------------------------------------------------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))
# Frames in these files are the DSL's own; the first frame outside them is the kernel
# author's line.  Only the DSL modules are skipped (not the whole qpu package) so that
# kernels shipped inside the package (qpu.kernels) still get their own file:line.
_DSL_FILES = frozenset(os.path.join(_HERE, *parts) for parts in (
    ("registers.py",), ("builder.py",), ("builder_base.py",), ("builder_alu.py",), ("builder_control.py",),
    ("builder_io.py",), ("macros.py",), ("dsl.py",),
    ("compat", "__init__.py"), ("compat", "videocore.py"),
)) | frozenset([os.path.abspath(contextlib.__file__)])


def kernel_location() -> Optional[SourceLocation]:
    """The file:line (and function) of the innermost caller outside the DSL modules.

    Cheap: it follows ``f_back`` links without building a full stack summary.
    """
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.abspath(filename) not in _DSL_FILES:
            return SourceLocation(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back  # type: ignore[assignment]
    return None


# --------------------------------------------------------------------------------------------
# Register objects
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Register:
    """A register as the DSL sees it: its name, how it is read and how it is written.

    ``read`` is None for write-only registers (``tmu0_s``, ``r5quad``...), ``write``
    is None for read-only ones (``r4``, ``element_number``...).  ``unit`` is what the
    address talks to (``qpu.isa.registers.Unit``).
    """

    name: str
    read: Optional[Source]
    write: Optional[Dest]
    unit: Unit
    doc: str = ""

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    @property
    def is_accumulator(self) -> bool:
        return self.unit is Unit.ACCUMULATOR

    def pack(self, mode: str) -> Register:
        """This register as a destination with a pack mode.

        Regfile-A pack modes (pm=0, guide Table 7 p.31: ``16a 16b 8888 8a 8b 8c 8d 32s 16as
        16bs 8888s 8as 8bs 8cs 8ds``) convert the result written to a location reached
        through regfile A (not an accumulator).  Mul colour packs (pm=1, Table 9 p.32:
        ``8888c 8ac 8bc 8cc 8dc``) convert the mul ALU's float result and can target any
        destination of the mul ALU, but the single-byte ones not an I/O register (vc4asm
        addendum, "MUL ALU pack modes and I/O register targets").
        """
        where = kernel_location()
        if self.write is None:
            raise AssemblyError(f"{self.name} cannot be written, so it cannot be packed", where)
        if self.write.pack:
            raise AssemblyError(f"{self.name} already has a pack mode", where)
        if not isinstance(mode, str):
            raise AssemblyError(f"pack mode must be a string such as '16a', not {mode!r}", where)
        regfile_a = FILE_A in self.write.files and not self.is_accumulator
        if mode in PACK_A_BY_TEXT:
            if not regfile_a:
                raise AssemblyError(
                    f"{self.name}.pack({mode!r}): the regfile-A pack (guide Table 7) only converts "
                    "writes through regfile A (ra0..ra31 and I/O registers writable through file A); "
                    f"for the mul ALU colour pack use one of {_listing(PACK_MUL_BY_TEXT)}", where)
            code, mul = PACK_A_BY_TEXT[mode], False
        elif mode in PACK_MUL_BY_TEXT:
            code, mul = PACK_MUL_BY_TEXT[mode], True
            single_byte = PACK_MUL_MODES[code].byte_lane in (0, 1, 2, 3)
            if single_byte and self.unit not in (Unit.REGFILE, Unit.ACCUMULATOR):
                raise AssemblyError(
                    f"{self.name}.pack({mode!r}): a mul pack that writes a single byte cannot target an "
                    "I/O register (vc4asm addendum, 'MUL ALU pack modes and I/O register targets'); "
                    "write to a register first", where)
        else:
            valid = (_listing(PACK_A_BY_TEXT) + " (regfile A), ") if regfile_a else ""
            raise AssemblyError(
                f"unknown pack mode {mode!r} for {self.name}; valid: {valid}{_listing(PACK_MUL_BY_TEXT)} "
                "(mul ALU colour pack)", where)
        return Register(f"{self.name}.pack({mode!r})", None,
                        replace(self.write, pack=code, mul_pack=mul), self.unit, self.doc)

    def unpack(self, mode: str) -> Register:
        """This register as a source with an unpack mode (guide Tables 6 and 8, p.31-32).

        Modes: ``16a 16b 8dr 8a 8b 8c 8d``.  Only reads through regfile A (ra0..ra31 and I/O
        registers readable through file A) and accumulator r4 can be unpacked.
        """
        where = kernel_location()
        if self.read is None:
            raise AssemblyError(f"{self.name} cannot be read, so it cannot be unpacked", where)
        if not isinstance(mode, str) or mode not in UNPACK_BY_TEXT:
            raise AssemblyError(
                f"unknown unpack mode {mode!r} for {self.name}; valid: {_listing(UNPACK_BY_TEXT)}", where)
        code = UNPACK_BY_TEXT[mode]
        src = self.read
        if isinstance(src, Accumulator):
            if src.index != 4:
                raise AssemblyError(
                    f"{self.name}.unpack({mode!r}): of the accumulators only r4 has an unpacker (guide "
                    "Table 8); move the value to a regfile-A register to unpack it", where)
            new: Source = replace(src, unpack=code)
        elif isinstance(src, RegisterRead):
            if FILE_A not in src.files:
                raise AssemblyError(
                    f"{self.name}.unpack({mode!r}): the unpacker converts reads through regfile A only "
                    "(guide Table 6); regfile-B reads cannot be unpacked", where)
            if src.unpack:
                raise AssemblyError(f"{self.name} already has an unpack mode", where)
            new = replace(src, files=(FILE_A,), unpack=code)
        else:  # pragma: no cover - registers never hold immediates
            raise AssemblyError(f"{self.name} cannot be unpacked", where)
        return Register(f"{self.name}.unpack({mode!r})", new, None, self.unit, self.doc)


def _listing(names: Dict[str, int]) -> str:
    return ", ".join(sorted(names, key=lambda n: (names[n], n)))


# --------------------------------------------------------------------------------------------
# Builders: everything is looked up in qpu.isa.registers.REGISTERS
# --------------------------------------------------------------------------------------------

def _rows(dsl: str) -> List[RegInfo]:
    return [info for regs in REGISTERS.values() for info in regs.values() if info.dsl == dsl]


def _files(rows: List[RegInfo], spaces: Tuple[Space, Space]) -> Tuple[Optional[int], Tuple[str, ...]]:
    found = [r for r in rows if r.space in spaces]
    if not found:
        return None, ()
    addrs = {r.addr for r in found}
    assert len(addrs) == 1, f"{found[0].dsl}: one name, several addresses {addrs}"
    files = tuple(f for f in (FILE_A, FILE_B) if any(r.space.file == f for r in found))
    return addrs.pop(), files


def _from_table(dsl: str) -> Register:
    """The register named ``dsl`` in the register map, with every space it appears in."""
    rows = _rows(dsl)
    if not rows:
        raise KeyError(f"no register named {dsl!r} in qpu.isa.registers")
    raddr, rfiles = _files(rows, (Space.READ_A, Space.READ_B))
    waddr, wfiles = _files(rows, (Space.WRITE_A, Space.WRITE_B))
    read = None if raddr is None else RegisterRead(raddr, rfiles)
    write = None if waddr is None else Dest(waddr, wfiles)
    docs = []
    for r in rows:
        if r.doc not in docs:
            docs.append(r.doc)
    return Register(dsl, read, write, rows[0].unit, "; ".join(docs))


def _accumulator(index: int) -> Register:
    """r0..r5: read through input mux ``index`` (guide Table 3, p.28); r0..r3 are written
    through write addresses 32..35 (Table 14), r4 and r5 not at all (r5 via r5quad/r5rep)."""
    name = f"r{index}"
    rows = _rows(name)
    write = None
    if rows:
        write = _from_table(name).write
    docs = {4: "accumulator r4: SFU results, TMU and TLB loads (read-only)",
            5: "accumulator r5 (read-only here: write it through r5quad or r5rep)"}
    return Register(name, Accumulator(index), write, Unit.ACCUMULATOR, docs.get(index, f"accumulator {name}"))


def _physical(file: str, index: int) -> Register:
    """ra<index> / rb<index>: the physical registers 0..31 of regfile A / B."""
    return _from_table(f"r{file}{index}")


# --------------------------------------------------------------------------------------------
# Accumulators (r4 is read-only; r5 is read through mux 5 and written through r5quad/r5rep)
# --------------------------------------------------------------------------------------------

r0 = _accumulator(0)
r1 = _accumulator(1)
r2 = _accumulator(2)
r3 = _accumulator(3)
r4 = _accumulator(4)
r5 = _accumulator(5)

# --------------------------------------------------------------------------------------------
# Physical registers of regfile A and regfile B
# --------------------------------------------------------------------------------------------

ra0 = _physical("a", 0)
ra1 = _physical("a", 1)
ra2 = _physical("a", 2)
ra3 = _physical("a", 3)
ra4 = _physical("a", 4)
ra5 = _physical("a", 5)
ra6 = _physical("a", 6)
ra7 = _physical("a", 7)
ra8 = _physical("a", 8)
ra9 = _physical("a", 9)
ra10 = _physical("a", 10)
ra11 = _physical("a", 11)
ra12 = _physical("a", 12)
ra13 = _physical("a", 13)
ra14 = _physical("a", 14)
ra15 = _physical("a", 15)
ra16 = _physical("a", 16)
ra17 = _physical("a", 17)
ra18 = _physical("a", 18)
ra19 = _physical("a", 19)
ra20 = _physical("a", 20)
ra21 = _physical("a", 21)
ra22 = _physical("a", 22)
ra23 = _physical("a", 23)
ra24 = _physical("a", 24)
ra25 = _physical("a", 25)
ra26 = _physical("a", 26)
ra27 = _physical("a", 27)
ra28 = _physical("a", 28)
ra29 = _physical("a", 29)
ra30 = _physical("a", 30)
ra31 = _physical("a", 31)

rb0 = _physical("b", 0)
rb1 = _physical("b", 1)
rb2 = _physical("b", 2)
rb3 = _physical("b", 3)
rb4 = _physical("b", 4)
rb5 = _physical("b", 5)
rb6 = _physical("b", 6)
rb7 = _physical("b", 7)
rb8 = _physical("b", 8)
rb9 = _physical("b", 9)
rb10 = _physical("b", 10)
rb11 = _physical("b", 11)
rb12 = _physical("b", 12)
rb13 = _physical("b", 13)
rb14 = _physical("b", 14)
rb15 = _physical("b", 15)
rb16 = _physical("b", 16)
rb17 = _physical("b", 17)
rb18 = _physical("b", 18)
rb19 = _physical("b", 19)
rb20 = _physical("b", 20)
rb21 = _physical("b", 21)
rb22 = _physical("b", 22)
rb23 = _physical("b", 23)
rb24 = _physical("b", 24)
rb25 = _physical("b", 25)
rb26 = _physical("b", 26)
rb27 = _physical("b", 27)
rb28 = _physical("b", 28)
rb29 = _physical("b", 29)
rb30 = _physical("b", 30)
rb31 = _physical("b", 31)

ra: Tuple[Register, ...] = (
    ra0, ra1, ra2, ra3, ra4, ra5, ra6, ra7, ra8, ra9, ra10, ra11, ra12, ra13, ra14, ra15,
    ra16, ra17, ra18, ra19, ra20, ra21, ra22, ra23, ra24, ra25, ra26, ra27, ra28, ra29, ra30, ra31,
)
"""``ra[i]`` is ``ra<i>``: regfile A indexable, for loops over registers."""

rb: Tuple[Register, ...] = (
    rb0, rb1, rb2, rb3, rb4, rb5, rb6, rb7, rb8, rb9, rb10, rb11, rb12, rb13, rb14, rb15,
    rb16, rb17, rb18, rb19, rb20, rb21, rb22, rb23, rb24, rb25, rb26, rb27, rb28, rb29, rb30, rb31,
)
"""``rb[i]`` is ``rb<i>``: regfile B indexable."""

# --------------------------------------------------------------------------------------------
# I/O registers (guide Table 14 p.37-38, Table 31 p.57), under their qpu.isa.registers dsl names
# --------------------------------------------------------------------------------------------

# Reads: streams and identifiers.
uniform = _from_table("uniform")                # next uniform (read through A or B)
varying = _from_table("varying")                # next varying (fragment shaders)
element_number = _from_table("element_number")  # 0..15 (read A)
qpu_number = _from_table("qpu_number")          # 0..11 (read B)
null = _from_table("null")                      # no write / no read (address 39)

# r5 write ports (vc4asm addendum "Section 3: Writing to r5").
r5quad = _from_table("r5quad")  # write A: element 0 of each quad to that quad
r5rep = _from_table("r5rep")    # write B: element 0 to all 16 elements

# VPM and DMA (guide Table 31, p.57).
vpm = _from_table("vpm")                          # VPM read / write FIFO
vpm_ld_busy = _from_table("vpm_ld_busy")          # read A: VCD DMA load running
vpm_st_busy = _from_table("vpm_st_busy")          # read B: VDW DMA store running
vpm_ld_wait = _from_table("vpm_ld_wait")          # read A: stall until the DMA load is done
vpm_st_wait = _from_table("vpm_st_wait")          # read B: stall until the DMA store is done
vpmvcd_rd_setup = _from_table("vpmvcd_rd_setup")  # write A: VPM read / DMA load setup
vpmvcd_wr_setup = _from_table("vpmvcd_wr_setup")  # write B: VPM write / DMA store setup
vpm_ld_addr = _from_table("vpm_ld_addr")          # write A: start a DMA load from this address
vpm_st_addr = _from_table("vpm_st_addr")          # write B: start a DMA store to this address

# Synchronisation and control.
mutex = _from_table("mutex")                          # read: acquire; write: release
host_interrupt = _from_table("host_interrupt")        # write a non-zero value to interrupt the host
uniforms_address = _from_table("uniforms_address")    # restart the uniform stream
tmu_noswap = _from_table("tmu_noswap")                # non-zero disables the TMU swap of QPUs 2, 3

# Special functions unit: r4 receives the result three instructions later (guide p.23).
sfu_recip = _from_table("sfu_recip")
sfu_recipsqrt = _from_table("sfu_recipsqrt")
sfu_exp2 = _from_table("sfu_exp2")
sfu_log2 = _from_table("sfu_log2")

# Texture and memory units (writing *_s starts the lookup).
tmu0_s = _from_table("tmu0_s")
tmu0_t = _from_table("tmu0_t")
tmu0_r = _from_table("tmu0_r")
tmu0_b = _from_table("tmu0_b")
tmu1_s = _from_table("tmu1_s")
tmu1_t = _from_table("tmu1_t")
tmu1_r = _from_table("tmu1_r")
tmu1_b = _from_table("tmu1_b")

# Tile buffer and fragment-shader registers.
tlb_stencil_setup = _from_table("tlb_stencil_setup")
tlb_z = _from_table("tlb_z")
tlb_color_ms = _from_table("tlb_color_ms")
tlb_color_all = _from_table("tlb_color_all")
tlb_alpha_mask = _from_table("tlb_alpha_mask")
x_pixel_coord = _from_table("x_pixel_coord")
y_pixel_coord = _from_table("y_pixel_coord")
quad_x = _from_table("quad_x")
quad_y = _from_table("quad_y")
ms_flags = _from_table("ms_flags")
rev_flag = _from_table("rev_flag")


# --------------------------------------------------------------------------------------------
# Operands
# --------------------------------------------------------------------------------------------

Operand = Union[Register, int, float, Immediate]
"""What an ALU source may be: a register, a Python number (small immediate) or an Immediate."""

SMALL_IMMEDIATE_HINT = ("small immediates are the integers -16..15 and the floats 1.0, 2.0, ..., 128.0 "
                        "and 1/256, ..., 1/2 (guide Table 5)")


class NotSmallImmediate(AssemblyError):
    """A Python number used as an operand is not one of the 48 small-immediate values."""


def small_immediate(value: Union[int, float]) -> Immediate:
    """The small immediate for a Python number: ``int`` -> integer pattern, ``float`` -> IEEE pattern.

    Raises NotSmallImmediate (with the kernel's file:line) for other values.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotSmallImmediate(f"{value!r} is not a number", kernel_location())
    if isinstance(value, float):
        # Any float whose IEEE pattern has a code: the powers of two of Table 5 and 0.0.
        bits, kind, ok = float_bits(value), ImmKind.FLOAT, True
    else:
        # Only -16..15: an int such as 0x3f800000 is not "the integer", even if its bits match 1.0.
        bits, kind, ok = value & 0xFFFFFFFF, ImmKind.INT, -16 <= value <= 15
    if not ok or bits not in CODE_BY_BITS:
        raise NotSmallImmediate(
            f"{value!r} is not a small immediate ({SMALL_IMMEDIATE_HINT}); load it into a register "
            f"first, e.g. k.ldi(r0, {value!r}), and use that register", kernel_location())
    return Immediate(bits, kind)


def operand_name(value: object) -> str:
    """How an operand is shown in error messages."""
    if isinstance(value, Register):
        return value.name
    if isinstance(value, Immediate):
        return imm_text(value.bits, value.kind)
    return repr(value)


__all__ = [
    "Register", "Operand", "small_immediate", "NotSmallImmediate", "kernel_location", "operand_name",
    "r0", "r1", "r2", "r3", "r4", "r5", "ra", "rb",
    "ra0", "ra1", "ra2", "ra3", "ra4", "ra5", "ra6", "ra7", "ra8", "ra9", "ra10", "ra11", "ra12",
    "ra13", "ra14", "ra15", "ra16", "ra17", "ra18", "ra19", "ra20", "ra21", "ra22", "ra23", "ra24",
    "ra25", "ra26", "ra27", "ra28", "ra29", "ra30", "ra31",
    "rb0", "rb1", "rb2", "rb3", "rb4", "rb5", "rb6", "rb7", "rb8", "rb9", "rb10", "rb11", "rb12",
    "rb13", "rb14", "rb15", "rb16", "rb17", "rb18", "rb19", "rb20", "rb21", "rb22", "rb23", "rb24",
    "rb25", "rb26", "rb27", "rb28", "rb29", "rb30", "rb31",
    "uniform", "varying", "element_number", "qpu_number", "null", "r5quad", "r5rep",
    "vpm", "vpm_ld_busy", "vpm_st_busy", "vpm_ld_wait", "vpm_st_wait", "vpmvcd_rd_setup",
    "vpmvcd_wr_setup", "vpm_ld_addr", "vpm_st_addr",
    "mutex", "host_interrupt", "uniforms_address", "tmu_noswap",
    "sfu_recip", "sfu_recipsqrt", "sfu_exp2", "sfu_log2",
    "tmu0_s", "tmu0_t", "tmu0_r", "tmu0_b", "tmu1_s", "tmu1_t", "tmu1_r", "tmu1_b",
    "tlb_stencil_setup", "tlb_z", "tlb_color_ms", "tlb_color_all", "tlb_alpha_mask",
    "x_pixel_coord", "y_pixel_coord", "quad_x", "quad_y", "ms_flags", "rev_flag",
]
