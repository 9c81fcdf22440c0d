"""VPM QPU reads/writes and VCD/VDW DMA, against numpy models written from the guide.

The references here view the VPM as numpy arrays (64 rows x 16 little-endian words)
and take 8/16-bit vectors as byte/half-word views of a 16-word vector: "packed"
= 16 consecutive bytes/halves, "laned" = the same byte/half of each word (guide
p.53, Figures 8 and 9).  DMA references slice 2D numpy arrays with the pitches of
Tables 34-37.  The tests inspect the emulated VPM directly (``v3d._vpm``) so that
each direction is checked on its own.
"""

from __future__ import annotations

import numpy as np
import pytest
from emu_harness import END, Harness

from qpu.isa.vpm import SetupFormat, encode_setup

RNG = np.random.default_rng(1234)


def vpm_image(h: Harness) -> np.ndarray:
    return h.v3d._vpm[:64 * 16].reshape(64, 16)


def fill_vpm(h: Harness, img: np.ndarray) -> None:
    h.v3d._vpm[:64 * 16] = img.reshape(-1)
    h.v3d._vpmd[:64 * 16] = 15


def vector_words(img: np.ndarray, horiz: int, y: int, x: int) -> np.ndarray:
    """The 16 words of a 32-bit VPM vector: row y, or column x from row y (multiple of 16)."""
    return img[y, :].copy() if horiz else img[y:y + 16, x].copy()


def sub_vector(words: np.ndarray, size: int, laned: int, sel: int) -> np.ndarray:
    """Element values of an 8/16/32-bit vector selected from 16 words (zero-extended)."""
    if size == 2:
        return words.astype(np.int64)
    if size == 1:
        halves = words.astype("<u4").view("<u2")           # 32 halves, little endian
        return (halves.reshape(16, 2)[:, sel] if laned else halves[16 * sel:16 * sel + 16]).astype(np.int64)
    b = words.astype("<u4").view(np.uint8)                    # 64 bytes
    return (b.reshape(16, 4)[:, sel] if laned else b[16 * sel:16 * sel + 16]).astype(np.int64)


def addr_of(size: int, horiz: int, y: int, x: int, sel: int) -> int:
    """ADDR field of Tables 32/33 for a vector at (y, x) with byte/half select."""
    sub_bits = {0: 2, 1: 1, 2: 0}[size]
    base = (y & 63) if horiz else (((y >> 4) & 3) << 4) | x
    return (base << sub_bits) | sel


READ_CASES = [
    # size, laned, horiz, y, x, sel
    (2, 0, 1, 5, 0, 0),
    (2, 0, 0, 16, 7, 0),
    (1, 1, 1, 3, 0, 1),
    (1, 0, 1, 3, 0, 1),
    (1, 0, 0, 16, 2, 0),
    (0, 1, 1, 9, 0, 2),
    (0, 0, 1, 9, 0, 3),
    (0, 1, 0, 0, 15, 1),
    (0, 0, 0, 16, 4, 2),
]


@pytest.mark.parametrize("size,laned,horiz,y,x,sel", READ_CASES)
def test_vpm_read_modes(size, laned, horiz, y, x, sel):
    h = Harness()
    img = RNG.integers(0, 2 ** 32, size=(64, 16), dtype=np.uint64).astype(np.uint32)
    fill_vpm(h, img)
    addr = addr_of(size, horiz, y, x, sel)
    rd = encode_setup(SetupFormat.VPM_READ, num=2, stride=1, horiz=horiz, laned=laned, size=size, addr=addr)
    wr = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=48)
    src = f"""
        ldi vr_setup, {rd:#x}
        ldi vw_setup, {wr:#x}
        mov r0, vpm
        mov r1, vpm
        mov vpm, r0
        mov vpm, r1
    """
    h.run(src + END)
    got = vpm_image(h)
    # the second vector follows with ADDR + 1 (stride 1): the next byte/half/row or column
    addr2 = addr + 1
    sub_bits = {0: 2, 1: 1, 2: 0}[size]
    sel2 = addr2 & ((1 << sub_bits) - 1)
    v2 = addr2 >> sub_bits
    y2, x2 = ((v2 & 63), 0) if horiz else (((v2 >> 4) & 3) * 16, v2 & 15)
    exp1 = sub_vector(vector_words(img, horiz, y, x), size, laned, sel)
    exp2 = sub_vector(vector_words(img, horiz, y2, x2), size, laned, sel2)
    np.testing.assert_array_equal(got[48].astype(np.int64), exp1)
    np.testing.assert_array_equal(got[49].astype(np.int64), exp2)


WRITE_CASES = [
    (2, 0, 1, 7, 0, 0),
    (2, 0, 0, 32, 9, 0),
    (1, 1, 1, 2, 0, 1),
    (1, 0, 1, 2, 0, 1),
    (0, 1, 1, 4, 0, 3),
    (0, 0, 1, 4, 0, 2),
    (0, 0, 0, 16, 3, 1),
]


@pytest.mark.parametrize("size,laned,horiz,y,x,sel", WRITE_CASES)
def test_vpm_write_modes(size, laned, horiz, y, x, sel):
    h = Harness()
    img = RNG.integers(0, 2 ** 32, size=(64, 16), dtype=np.uint64).astype(np.uint32)
    fill_vpm(h, img)
    addr = addr_of(size, horiz, y, x, sel)
    wr = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=horiz, laned=laned, size=size, addr=addr)
    src = f"""
        ldi vw_setup, {wr:#x}
        ldi r1, 0x0badf00d
        add r0, elem_num, r1
        mov vpm, r0
    """
    h.run(src + END)
    values = (np.arange(16) + 0x0BADF00D).astype(np.uint32)
    exp = img.copy()
    # apply the write through the same views the reference reads with
    if horiz:
        words = exp[y, :]
    else:
        words = exp[y:y + 16, x]
    w = words.copy()
    if size == 2:
        w[:] = values
    elif size == 1:
        halves = w.view("<u2")
        (halves.reshape(16, 2)[:, sel] if laned else halves[16 * sel:16 * sel + 16])[:] = values & 0xFFFF
    else:
        b = w.view(np.uint8)
        (b.reshape(16, 4)[:, sel] if laned else b[16 * sel:16 * sel + 16])[:] = values & 0xFF
    if horiz:
        exp[y, :] = w
    else:
        exp[y:y + 16, x] = w
    np.testing.assert_array_equal(vpm_image(h), exp)


def test_vpm_write_stride_and_wrap_beyond_row_63():
    h = Harness()
    fill_vpm(h, np.zeros((64, 16), np.uint32))
    wr = encode_setup(SetupFormat.VPM_WRITE, stride=3, horiz=1, laned=0, size=2, addr=60)
    src = f"""
        ldi vw_setup, {wr:#x}
        mov vpm, elem_num
        add vpm, elem_num, 1
        add vpm, elem_num, 2
    """
    h.run(src + END)
    img = vpm_image(h)
    lane = np.arange(16)
    np.testing.assert_array_equal(img[60], lane)
    np.testing.assert_array_equal(img[63], lane + 1)
    np.testing.assert_array_equal(img[2], lane + 2)      # (60 + 6) mod 64 (guide p.55: Y wraps)


# --------------------------------------------------------------------------------------------
# DMA
# --------------------------------------------------------------------------------------------

def vdr(**kw) -> int:
    fields = dict(modew=0, mpitch=0, rowlen=16, nrows=1, vpitch=1, vert=0, addrxy=0)
    fields.update(kw)
    return encode_setup(SetupFormat.VDR_BASIC, **fields)


def run_dma(h: Harness, setups, addr_reg_value_bus: int, store: bool) -> None:
    lines = ["mov ra0, unif"]
    reg = "vw_setup" if store else "vr_setup"
    lines += [f"ldi {reg}, {s:#x}" for s in setups]
    lines += ["mov vw_addr, ra0" if store else "mov vr_addr, ra0", "mov -, vw_wait" if store else "mov -, vr_wait"]
    h.run("\n".join(lines) + END, [addr_reg_value_bus])


@pytest.mark.parametrize("vert", [0, 1])
def test_dma_load_block_with_pitches(vert):
    h = Harness()
    fill_vpm(h, np.zeros((64, 16), np.uint32))
    mem_bus, mem = h.alloc((40, 64))
    mem[:] = RNG.integers(0, 2 ** 32, size=mem.shape, dtype=np.uint64).astype(np.uint32)
    nrows, rowlen, mpitch, vpitch, y, x = 5, 7, 5, 3, 4, 6       # pitch 8 * 2**5 = 256 bytes = 64 words
    if vert:
        nrows, rowlen, vpitch, y, x = 3, 12, 16, 2, 9
    s = vdr(nrows=nrows, rowlen=rowlen, mpitch=mpitch, vpitch=vpitch, vert=vert, addrxy=(y << 4) | x)
    run_dma(h, [s], mem_bus + 4 * 3, store=False)
    exp = np.zeros((64, 16), np.uint32)
    rows = mem.reshape(-1)[3:3 + 64 * nrows].reshape(nrows, -1)[:, :rowlen]   # pitch 64 words
    for r in range(nrows):
        if vert:
            exp[y + r * vpitch:y + r * vpitch + rowlen, x] = rows[r]
        else:
            exp[y + r * vpitch, x:x + rowlen] = rows[r]
    np.testing.assert_array_equal(vpm_image(h), exp)


def test_dma_load_extended_memory_stride():
    h = Harness()
    fill_vpm(h, np.zeros((64, 16), np.uint32))
    mem_bus, mem = h.alloc(4096)
    mem[:] = np.arange(4096, dtype=np.uint32) * 3
    stride = encode_setup(SetupFormat.VDR_STRIDE, mpitchb=100)      # bytes, not a power of two
    basic = vdr(nrows=4, rowlen=16, mpitch=0, vpitch=1, addrxy=(10 << 4))
    run_dma(h, [stride, basic], mem_bus, store=False)
    exp = np.zeros((64, 16), np.uint32)
    for r in range(4):
        exp[10 + r] = mem[25 * r:25 * r + 16]
    np.testing.assert_array_equal(vpm_image(h), exp)


@pytest.mark.parametrize("horiz,blockmode", [(1, 0), (0, 0), (1, 1)])
def test_dma_store_block_with_stride(horiz, blockmode):
    h = Harness()
    img = RNG.integers(0, 2 ** 32, size=(64, 16), dtype=np.uint64).astype(np.uint32)
    fill_vpm(h, img)
    out_bus, out = h.alloc(4096, fill=0)
    units, depth, y, x, gap = 6, 10, 8, 3, 24          # 24 bytes between rows in memory
    if not horiz:
        units, depth, y, x = 5, 16, 16, 2
    basic = encode_setup(SetupFormat.VDW_BASIC, units=units, depth=depth, laned=0, horiz=horiz,
                         vpmbase=(y << 4) | x, modew=0)
    stride = encode_setup(SetupFormat.VDW_STRIDE, blockmode=blockmode, stride=gap)
    run_dma(h, [basic, stride], out_bus, store=True)
    exp = np.zeros(4096, np.uint32)
    pitch = depth + gap // 4
    flat = img.reshape(-1)
    for u in range(units):
        if blockmode:
            row = flat[y * 16 + x + u * depth: y * 16 + x + (u + 1) * depth]
        elif horiz:
            row = img[y + u, x:x + depth]
        else:
            row = img[y:y + depth, x + u]
        exp[u * pitch:u * pitch + depth] = row
    np.testing.assert_array_equal(out, exp)


def test_dma_store_stride_field_is_16_bits():
    # a gap of 0x2000 bytes needs bit 13 of STRIDE: 13 bits per Table 35, 16 per the addendum
    h = Harness()
    img = np.arange(64 * 16, dtype=np.uint32).reshape(64, 16)
    fill_vpm(h, img)
    out_bus, out = h.alloc(8192, fill=0)
    basic = encode_setup(SetupFormat.VDW_BASIC, units=2, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    stride = encode_setup(SetupFormat.VDW_STRIDE, blockmode=0, stride=0x2000 - 64)
    run_dma(h, [basic, stride], out_bus, store=True)
    np.testing.assert_array_equal(out[0:16], img[0])
    np.testing.assert_array_equal(out[2048:2064], img[1])


def test_py_videocore_style_round_trip():
    # the hardware-tested sequence of py-videocore tests/test_vpm.py: 4 DMA loads started back to
    # back (they queue), VPM read of rows 16-31, VPM write to rows 0-15, DMA store of rows 0-15
    h = Harness()
    x_bus, x = h.alloc((64, 16))
    x[:] = np.arange(64 * 16, dtype=np.uint32).reshape(64, 16)
    y_bus, y = h.alloc((16, 16), fill=0)
    lines = ["mov ra0, unif", "mov ra1, unif", "ldi rb0, 1024"]
    for i in range(4):
        lines += [f"ldi vr_setup, {vdr(nrows=16, rowlen=16, mpitch=3, vpitch=1, addrxy=(16 * i) << 4):#x}",
                  "mov vr_addr, ra0", "add ra0, ra0, rb0"]
    rd = encode_setup(SetupFormat.VPM_READ, num=16, stride=1, horiz=1, laned=0, size=2, addr=16)
    wr = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    st = encode_setup(SetupFormat.VDW_BASIC, units=16, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    lines += ["mov -, vr_wait", f"ldi vr_setup, {rd:#x}", f"ldi vw_setup, {wr:#x}"]
    lines += ["mov r0, vpm", "mov vpm, r0"] * 16
    lines += [f"ldi vw_setup, {st:#x}", "mov vw_addr, ra1", "mov -, vw_wait"]
    with pytest.warns(Warning, match="dma-load-busy"):
        h.run("\n".join(lines) + END, [x_bus, y_bus])
    np.testing.assert_array_equal(y, x[16:32])
