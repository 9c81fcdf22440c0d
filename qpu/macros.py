"""Macros over a Kernel: VPM and DMA setups, DMA start/wait, TMU loads, SFU calls.

Two layers:

* pure functions that compute a setup word from NAMED, natural values
  (``vpm_read_setup(nrows=16, y=0, size=32)``), built with ``qpu.isa.vpm.encode_setup``
  (Reference Guide Section 7, Tables 32-37, p.57-60);
* functions that emit instructions into a Kernel (``setup_vpm_read(k, ...)``); the
  Kernel has thin methods with the same names (``k.setup_vpm_read(...)``), as in
  py-videocore.

Natural values: counts are the number of rows / elements (1..16 or 1..128 as the
field allows; the "0 => 16" encodings of the tables are handled by
``qpu.isa.vpm``), addresses are VPM rows ``y`` and columns ``x``.  A value out of
range raises ``AssemblyError`` naming the argument, its valid range and the
kernel's file:line.

VPM addresses (Tables 32/33 p.57-58): the QPU's VPM window is 16 words wide and at
most 64 rows high; horizontal vectors are a row (they start at column 0), vertical
vectors are 16 rows of one column starting at a row multiple of 16 (guide p.54).
8/16-bit accesses select a byte (``byte=0..3``) or half-word (``half=0..1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

from . import registers as _regs
from .errors import AssemblyError
from .isa.vpm import SetupFormat, encode_setup, field_map
from .registers import (
    Register,
    kernel_location,
    null,
    r4,
    tmu0_s,
    tmu1_s,
    vpm_ld_addr,
    vpm_ld_wait,
    vpm_st_addr,
    vpm_st_wait,
    vpmvcd_rd_setup,
    vpmvcd_wr_setup,
)

if TYPE_CHECKING:  # pragma: no cover
    # Any builder with the ALU and control-flow methods: qpu.builder.Kernel, or the mixin
    # that defines the Kernel's own VPM/DMA methods on top of these functions.
    from .builder_base import Issued
    from .builder_control import ControlFlow as Kernel

_SIZES = (8, 16, 32)


def _fail(func: str, message: str) -> AssemblyError:
    return AssemblyError(message, kernel_location(), func)


def _check(func: str, name: str, value: object, lo: int, hi: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        extra = f" ({why})" if why else ""
        raise _fail(func, f"{name}={value!r} out of range {lo}..{hi}{extra}")
    return value


def _field_range(fmt: SetupFormat, field: str) -> tuple[int, int]:
    f = field_map(fmt)[field]
    return f.min_value, f.max_value


def _check_field(func: str, name: str, value: object, fmt: SetupFormat, field: str, why: str = "") -> int:
    lo, hi = _field_range(fmt, field)
    return _check(func, name, value, lo, hi, why)


def _check_size(func: str, size: object) -> int:
    if size not in _SIZES or isinstance(size, bool):
        raise _fail(func, f"size={size!r}: must be 8, 16 or 32 (bits per element)")
    return int(size)  # type: ignore[call-overload]


def _vpm_block_addr(func: str, size: int, horizontal: bool, y: int, x: int, byte: int, half: int) -> int:
    """ADDR field of Tables 32/33 (p.57-58) from row y, column x and the byte/half select."""
    if size == 8:
        _check(func, "byte", byte, 0, 3, "byte of each 32-bit word for 8-bit access")
    elif byte:
        raise _fail(func, f"byte={byte!r}: a byte select only applies to size=8")
    if size == 16:
        _check(func, "half", half, 0, 1, "half-word of each 32-bit word for 16-bit access")
    elif half:
        raise _fail(func, f"half={half!r}: a half-word select only applies to size=16")
    if horizontal:
        _check(func, "y", y, 0, 63, "VPM row; the QPU window is 64 rows high")
        if x:
            raise _fail(func, f"x={x!r}: horizontal vectors are whole rows starting at column 0 (guide p.54); "
                              "x only applies to vertical access")
        # Horizontal 8-bit {Y[5:0],B[1:0]}, 16-bit {Y[5:0],H[0]}, 32-bit Y[5:0].
        return {8: y << 2 | byte, 16: y << 1 | half, 32: y}[size]
    _check(func, "y", y, 0, 63, "VPM row; the QPU window is 64 rows high")
    if y % 16:
        raise _fail(func, f"y={y!r}: vertical vectors start on a row multiple of 16 (guide p.54): 0, 16, 32 or 48")
    _check(func, "x", x, 0, 15, "VPM column")
    # Vertical 8-bit {Y[5:4],X[3:0],B[1:0]}, 16-bit {Y[5:4],X[3:0],H[0]}, 32-bit {Y[5:4],X[3:0]}.
    y54 = y >> 4
    return {8: y54 << 6 | x << 2 | byte, 16: y54 << 5 | x << 1 | half, 32: y54 << 4 | x}[size]


def _check_laned(func: str, size: int, laned: bool) -> int:
    if laned and size == 32:
        raise _fail(func, "laned=True: the laned/packed choice only applies to 8 and 16-bit access "
                          "(Tables 32/33: 'Ignored for 32-bit width')")
    return int(bool(laned))


def _modew(func: str, size: int, offset: int) -> int:
    """MODEW of Tables 34/36: 0 = 32-bit, 2|half = 16-bit, 4|byte = 8-bit."""
    if size == 32:
        if offset:
            raise _fail(func, f"offset={offset!r}: a byte/half-word offset only applies to size 8 or 16")
        return 0
    if size == 16:
        return 2 | _check(func, "offset", offset, 0, 1, "half-word offset for size=16")
    return 4 | _check(func, "offset", offset, 0, 3, "byte offset for size=8")


# --------------------------------------------------------------------------------------------
# Setup words
# --------------------------------------------------------------------------------------------

def vpm_read_setup(nrows: int, *, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True,
                   laned: bool = False, stride: int = 1, byte: int = 0, half: int = 0) -> int:
    """VPM generic block read setup word (Table 33, p.58): read ``nrows`` vectors (1..16)
    starting at row ``y`` (column ``x`` if vertical); ``stride`` (1..64) is added to the
    address after each vector."""
    func = "vpm_read_setup"
    fmt = SetupFormat.VPM_READ
    nrows = _check_field(func, "nrows", nrows, fmt, "num", "number of vectors to read")
    stride = _check_field(func, "stride", stride, fmt, "stride", "added to the address after each vector")
    size = _check_size(func, size)
    return encode_setup(fmt, num=nrows, stride=stride, horiz=int(bool(horizontal)),
                        laned=_check_laned(func, size, laned), size=_SIZES.index(size),
                        addr=_vpm_block_addr(func, size, horizontal, y, x, byte, half))


def vpm_write_setup(*, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True, laned: bool = False,
                    stride: int = 1, byte: int = 0, half: int = 0) -> int:
    """VPM generic block write setup word (Table 32, p.57): vectors written to ``vpm``
    go to row ``y`` (column ``x`` if vertical), then ``stride`` (1..64) rows further."""
    func = "vpm_write_setup"
    fmt = SetupFormat.VPM_WRITE
    stride = _check_field(func, "stride", stride, fmt, "stride", "added to the address after each vector")
    size = _check_size(func, size)
    return encode_setup(fmt, stride=stride, horiz=int(bool(horizontal)),
                        laned=_check_laned(func, size, laned), size=_SIZES.index(size),
                        addr=_vpm_block_addr(func, size, horizontal, y, x, byte, half))


def _dma_vpm_addr(func: str, fmt: SetupFormat, field: str, y: int, x: int) -> int:
    # VDW VPMBASE {Y[6:0],X[3:0]} (Table 34) and VDR ADDRXY (Table 36, printed as {Y[5:0],X[3:0]}
    # but 11 bits wide): y is limited by the field width, 0..127.
    hi = _field_range(fmt, field)[1] >> 4
    _check(func, "y", y, 0, hi, f"VPM row of the first word; {field} holds {{Y, X[3:0]}}")
    _check(func, "x", x, 0, 15, "VPM column of the first word")
    return y << 4 | x


def dma_load_setup(nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32, offset: int = 0,
                   horizontal: bool = True, vpitch: int = 1, mpitch: int = 3) -> int:
    """VCD DMA load (VDR) basic setup word (Table 36, p.59).

    Loads ``nrows`` (1..16) rows of ``ncols`` (1..16) elements of ``size`` bits from
    memory into the VPM at row ``y``, column ``x``, horizontally (each memory row to a
    VPM row) or vertically (to a VPM column).  ``vpitch`` (1..16) is added to the VPM
    address after each row; memory rows are ``8 * 2**mpitch`` bytes apart (``mpitch``
    1..15; 0 takes the pitch from :func:`dma_load_stride_setup`).  ``offset`` selects
    the starting half-word (size 16) or byte (size 8).
    """
    func = "dma_load_setup"
    fmt = SetupFormat.VDR_BASIC
    size = _check_size(func, size)
    return encode_setup(
        fmt, modew=_modew(func, size, offset),
        mpitch=_check_field(func, "mpitch", mpitch, fmt, "mpitch", "memory pitch 8 * 2**mpitch bytes; 0 = extended"),
        rowlen=_check_field(func, "ncols", ncols, fmt, "rowlen", "row length in elements"),
        nrows=_check_field(func, "nrows", nrows, fmt, "nrows", "number of rows in memory"),
        vpitch=_check_field(func, "vpitch", vpitch, fmt, "vpitch", "VPM row-to-row pitch"),
        vert=int(not horizontal), addrxy=_dma_vpm_addr(func, fmt, "addrxy", y, x))


def dma_load_stride_setup(stride: int) -> int:
    """VDR extended memory stride setup word (Table 37, p.60): memory row pitch in bytes,
    used by a load whose basic setup has ``mpitch=0``."""
    fmt = SetupFormat.VDR_STRIDE
    return encode_setup(fmt, mpitchb=_check_field("dma_load_stride_setup", "stride", stride, fmt, "mpitchb",
                                                  "memory row pitch in bytes"))


def dma_store_setup(nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32, offset: int = 0,
                    horizontal: bool = True) -> int:
    """VCD DMA store (VDW) basic setup word (Table 34, p.58).

    Stores ``nrows`` (1..128) rows of ``ncols`` (1..128) elements of ``size`` bits from
    the VPM (starting at row ``y``, column ``x``; horizontal: rows, vertical: columns) to
    memory.  Memory rows are consecutive unless a stride is set with
    :func:`dma_store_stride_setup`.  ``offset`` selects the half-word/byte (packed only).
    """
    func = "dma_store_setup"
    fmt = SetupFormat.VDW_BASIC
    size = _check_size(func, size)
    return encode_setup(
        fmt, units=_check_field(func, "nrows", nrows, fmt, "units", "number of rows in memory"),
        depth=_check_field(func, "ncols", ncols, fmt, "depth", "row length in elements"),
        laned=0, horiz=int(bool(horizontal)), vpmbase=_dma_vpm_addr(func, fmt, "vpmbase", y, x),
        modew=_modew(func, size, offset))


def dma_store_stride_setup(stride: int, blockmode: bool = False) -> int:
    """VDW stride setup word (Table 35, p.59): ``stride`` bytes from the end of one memory row
    to the start of the next, 0..65535 (16-bit field per the vc4asm addendum, not 13 as
    printed); ``blockmode`` packs the rows consecutively in the VPM."""
    fmt = SetupFormat.VDW_STRIDE
    return encode_setup(fmt, stride=_check_field("dma_store_stride_setup", "stride", stride, fmt, "stride",
                                                 "bytes between memory rows; 16-bit field per the addendum"),
                        blockmode=int(bool(blockmode)))


# --------------------------------------------------------------------------------------------
# Emitting macros
# --------------------------------------------------------------------------------------------

def setup_vpm_read(k: Kernel, nrows: int, *, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True,
                   laned: bool = False, stride: int = 1, byte: int = 0, half: int = 0) -> None:
    """``ldi vr_setup, vpm_read_setup(...)``: the next ``nrows`` reads of ``vpm`` return these vectors."""
    k.ldi(vpmvcd_rd_setup, vpm_read_setup(nrows, y=y, x=x, size=size, horizontal=horizontal, laned=laned,
                                          stride=stride, byte=byte, half=half))


def setup_vpm_write(k: Kernel, *, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True,
                    laned: bool = False, stride: int = 1, byte: int = 0, half: int = 0) -> None:
    """``ldi vw_setup, vpm_write_setup(...)``: later writes to ``vpm`` go to these vectors."""
    k.ldi(vpmvcd_wr_setup, vpm_write_setup(y=y, x=x, size=size, horizontal=horizontal, laned=laned,
                                           stride=stride, byte=byte, half=half))


def setup_dma_load(k: Kernel, nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32,
                   offset: int = 0, horizontal: bool = True, vpitch: int = 1, mpitch: int = 3) -> None:
    """``ldi vr_setup, dma_load_setup(...)``; start the load with :func:`start_dma_load`."""
    k.ldi(vpmvcd_rd_setup, dma_load_setup(nrows, ncols, y=y, x=x, size=size, offset=offset,
                                          horizontal=horizontal, vpitch=vpitch, mpitch=mpitch))


def _stride_from_register(k: Kernel, func: str, setup_reg: Register, base: int, stride: Register,
                          tmp: Optional[Register]) -> None:
    if tmp is None:
        raise _fail(func, f"a stride held in a register ({stride.name}) is OR-ed with the setup ID in a "
                          "scratch register: pass tmp=<a register this macro may overwrite>")
    if tmp == stride:
        raise _fail(func, f"tmp={tmp.name} is also the stride register: choose another scratch register")
    k.ldi(tmp, base)
    k.bor(setup_reg, tmp, stride)


def setup_dma_load_stride(k: Kernel, stride: Union[int, Register], *, tmp: Optional[Register] = None) -> None:
    """Set the DMA load memory pitch in bytes (used when ``setup_dma_load(mpitch=0)``).

    ``stride`` is an int (checked, 0..8191) or a register holding it (not checked; then
    ``tmp`` must name a scratch register: ``ldi tmp, 9<<28 ; or vr_setup, tmp, stride``).
    """
    if isinstance(stride, Register):
        _stride_from_register(k, "setup_dma_load_stride", vpmvcd_rd_setup, dma_load_stride_setup(0), stride, tmp)
    else:
        k.ldi(vpmvcd_rd_setup, dma_load_stride_setup(stride))


def start_dma_load(k: Kernel, addr: Register) -> Issued:
    """``mov vr_addr, addr``: start the set-up DMA load from the address in element 0 (guide p.56)."""
    return k.mov(vpm_ld_addr, addr)


def wait_dma_load(k: Kernel) -> Issued:
    """``mov -, vr_wait``: stall until the DMA load has completed (guide p.56)."""
    return k.mov(null, vpm_ld_wait)


def setup_dma_store(k: Kernel, nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32,
                    offset: int = 0, horizontal: bool = True) -> None:
    """``ldi vw_setup, dma_store_setup(...)``; start the store with :func:`start_dma_store`."""
    k.ldi(vpmvcd_wr_setup, dma_store_setup(nrows, ncols, y=y, x=x, size=size, offset=offset,
                                           horizontal=horizontal))


def setup_dma_store_stride(k: Kernel, stride: Union[int, Register], blockmode: bool = False, *,
                           tmp: Optional[Register] = None) -> None:
    """Set the DMA store stride (bytes between memory rows) and block mode.

    ``stride`` is an int (checked, 0..65535) or a register holding it (not checked; then
    ``tmp`` must name a scratch register: ``ldi tmp, 3<<30|blockmode<<16 ; or vw_setup, tmp, stride``).
    """
    if isinstance(stride, Register):
        _stride_from_register(k, "setup_dma_store_stride", vpmvcd_wr_setup, dma_store_stride_setup(0, blockmode),
                              stride, tmp)
    else:
        k.ldi(vpmvcd_wr_setup, dma_store_stride_setup(stride, blockmode))


def start_dma_store(k: Kernel, addr: Register) -> Issued:
    """``mov vw_addr, addr``: start the set-up DMA store to the address in element 0 (guide p.56)."""
    return k.mov(vpm_st_addr, addr)


def wait_dma_store(k: Kernel) -> Issued:
    """``mov -, vw_wait``: stall until the DMA store has completed (guide p.56)."""
    return k.mov(null, vpm_st_wait)


def tmu_load(k: Kernel, addr: Register, *, tmu: int = 0, dst: Optional[Register] = None) -> None:
    """Direct memory lookup through a TMU: each element loads the 32-bit word at its address.

    Emits ``mov tmuN_s, addr`` (writing s starts the lookup, guide p.23) then ``nop ; ldtmuN``
    (the data arrives in r4 for the next instruction), then ``mov dst, r4`` if ``dst`` is given.
    """
    if tmu not in (0, 1) or isinstance(tmu, bool):
        raise _fail("tmu_load", f"tmu={tmu!r}: there are two TMUs, 0 and 1")
    k.mov(tmu0_s if tmu == 0 else tmu1_s, addr)
    if tmu == 0:
        k.ldtmu0()
    else:
        k.ldtmu1()
    if dst is not None:
        k.mov(dst, r4)


def _sfu(k: Kernel, unit: Register, dst: Register, src: Register) -> None:
    # The result is in r4 for the third instruction after the write; r4 must not be touched in
    # the two instructions in between (guide p.23).
    k.mov(unit, src)
    k.nop()
    k.nop()
    k.mov(dst, r4)


def sfu_recip(k: Kernel, dst: Register, src: Register) -> None:
    """``dst = 1/src`` via the SFU (write, two nops, read r4)."""
    _sfu(k, _regs.sfu_recip, dst, src)


def sfu_recipsqrt(k: Kernel, dst: Register, src: Register) -> None:
    """``dst = 1/sqrt(|src|)`` via the SFU (README facts: RECIPSQRT(x) = 1/sqrt(|x|))."""
    _sfu(k, _regs.sfu_recipsqrt, dst, src)


def sfu_exp2(k: Kernel, dst: Register, src: Register) -> None:
    """``dst = 2**src`` via the SFU."""
    _sfu(k, _regs.sfu_exp2, dst, src)


def sfu_log2(k: Kernel, dst: Register, src: Register) -> None:
    """``dst = log2(|src|)`` via the SFU."""
    _sfu(k, _regs.sfu_log2, dst, src)


__all__ = [
    "vpm_read_setup", "vpm_write_setup", "dma_load_setup", "dma_load_stride_setup", "dma_store_setup",
    "dma_store_stride_setup", "setup_vpm_read", "setup_vpm_write", "setup_dma_load", "setup_dma_load_stride",
    "start_dma_load", "wait_dma_load", "setup_dma_store", "setup_dma_store_stride", "start_dma_store",
    "wait_dma_store", "tmu_load", "sfu_recip", "sfu_recipsqrt", "sfu_exp2", "sfu_log2",
]
