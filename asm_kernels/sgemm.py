"""SGEMM on the VideoCore IV QPUs: ``C = alpha * A @ B + beta * C``, row-major float32.

``sgemm_kernel(k, ...)`` is the QPU program (this package's DSL); ``sgemm(drv, A, B, ...)``
is the host side: it lays the operands out in GPU memory, splits the work over up to 12
QPUs and returns ``(C, RunReport)``.

Algorithm
=========
C is cut into tiles of 16 rows x 64 columns.  A QPU computes one tile at a time, holding
it in its 64 physical registers: tile column ``c`` (16 rows, one per SIMD lane) lives in
``ra[c // 2]`` (c even) or ``rb[c // 2]`` (c odd), so consecutive columns alternate
between the two register files and every instruction can read one of each.

For each k, the tile gets the rank-1 update ``tile[:, c] += A[rows, k] * B[k, c]``:

* the A column (16 values, one per row = lane) comes from a TMU gather into r4.  The
  host packs A in blocks of 16 rows stored column after column, so a gather reads one
  64-byte line (the TMU serves lanes in element order, addendum "TMU cache": a gather
  of 16 rows of row-major A would touch 16 lines);
* the 64 B values come one by one from the **uniform stream**: a uniform read gives the
  same 32-bit value to all 16 lanes, exactly the broadcast the update needs.  The host
  packs each 64-column panel of B as K rows of 64 floats, so the stream simply runs
  through the panel: no uniform-address write inside the loop;
* each column costs one dual-issue instruction (py-videocore's SGEMM, whose README
  records ~8 GFLOPS on a Pi, uses the same broadcast-by-uniform scheme)::

      fadd col[c-1], col[c-1], r0 ; fmul r0, r4, unif

  The mul ALU makes the product for column c while the add ALU adds the product the
  previous instruction made to column c-1: r0 is an accumulator, readable right
  after it is written, whereas the ``col`` registers are read 64 instructions after
  their last write (guide p.18: no forwarding from the register files).

Data flow per tile
==================
1. The uniform stream points at the tile's *record* (host-written, ``RECORD_FIELDS``):
   the kernel reads the A block address, the loop count and the B panel address, and
   points the stream at the B panel.
2. k loop: ``unroll`` k-steps of 64 dual-issue instructions per iteration, plus
   ``unroll + 2`` instructions of overhead: one TMU request per k-step (``add r1, r1,
   r5 ; mov tmu0_s, r1``), the counter, and the branch, whose three delay slots hold
   the last three dual-issue instructions.  TMU requests run 4 columns ahead: 4 in
   flight is the most the addendum (Section 4: TMU FIFO) found reliable, and three
   k-steps (~800 cycles) hide the latency.  The ``ldtmu0`` that brings column k+1 rides
   on the last instruction of k-step k: that instruction still reads the old r4 (data
   arrives "for the instruction following the one which signalled the read", guide
   p.19; py-videocore's SGEMM relies on the same), so it costs no instruction.
3. beta != 0 only: ``tile = alpha * tile + beta * C_old``; the host packs the old C tile
   by tile, column after column, and the TMU gathers it (outside the mutex, no VPM).
4. Store, under the V3D mutex (all QPUs share VPM rows 0-63): each 16x16 block of the
   tile goes into the VPM as 16 vertical vectors (VPM rows 16b..16b+15, block column c
   in VPM column c) and out by one VDW DMA of 16 rows of 16 words, overlapped with
   writing the next block (py-videocore's SGEMM stores the same way; vertical writes
   and 16-row horizontal DMA stores are hardware-tested there).  The same instructions
   clear the registers for the next tile (``xor col, col, col`` on the add ALU beside the
   VPM write on the mul ALU); with beta == 0 that write also applies alpha.
5. ``next`` links the QPU's records (0 after its last tile).  At the end every QPU but
   the first increments semaphore 0; the first QPU waits for all of them, then raises
   the one host interrupt (GPU_FFT's and py-videocore's multi-QPU convention: what the
   firmware waits for is undocumented, and this is safe whatever it is).

Register allocation
===================
==========  ======================================================================
register    use
==========  ======================================================================
ra0..ra31   tile columns 0, 2, .., 62 (``_column``)
rb0..rb31   tile columns 1, 3, .., 63
r0          k loop: the product made by the previous instruction; else scratch
r1          k loop: per-lane TMU address of the next A column to request;
            beta != 0: 64 (bytes per packed C column); store: output address (element 0)
r2          k loop: iterations left; epilogue: alpha; after the last tile: role
r3          address of the tile's record, until the epilogue points the stream back
            at it; then scratch, the per-lane TMU address of the old C (beta != 0)
r4          A column of the current k (TMU); old C column (beta != 0)
r5          k loop: 64 (bytes per packed A column, broadcast); beta != 0: beta
==========  ======================================================================

Cost (per QPU and 16x64 tile; K' = K rounded up to ``unroll``)
================================================================
k loop: ``(64 * unroll + unroll + 2) * K' / unroll`` instructions, of which 97.7% are
fmul+fadd pairs with ``unroll = 4`` (97.0% with 2).  The default unroll is the largest
that keeps the whole kernel within the slice's 4 KiB instruction cache (addendum, cache
table), so that the once-per-tile code does not evict the loop: 4 with beta == 0 (432
instructions), 2 with beta != 0 (499; with 4 it would be 629).  Per tile: ~85 more
instructions (~290 with beta != 0) plus the four DMA stores, which hold the mutex for
about 1100 cycles in the emulator's timing model.

Host layout (``sgemm``)
=======================
The operands are copied into a reusable per-Driver workspace (the Driver's allocator
cannot free), zero-padded to whole tiles so the kernel has no edge cases: A as blocks of
16 rows x K' (column-major within a block), B as panels of K' x 64, the old C (beta != 0)
as tiles of 64 columns x 16, the output as a row-major (M' x N') buffer (M' a multiple
of 16, N' of 64), of which the M x N corner is copied back.  These copies are needed
anyway when the operands are numpy arrays; packing during them costs about the same.
"""

from __future__ import annotations

import functools
import struct
import weakref
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from qpu.dsl import (
    BranchCond,
    Kernel,
    Program,
    Register,
    Signal,
    assemble,
    element_number,
    null,
    r0,
    r1,
    r2,
    r3,
    r4,
    r5,
    r5rep,
    ra,
    rb,
    tmu0_s,
    uniform,
    uniforms_address,
    vpm,
)

__all__ = [
    "sgemm", "sgemm_kernel", "sgemm_program", "plan_sgemm", "SgemmPlan", "gflops", "issue_stats",
    "TILE_ROWS", "TILE_COLS", "DEFAULT_UNROLL", "DEFAULT_UNROLL_BETA", "default_unroll", "RECORD_FIELDS",
]

TILE_ROWS = 16          # SIMD lanes: one tile row per lane
TILE_COLS = 64          # one column per physical register (32 in regfile A, 32 in B)
BLOCK = 16              # the tile is stored as 16x16 blocks (one VPM block each)
PREFETCH = 4            # TMU requests in flight: the most the addendum found reliable
DEFAULT_UNROLL = 4      # k-steps per loop iteration (see "Cost" above) ...
DEFAULT_UNROLL_BETA = 2  # ... and with beta != 0, whose longer epilogue leaves less icache room
MAX_UNROLL = 6          # a loop of 6 * 64 + 8 instructions (3.1 KiB) still fits the 4 KiB icache alone
DONE_SEMAPHORE = 0      # workers release it once each; the first QPU acquires it for each worker

A_COLUMN_BYTES = 4 * TILE_ROWS   # a packed column of A (or of the old C): 16 floats, one 64-byte line

# The record of one tile, as the uniform stream reads it (one 32-bit word each).
RECORD_FIELDS: Tuple[str, ...] = (
    "self",          # address of this record: the kernel comes back to it for the epilogue fields
    "a_address",     # address of the packed A block of the tile's rows (K' columns of 16 floats)
    "loop_count",    # K' / unroll: iterations of the k loop
    "b_address",     # address of the packed B panel of the tile's columns (K' rows of 64 floats)
    "c_in_address",  # (beta != 0) address of the old C tile, packed as 64 columns of 16 floats
    "beta",          # (beta != 0) float32 bits
    "alpha",         # float32 bits
    "c_address",     # address of C[row0, col0] in the row-major output buffer
    "c_gap",         # output row pitch - 64: the VDW stride (bytes from the end of a stored row to the next)
    "role",          # after the last tile: -1 worker, else (first QPU) the number of workers to wait for
    "next",          # address of this QPU's next record, 0 after its last tile
)
_FIELD: Dict[str, int] = {name: i for i, name in enumerate(RECORD_FIELDS)}
RECORD_WORDS = len(RECORD_FIELDS)
WORKER_ROLE = 0xFFFFFFFF   # -1: negative, so one flag test tells workers from the first QPU
# Where the epilogue resumes reading the record (byte offset; beta == 0 skips c_in_address and beta).
_EPILOGUE_OFFSET = {False: 4 * _FIELD["c_in_address"], True: 4 * _FIELD["alpha"]}


def default_unroll(beta_zero: bool) -> int:
    """k-steps per loop iteration for a variant: the largest whose whole kernel fits 4 KiB."""
    return DEFAULT_UNROLL if beta_zero else DEFAULT_UNROLL_BETA


def _column(c: int) -> Register:
    """The register holding tile column ``c`` (-1 is column 63, the previous k's last)."""
    c %= TILE_COLS
    return ra[c // 2] if c % 2 == 0 else rb[c // 2]


# ---------------------------------------------------------------------------------------------
# The kernel
# ---------------------------------------------------------------------------------------------

def sgemm_kernel(k: Kernel, *, beta_zero: bool = True, unroll: Optional[int] = None) -> None:
    """The SGEMM QPU program (one copy per QPU; uniforms: the QPU's first tile record).

    ``beta_zero``: assemble the variant that ignores C's old contents (beta == 0), which
    skips the C gather.  ``unroll``: k-steps per loop iteration (1..6); the host must
    round K up to a multiple of it (``plan_sgemm`` does); default ``default_unroll(beta_zero)``.
    """
    if unroll is None:
        unroll = default_unroll(beta_zero)
    if not 1 <= unroll <= MAX_UNROLL:
        raise ValueError(f"unroll={unroll}: use 1..{MAX_UNROLL} (the loop must fit the 4 KiB instruction cache)")
    _clear_tile(k)
    tile = k.here("tile")
    _start_tile(k)
    _k_loop(k, unroll)
    _point_at_epilogue(k, beta_zero)
    if not beta_zero:
        _scale_and_add_c(k)
    _store_tile(k, beta_zero)
    _next_tile(k, tile)
    _finish(k)


def _clear_tile(k: Kernel) -> None:
    """Zero the 64 tile registers once; afterwards the store of each tile clears them."""
    for i in range(TILE_COLS // 2):
        # Both ALUs read the same small immediate 0: ra_i by the add ALU, rb_i by the mul ALU.
        k.mov(ra[i], 0.0).mov(rb[i], 0.0)


def _start_tile(k: Kernel) -> None:
    """Read the record the uniform stream points at, start the A prefetch, switch the stream to B."""
    k.mov(r3, uniform)                          # self: where to come back for the epilogue fields
    k.shl(r1, element_number, 2)                # 4 * lane
    k.iadd(r1, r1, uniform)                     # + a_address: lane i -> A[row0 + i, 0] (packed block)
    k.mov(r2, uniform)                          # loop_count
    k.mov(r0, uniform)                          # b_address
    k.ldi(r5rep, A_COLUMN_BYTES)                # the packed A block advances 64 bytes per k
    for _ in range(PREFETCH):
        # Request the next A column (the mul ALU reads r1 before the add ALU's write lands).
        k.iadd(r1, r1, r5).mov(tmu0_s, r1)
    k.mov(uniforms_address, r0)                 # from now on each uniform read is the next B value
    # Two instructions that read no uniform after the address write (guide p.22):
    k.ldtmu0()                                  # r4 = A column 0 (for the next instruction on)
    k.mov(r0, 0.0)                              # the loop's first fadd adds r0 to column 63: make it 0


def _k_loop(k: Kernel, unroll: int) -> None:
    """``unroll`` k-steps per iteration; each is 64 dual-issue instructions plus its TMU request.

    Step k's instruction j: ``fadd col[j-1] += r0 ; fmul r0 = r4 * B[k, j]``.  The
    overhead instructions sit between instructions 0 and 1 of a step, where r0 is in
    flight between the two ALUs and nothing else needs it.
    """
    top = k.here("k_loop")
    for u in range(unroll):
        for j in range(TILE_COLS):
            if u == unroll - 1 and j == TILE_COLS - 3:
                # The branch's three delay slots are the step's last three instructions (guide
                # p.34); the flags come from the counter decrement below, and no instruction in
                # between sets flags.
                k.brr(top, cond=BranchCond.ANY_ZC)
            # The last instruction of a step pops the next A column: it still reads the old r4.
            sig = Signal.LOAD_TMU0 if j == TILE_COLS - 1 else None
            k.fadd(_column(j - 1), _column(j - 1), r0, sig=sig).fmul(r0, r4, uniform)
            if j == 0:
                # The step's pop left 3 requests in flight: request column k + 4.  (A TMU write
                # cannot share an instruction with a TMU read, guide p.37, so not on the ldtmu.)
                k.iadd(r1, r1, r5).mov(tmu0_s, r1)
                if u == 0:
                    k.isub(r2, r2, 1, set_flags=True)


def _point_at_epilogue(k: Kernel, beta_zero: bool) -> None:
    """Finish the last column, drain the 3 A prefetches past K', point the stream at the record."""
    last = _column(TILE_COLS - 1)
    k.fadd(last, last, r0, sig=Signal.LOAD_TMU0)           # column 63's last product; drain 1/3
    k.ldi(r2, _EPILOGUE_OFFSET[beta_zero])
    k.iadd(uniforms_address, r3, r2, sig=Signal.LOAD_TMU0)  # drain 2/3
    k.nop(sig=Signal.LOAD_TMU0)                             # drain 3/3; no uniform read for two
    k.nop()                                                 # instructions after the address write


def _scale_and_add_c(k: Kernel) -> None:
    """``col_c = alpha * col_c + beta * C[rows, c]``, C gathered by the TMU 4 columns ahead.

    The host packs the old C tile by tile, column after column (16 floats = 64 bytes each),
    so each gather reads one 64-byte line.  Per column: the mul ALU scales col_c (and the
    instruction pops C column c), then makes beta * C in r0; the add of it to col_c comes
    with the next column's scaling, 3 instructions after col_c was written (regfile: at
    least one instruction between write and read, guide p.18).
    """
    k.shl(r3, element_number, 2)                # 4 * lane
    k.iadd(r3, r3, uniform)                     # + c_in_address: lane i -> old C[row0 + i, col0]
    k.mov(r5rep, uniform)                       # beta, to all lanes of r5
    k.mov(r2, uniform)                          # alpha
    k.ldi(r1, A_COLUMN_BYTES)                   # a packed C column is 64 bytes too
    for _ in range(PREFETCH):
        k.iadd(r3, r3, r1).mov(tmu0_s, r3)
    for c in range(TILE_COLS):
        col = _column(c)
        if c == 0:
            k.fmul(col, col, r2, sig=Signal.LOAD_TMU0)
        else:
            prev = _column(c - 1)
            k.fadd(prev, prev, r0).fmul(col, col, r2, sig=Signal.LOAD_TMU0)
        k.fmul(r0, r4, r5)
        if c + PREFETCH < TILE_COLS:
            k.iadd(r3, r3, r1).mov(tmu0_s, r3)
    last = _column(TILE_COLS - 1)
    k.fadd(last, last, r0)


def _store_tile(k: Kernel, beta_zero: bool) -> None:
    """Write the tile through the VPM (under the mutex) and DMA it to C; clear the registers."""
    if beta_zero:
        k.mov(r2, uniform)                      # alpha (beta != 0: _scale_and_add_c read it)
    k.mov(r1, uniform)                          # c_address (element 0 is what the DMA uses)
    k.mov(r0, uniform)                          # c_gap
    k.mutex_acquire()                           # VPM rows 0-63: ours until the release
    for b in range(TILE_COLS // BLOCK):
        # Vertical 32-bit vectors: the block's column c goes down VPM column c, rows 16b..16b+15.
        # A write may directly follow its setup (GPU_FFT's write_vpm macros do, on hardware).
        k.setup_vpm_write(y=BLOCK * b, horizontal=False)
        for c in range(BLOCK * b, BLOCK * (b + 1)):
            col = _column(c)
            clear = k.bxor(col, col, col)       # add ALU: clear for the next tile (reads the old value)
            if beta_zero:
                clear.fmul(vpm, col, r2)        # mul ALU: alpha * column into the VPM
            else:
                clear.mov(vpm, col)             # alpha and beta were applied by _scale_and_add_c
        # Two or more instructions between the last VPM write and the DMA start, as in the
        # hardware-tested stores of py-videocore's SGEMM and GPU_FFT (the VPM write FIFO holds
        # up to two writes, guide p.55): they do work that is needed here anyway.
        if b == 0:
            k.setup_dma_store_stride(r0, tmp=r3)    # the C row pitch, for all four stores
            k.ldi(r0, 4 * BLOCK)                # bytes from one 16-column block of C to the next
        else:
            k.iadd(r1, r1, r0)                  # C address of block b
            k.wait_dma_store()                  # block b-1 is out: this QPU's VDW is free again
        k.setup_dma_store(nrows=BLOCK, ncols=BLOCK, y=BLOCK * b)
        k.start_dma_store(r1)
    k.wait_dma_store()                          # the VPM rows are free for the next QPU
    k.mutex_release()


def _next_tile(k: Kernel, tile: Any) -> None:
    """Follow the record's ``next`` link; fall through after the last tile."""
    k.mov(r2, uniform)                          # role (used only after the last tile)
    k.mov(r3, uniform, set_flags=True)          # next record, 0 after the last
    k.brr(tile, cond=BranchCond.ANY_ZC)
    k.mov(uniforms_address, r3)                 # delay slot: the stream goes to the next record,
    k.nop()                                     # and the two remaining delay slots read no
    k.nop()                                     # uniform (guide p.22)


def _finish(k: Kernel) -> None:
    """Workers signal the first QPU, which waits for them all and interrupts the host once."""
    k.mov(null, r2, set_flags=True)             # role: negative = worker
    worker = k.label("worker")
    finish = k.label("finish")
    k.brr(worker, cond=BranchCond.ALL_NS, delay="nop")
    k.brr(finish, cond=BranchCond.ALL_ZS, delay="nop")     # a single QPU: nobody to wait for
    wait = k.here("wait_workers")
    k.sema_down(DONE_SEMAPHORE)
    k.isub(r2, r2, 1, set_flags=True)
    k.brr(wait, cond=BranchCond.ANY_ZC, delay="nop")
    k.bind(finish)
    k.exit(interrupt=True)
    k.bind(worker)
    k.sema_up(DONE_SEMAPHORE)
    k.exit(interrupt=False)


@functools.cache
def sgemm_program(beta_zero: bool = True, unroll: Optional[int] = None) -> Program:
    """The assembled kernel (cached: one Program per variant)."""
    return assemble(sgemm_kernel, beta_zero=beta_zero, unroll=default_unroll(beta_zero) if unroll is None else unroll)


# ---------------------------------------------------------------------------------------------
# Host side
# ---------------------------------------------------------------------------------------------

class SgemmPlan(NamedTuple):
    """Padded sizes and the tiles of each QPU for one SGEMM shape."""

    m: int
    n: int
    k: int
    m_pad: int                      # rows of the padded problem: a multiple of 16
    n_pad: int                      # columns of the padded problem: a multiple of 64
    k_pad: int                      # k-steps the kernel runs: K rounded up to unroll
    unroll: int
    tiles: Tuple[Tuple[Tuple[int, int], ...], ...]   # per QPU: (row block, column panel) pairs

    @property
    def n_qpus(self) -> int:
        return len(self.tiles)

    @property
    def n_tiles(self) -> int:
        return sum(len(t) for t in self.tiles)


def plan_sgemm(m: int, n: int, k: int, n_qpus: int = 12, unroll: int = DEFAULT_UNROLL) -> SgemmPlan:
    """How ``sgemm`` pads the operands and splits the tiles over at most ``n_qpus`` QPUs.

    Tiles are dealt round-robin in column-panel-major order, so the QPUs working at the
    same time read the same B panels (and all of A) at about the same time, which lets the
    V3D's L2 cache serve most of them on hardware.
    """
    if m < 1 or n < 1 or k < 1:
        raise ValueError(f"plan_sgemm needs positive sizes, got m={m}, n={n}, k={k}")
    if not 1 <= n_qpus <= 12:
        raise ValueError(f"n_qpus={n_qpus}: the V3D has 12 QPUs (1..12)")
    if not 1 <= unroll <= MAX_UNROLL:
        raise ValueError(f"unroll={unroll}: use 1..{MAX_UNROLL}")
    m_pad = -(-m // TILE_ROWS) * TILE_ROWS
    n_pad = -(-n // TILE_COLS) * TILE_COLS
    k_pad = -(-k // unroll) * unroll
    if 4 * n_pad - 4 * BLOCK > 0xFFFF:
        raise ValueError(f"n={n}: C rows of {4 * n_pad} bytes exceed the VDW stride field (16 bits, addendum "
                         "Table 35): split C into column blocks of at most 16384")
    row_blocks, panels = m_pad // TILE_ROWS, n_pad // TILE_COLS
    order = [(i, j) for j in range(panels) for i in range(row_blocks)]
    used = min(n_qpus, len(order))
    tiles = tuple(tuple(order[q::used]) for q in range(used))
    return SgemmPlan(m, n, k, m_pad, n_pad, k_pad, unroll, tiles)


def gflops(m: int, n: int, k: int, seconds: float) -> float:
    """GFLOPS of an (m x k) @ (k x n) product in ``seconds`` (2mnk flops)."""
    return 2.0 * m * n * k / seconds / 1e9 if seconds > 0 else float("inf")


def issue_stats(report: Any, program: Any) -> Dict[str, float]:
    """How the executed instructions used the two ALUs, from an emulator run's per-PC profile.

    ``report``: the RunReport of ``sgemm`` (emulator backend); ``program``: the Driver's
    LoadedProgram of the kernel (``drv.program(sgemm_program(...))``).  Returns the executed
    instruction count, the fraction with both ALUs busy (``dual_issue``), the fraction that
    are the fmul+fadd pairs doing the product (``fadd_fmul``), and the cycles per QPU spent
    stalled, by cause.
    """
    from qpu.encoding import decode
    from qpu.instruction import AluInstruction

    profile = report.job.profile
    words = program.program.words
    executed = dual = fma = 0
    for address, (count, _stall) in profile.items():
        index = (address - program.address) // 8
        if not 0 <= index < len(words):
            continue
        ins = decode(words[index])
        executed += count
        if isinstance(ins, AluInstruction) and not ins.add.op.is_nop and not ins.mul.op.is_nop:
            dual += count
            if ins.add.op.name == "fadd" and ins.mul.op.name == "fmul":
                fma += count
    qpus = max(1, len(report.per_qpu))
    stalls = {cause: cycles / qpus for cause, cycles in report.stalls.items() if cycles}
    return {"instructions": float(executed), "dual_issue": dual / executed if executed else 0.0,
            "fadd_fmul": fma / executed if executed else 0.0, **{f"stall_{c}": v for c, v in stalls.items()}}


def _float_bits(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", float(x)))[0])


# One reusable block of GPU memory per Driver: the Driver's allocator cannot free, so a
# fresh allocation per call would exhaust its data area.
_WORKSPACES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _workspace(drv: Any, nbytes: int) -> Any:
    ws = _WORKSPACES.get(drv)
    if ws is None or ws.nbytes < nbytes:
        size = max(nbytes, 2 * ws.nbytes if ws is not None else 0)
        ws = drv.alloc(size, np.uint8, align=4096)
        _WORKSPACES[drv] = ws
    return ws


class _Buffers(NamedTuple):
    records: Any     # (n_tiles, RECORD_WORDS) uint32
    a: Any           # (m_pad/16 * k_pad + PREFETCH, 16) float32: row block i, column k at [i*k_pad + k]
    b: Any           # (n_pad/64, k_pad, 64) float32: column panel j, row k
    c_in: Any        # (m_pad/16, n_pad/64, 64, 16) float32: tile (i, j), column c (beta != 0 only)
    c: Any           # (m_pad, n_pad) float32: the output, row-major


def _carve(drv: Any, plan: SgemmPlan, beta_zero: bool) -> _Buffers:
    """Views of the workspace for each buffer, each 64-byte aligned."""
    row_blocks, panels = plan.m_pad // TILE_ROWS, plan.n_pad // TILE_COLS
    shapes = [
        ((plan.n_tiles, RECORD_WORDS), np.uint32),
        # The k loop requests 4 A columns past K' (the prefetch of a next iteration that never
        # comes): they read the next block, or this slack after the last one.
        ((row_blocks * plan.k_pad + PREFETCH, TILE_ROWS), np.float32),
        ((panels, plan.k_pad, TILE_COLS), np.float32),
        ((0, 0, 0, 0) if beta_zero else (row_blocks, panels, TILE_COLS, TILE_ROWS), np.float32),
        ((plan.m_pad, plan.n_pad), np.float32),
    ]
    sizes = [4 * int(np.prod(shape)) for shape, _ in shapes]
    offsets, pos = [], 0
    for size in sizes:
        offsets.append(pos)
        pos += -(-size // 64) * 64
    ws = _workspace(drv, pos)
    views = [ws[o:o + size].view(dtype).reshape(shape) for o, size, (shape, dtype) in zip(offsets, sizes, shapes)]
    return _Buffers(*views)


def _write_records(buf: _Buffers, plan: SgemmPlan, alpha: float, beta: float) -> List[int]:
    """Fill the tile records, each QPU's as a linked list; returns each QPU's first record address."""
    rec = buf.records
    base = rec.address
    a_block = 4 * plan.k_pad * TILE_ROWS
    b_panel = 4 * plan.k_pad * TILE_COLS
    c_tile_in = 4 * TILE_ROWS * TILE_COLS
    c_row = 4 * plan.n_pad
    panels = plan.n_pad // TILE_COLS
    c_in_base = buf.c_in.address if buf.c_in.size else 0
    f = _FIELD
    first, index = [], 0
    for q, tiles in enumerate(plan.tiles):
        first.append(base + 4 * RECORD_WORDS * index)
        for t, (i, j) in enumerate(tiles):
            addr = base + 4 * RECORD_WORDS * index
            row = rec[index]
            row[f["self"]] = addr
            row[f["a_address"]] = buf.a.address + i * a_block
            row[f["loop_count"]] = plan.k_pad // plan.unroll
            row[f["b_address"]] = buf.b.address + j * b_panel
            row[f["c_in_address"]] = c_in_base + (i * panels + j) * c_tile_in
            row[f["beta"]] = _float_bits(beta)
            row[f["alpha"]] = _float_bits(alpha)
            row[f["c_address"]] = buf.c.address + TILE_ROWS * i * c_row + 4 * TILE_COLS * j
            row[f["c_gap"]] = c_row - 4 * BLOCK
            row[f["role"]] = (plan.n_qpus - 1) if q == 0 else WORKER_ROLE
            row[f["next"]] = 0 if t == len(tiles) - 1 else addr + 4 * RECORD_WORDS
            index += 1
    return first


def _pack(buf: _Buffers, plan: SgemmPlan, a: np.ndarray, b: np.ndarray, c: Optional[np.ndarray]) -> None:
    """Copy the operands into the kernel's layouts, zero-padded (padding must be 0 in A and B)."""
    m, n, k = plan.m, plan.n, plan.k
    row_blocks, panels = plan.m_pad // TILE_ROWS, plan.n_pad // TILE_COLS
    # A: block i holds rows 16i..16i+15 column after column (lane = row): [i, k, lane].
    a_pad = np.zeros((plan.m_pad, plan.k_pad), dtype=np.float32)
    a_pad[:m, :k] = a
    buf.a[:row_blocks * plan.k_pad] = a_pad.reshape(row_blocks, TILE_ROWS, plan.k_pad).transpose(0, 2, 1) \
        .reshape(-1, TILE_ROWS)
    buf.a[row_blocks * plan.k_pad:] = 0.0
    # B: panel j holds columns 64j..64j+63, row after row: [j, k, column].
    b_pad = np.zeros((plan.k_pad, plan.n_pad), dtype=np.float32)
    b_pad[:k, :n] = b
    buf.b[...] = b_pad.reshape(plan.k_pad, panels, TILE_COLS).transpose(1, 0, 2)
    if c is not None:
        # Old C, tile by tile, column after column (lane = row): [i, j, column, lane].
        c_pad = np.zeros((plan.m_pad, plan.n_pad), dtype=np.float32)
        c_pad[:m, :n] = c
        buf.c_in[...] = c_pad.reshape(row_blocks, TILE_ROWS, panels, TILE_COLS).transpose(0, 2, 3, 1)


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {arr.shape}")
    return arr


def sgemm(drv: Any, A: Any, B: Any, C: Any = None, alpha: float = 1.0, beta: float = 0.0, n_qpus: int = 12, *,
          unroll: Optional[int] = None, timeout: int = 10000) -> Tuple[np.ndarray, Any]:
    """``C = alpha * A @ B + beta * C`` on the QPUs (float32); returns ``(C, report)``.

    ``A`` (M x K) and ``B`` (K x N) are array-likes, converted to float32.  ``C`` (M x N):
    if given it is updated in place (its old contents are only read when ``beta != 0``) and
    returned; otherwise a new array is returned (``beta`` must then be 0).  ``n_qpus``: at
    most this many QPUs (1..12; fewer if there are fewer 16x64 tiles).  ``report`` is the
    Driver's RunReport (``None`` when no QPU work was needed: an empty product or
    ``alpha == 0``).  The QPUs round each float operation toward zero, so expect a
    relative error of about ``1e-7 * K`` at worst, ``1e-7 * sqrt(K)`` typically.
    """
    a = _as_matrix(A, "A").astype(np.float32, copy=False)
    b = _as_matrix(B, "B").astype(np.float32, copy=False)
    m, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"A is {a.shape[0]}x{k} but B is {b.shape[0]}x{b.shape[1]}: inner sizes differ")
    n = b.shape[1]
    if C is None:
        if beta != 0:
            raise ValueError("beta != 0 needs a C to scale: pass C")
        out = np.empty((m, n), dtype=np.float32)
    else:
        out = C if isinstance(C, np.ndarray) else np.asarray(C)
        if out.shape != (m, n):
            raise ValueError(f"C has shape {out.shape}, expected {(m, n)}")
        if out.dtype != np.float32:
            raise ValueError(f"C must be float32 (it is updated in place), got {out.dtype}")
    if m == 0 or n == 0:
        return out, None
    if k == 0 or alpha == 0:
        # No product to compute (BLAS: A and B are not referenced when alpha == 0).
        out[...] = 0.0 if beta == 0 else np.float32(beta) * out
        return out, None

    beta_zero = beta == 0
    if unroll is None:
        unroll = default_unroll(beta_zero)
    plan = plan_sgemm(m, n, k, n_qpus, unroll)
    buf = _carve(drv, plan, beta_zero)
    _pack(buf, plan, a, b, None if beta_zero else out)
    first = _write_records(buf, plan, float(alpha), float(beta))
    program = drv.program(sgemm_program(beta_zero, unroll))
    report = drv.execute_control_list([(addr, program.address) for addr in first], timeout=timeout)
    out[...] = buf.c[:m, :n]
    return out, report
