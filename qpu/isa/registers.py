"""The QPU register address map: what each of the 64 addresses means in each of the
four spaces (read A, read B, write A, write B), and which unit it belongs to.

Source: Reference Guide Table 14 "QPU Register Address Map" (p.37-38) and
Table 31 (p.57); r5 write semantics from the vc4asm addendum ("Section 3:
Writing to r5": a write through regfile A copies element 0 of each quad to that
quad, a write through regfile B copies element 0 to all 16 elements; nothing is
concatenated from low bytes as the guide says).

Addresses 0-31 are the physical register files.  Reads of an I/O address that
the map leaves empty return "the default unmapped I/O location read data, which
is the SIMD element_number or qpu_number" (guide, "Inter-Processor Mutex",
p.24); writes to an empty write address are reserved here.

``text`` is the canonical text-syntax name (close to Mesa's and vc4asm's
disassemblers), ``dsl`` the name of the Python constant in ``qpu.registers``
(close to py-videocore), ``aliases`` further names the text assembler accepts.
"""

from __future__ import annotations

import enum
from typing import Dict, List, NamedTuple, Optional, Tuple


class Space(enum.Enum):
    READ_A = "read_a"
    READ_B = "read_b"
    WRITE_A = "write_a"
    WRITE_B = "write_b"

    @property
    def is_read(self) -> bool:
        return self in (Space.READ_A, Space.READ_B)

    @property
    def file(self) -> str:
        return "a" if self in (Space.READ_A, Space.WRITE_A) else "b"


class Unit(enum.Enum):
    """What a register address talks to.  Drives the checker's peripheral rules."""

    REGFILE = "regfile"          # physical registers 0-31
    ACCUMULATOR = "accumulator"  # r0-r3 and the r5 write ports
    UNIFORM = "uniform"          # uniform FIFO and its address register
    VARYING = "varying"
    ID = "id"                    # element_number / qpu_number
    NOP = "nop"
    FRAGMENT = "fragment"        # pixel coordinates, multisample / revolution flags
    TLB = "tlb"                  # tile buffer writes
    VPM = "vpm"                  # VPM data read/write
    VPM_SETUP = "vpm_setup"      # VPM block setups and VCD/VDW DMA setups
    DMA_LOAD = "dma_load"        # VCD (VDR) DMA start / busy / wait
    DMA_STORE = "dma_store"      # VDW DMA start / busy / wait
    MUTEX = "mutex"
    SFU = "sfu"
    TMU0 = "tmu0"
    TMU1 = "tmu1"
    TMU_NOSWAP = "tmu_noswap"
    HOST_INT = "host_int"


class RegInfo(NamedTuple):
    addr: int
    space: Space
    text: str
    dsl: str
    unit: Unit
    doc: str
    aliases: Tuple[str, ...] = ()

    @property
    def is_physical(self) -> bool:
        return self.addr < 32


_RA, _RB, _WA, _WB = Space.READ_A, Space.READ_B, Space.WRITE_A, Space.WRITE_B
_READS = (_RA, _RB)
_WRITES = (_WA, _WB)
_ALL = (_RA, _RB, _WA, _WB)

# (addr, spaces, text, dsl, unit, doc, aliases).  One row per name; a row listing two
# spaces means the same function is reachable through either file.
_IO_ROWS: List[Tuple[int, Tuple[Space, ...], str, str, Unit, str, Tuple[str, ...]]] = [
    (32, _READS, "unif", "uniform", Unit.UNIFORM, "next uniform from the program's uniform stream", ("uniform", "uniform_read")),
    (32, _WRITES, "r0", "r0", Unit.ACCUMULATOR, "accumulator r0", ("acc0",)),
    (33, _WRITES, "r1", "r1", Unit.ACCUMULATOR, "accumulator r1", ("acc1",)),
    (34, _WRITES, "r2", "r2", Unit.ACCUMULATOR, "accumulator r2", ("acc2",)),
    (35, _READS, "vary", "varying", Unit.VARYING, "next varying (fragment shaders); also writes r5", ("varying", "varying_read")),
    (35, _WRITES, "r3", "r3", Unit.ACCUMULATOR, "accumulator r3", ("acc3",)),
    (36, _WRITES, "tmu_noswap", "tmu_noswap", Unit.TMU_NOSWAP, "non-zero in element 0 disables the TMU0/TMU1 swap of QPUs 2 and 3", ("tmurs",)),
    (37, (_WA,), "r5quad", "r5quad", Unit.ACCUMULATOR, "r5: element 0 of each quad written to that quad", ("r5_pix0", "acc5quad")),
    (37, (_WB,), "r5rep", "r5rep", Unit.ACCUMULATOR, "r5: element 0 replicated to all elements", ("broadcast", "acc5rep")),
    (38, (_RA,), "elem_num", "element_number", Unit.ID, "SIMD element number 0..15", ("element_number",)),
    (38, (_RB,), "qpu_num", "qpu_number", Unit.ID, "number of this QPU 0..11", ("qpu_number",)),
    (38, _WRITES, "host_int", "host_interrupt", Unit.HOST_INT, "interrupt the host (the value must be non-zero)", ("irq", "host_interrupt")),
    (39, _ALL, "-", "null", Unit.NOP, "no read / no write", ("nop", "null")),
    # vc4asm's disassembler calls the B-side write "unif_addr_rel"; neither the guide nor
    # the addendum documents a difference, so both sides are the same register here.
    (40, _WRITES, "unif_addr", "uniforms_address", Unit.UNIFORM, "restart the uniform stream at element 0's address", ("uniforms_address", "unif_addr_rel")),
    (41, (_RA,), "x_coord", "x_pixel_coord", Unit.FRAGMENT, "pixel x coordinate (fragment shaders)", ("x_pixel_coord",)),
    (41, (_RB,), "y_coord", "y_pixel_coord", Unit.FRAGMENT, "pixel y coordinate (fragment shaders)", ("y_pixel_coord",)),
    (41, (_WA,), "quad_x", "quad_x", Unit.FRAGMENT, "quad x (fragment shaders)", ()),
    (41, (_WB,), "quad_y", "quad_y", Unit.FRAGMENT, "quad y (fragment shaders)", ()),
    (42, (_RA, _WA), "ms_flags", "ms_flags", Unit.FRAGMENT, "multisample flags", ("ms_mask",)),
    (42, (_RB, _WB), "rev_flag", "rev_flag", Unit.FRAGMENT, "revolution flag", ()),
    (43, _WRITES, "tlb_stencil", "tlb_stencil_setup", Unit.TLB, "TLB stencil setup", ("tlb_stencil_setup", "stencil")),
    (44, _WRITES, "tlb_z", "tlb_z", Unit.TLB, "TLB Z write", ("tlbz",)),
    (45, _WRITES, "tlb_color_ms", "tlb_color_ms", Unit.TLB, "TLB color write, multisample", ("tlbm", "tlb_colour_ms")),
    (46, _WRITES, "tlb_color_all", "tlb_color_all", Unit.TLB, "TLB color write, all samples", ("tlbc", "tlb_colour_all")),
    (47, _WRITES, "tlb_alpha_mask", "tlb_alpha_mask", Unit.TLB, "TLB alpha-mask write", ("tlbam",)),
    (48, _ALL, "vpm", "vpm", Unit.VPM, "VPM read FIFO / write FIFO", ()),
    (49, (_RA,), "vr_busy", "vpm_ld_busy", Unit.DMA_LOAD, "non-zero while a VCD DMA load runs", ("vpm_ld_busy",)),
    (49, (_RB,), "vw_busy", "vpm_st_busy", Unit.DMA_STORE, "non-zero while a VDW DMA store runs", ("vpm_st_busy",)),
    (49, (_WA,), "vr_setup", "vpmvcd_rd_setup", Unit.VPM_SETUP, "VPM read setup or VCD DMA load setup", ("vpmvcd_rd_setup", "vpm_rd_setup")),
    (49, (_WB,), "vw_setup", "vpmvcd_wr_setup", Unit.VPM_SETUP, "VPM write setup or VDW DMA store setup", ("vpmvcd_wr_setup", "vpm_wr_setup")),
    (50, (_RA,), "vr_wait", "vpm_ld_wait", Unit.DMA_LOAD, "stall until the VCD DMA load completes", ("vpm_ld_wait",)),
    (50, (_RB,), "vw_wait", "vpm_st_wait", Unit.DMA_STORE, "stall until the VDW DMA store completes", ("vpm_st_wait",)),
    (50, (_WA,), "vr_addr", "vpm_ld_addr", Unit.DMA_LOAD, "start a VCD DMA load from element 0's address", ("vpm_ld_addr",)),
    (50, (_WB,), "vw_addr", "vpm_st_addr", Unit.DMA_STORE, "start a VDW DMA store to element 0's address", ("vpm_st_addr",)),
    (51, _READS, "mutex", "mutex", Unit.MUTEX, "acquire the mutex (stalls until granted)", ("mutex_acq", "mutex_acquire")),
    (51, _WRITES, "mutex", "mutex", Unit.MUTEX, "release the mutex", ("mutex_rel", "mutex_release")),
    (52, _WRITES, "sfu_recip", "sfu_recip", Unit.SFU, "r4 = 1/x, three instructions later", ("recip",)),
    (53, _WRITES, "sfu_recipsqrt", "sfu_recipsqrt", Unit.SFU, "r4 = 1/sqrt(|x|), three instructions later", ("recipsqrt",)),
    (54, _WRITES, "sfu_exp", "sfu_exp2", Unit.SFU, "r4 = 2**x, three instructions later", ("exp", "sfu_exp2")),
    (55, _WRITES, "sfu_log", "sfu_log2", Unit.SFU, "r4 = log2(|x|), three instructions later", ("log", "sfu_log2")),
    (56, _WRITES, "tmu0_s", "tmu0_s", Unit.TMU0, "TMU0 s coordinate / direct address (retiring: starts the lookup)", ("tmu0s",)),
    (57, _WRITES, "tmu0_t", "tmu0_t", Unit.TMU0, "TMU0 t coordinate", ("tmu0t",)),
    (58, _WRITES, "tmu0_r", "tmu0_r", Unit.TMU0, "TMU0 r coordinate", ("tmu0r",)),
    (59, _WRITES, "tmu0_b", "tmu0_b", Unit.TMU0, "TMU0 lod bias", ("tmu0b",)),
    (60, _WRITES, "tmu1_s", "tmu1_s", Unit.TMU1, "TMU1 s coordinate / direct address (retiring: starts the lookup)", ("tmu1s",)),
    (61, _WRITES, "tmu1_t", "tmu1_t", Unit.TMU1, "TMU1 t coordinate", ("tmu1t",)),
    (62, _WRITES, "tmu1_r", "tmu1_r", Unit.TMU1, "TMU1 r coordinate", ("tmu1r",)),
    (63, _WRITES, "tmu1_b", "tmu1_b", Unit.TMU1, "TMU1 lod bias", ("tmu1b",)),
]


def _build() -> Dict[Space, Dict[int, RegInfo]]:
    table: Dict[Space, Dict[int, RegInfo]] = {s: {} for s in Space}
    for space in Space:
        f = space.file
        for addr in range(32):
            name = f"r{f}{addr}"
            table[space][addr] = RegInfo(addr, space, name, name, Unit.REGFILE,
                                         f"physical register {addr} of regfile {f.upper()}")
    for addr, spaces, text, dsl, unit, doc, aliases in _IO_ROWS:
        for space in spaces:
            assert addr not in table[space], f"duplicate row for {space} {addr}"
            table[space][addr] = RegInfo(addr, space, text, dsl, unit, doc, aliases)
    return table


REGISTERS: Dict[Space, Dict[int, RegInfo]] = _build()


def lookup(space: Space, addr: int) -> Optional[RegInfo]:
    """What ``addr`` means in ``space``; None for an address the guide leaves unmapped."""
    return REGISTERS[space].get(addr)


def raw_name(space: Space, addr: int) -> str:
    """The file-qualified numeric name (``ra37``, ``rb50``) that is valid for any address."""
    return f"r{space.file}{addr}"


# Names usable in the text syntax, per space: canonical names, aliases and raw names.
def _names() -> Dict[Space, Dict[str, int]]:
    out: Dict[Space, Dict[str, int]] = {s: {} for s in Space}
    for space, regs in REGISTERS.items():
        for addr, info in regs.items():
            for n in (info.text,) + info.aliases:
                out[space].setdefault(n, addr)
        for addr in range(64):
            out[space][raw_name(space, addr)] = addr
    return out


NAMES: Dict[Space, Dict[str, int]] = _names()

# Write addresses of accumulators (both files): r0-r3.  r5 writes are r5quad/r5rep (37).
ACC_WRITE_ADDRS = {32: 0, 33: 1, 34: 2, 35: 3}
R5_WRITE_ADDR = 37
NOP_ADDR = 39
# I/O writes that can stall the QPU: a semaphore instruction must not write them (p.33).
STALLING_WRITE_UNITS = frozenset({Unit.TLB, Unit.TMU0, Unit.TMU1, Unit.SFU})
# Reads of address 39 return leftovers of earlier reads (addendum, "Secret access to previous
# input values through the NOP register"); the generic name for such a read is "null".
NOP_READ_NAME = "null"
