"""The QPUs' shared and closely coupled units, as compiled helpers of the hot loop.

* events: ``emit`` records a rule finding (layout.CORE_RULES code) for Python to format.
* memory: bus address -> buffer offset with the locked-page check (memory.py page_state).
* TMU: direct-address general memory lookups, per-QPU request/receive FIFOs, the
  TMU0/TMU1 swap of QPUs 2 and 3 (guide p.23, p.39-41; addendum Section 4).
* VPM: the QPU read/write FIFOs with their setups (guide Section 7 p.53-58,
  Figures 8-9, Tables 32-33; addendum Section 7 on read setups).
* VCD/VDW: DMA loads and stores between memory and the VPM (Tables 34-37; the
  VDW stride is 16 bits wide per the addendum), one engine each shared by all QPUs.
* timing of memory: the slices' instruction, uniforms and TMU caches, the V3D L2, the
  VideoCore L2 and SDRAM (banks, rows, shared bandwidth), the shared VPM port, DMA
  engine queueing; the parameters and their sources are in timing.py, the mechanisms
  in docs/emulator.md "Timing model".  Caches hold addresses only (timing), never data.
* trace records for ``V3D.execute(..., trace=True)`` (trace.py turns them into spans).

State lives in the arrays described in layout.py: V (uint32 16-lane values), D (their
definedness byte masks: bit i = byte i was written, 15 = fully defined, plus flags),
S (int64 scalars, tables, events; the memory model's part follows layout.NI, below),
``code`` (pre-decoded instructions and their profile counters), ``mem`` (GPU memory
words) and ``ps`` (its page states).
Everything here is ``@njit`` and also runs as plain Python.  Times are V3D cycles.
"""

from __future__ import annotations

import numpy as np

from .jit import HAVE_NUMBA
from .layout import (
    C_TMU_OUT0,
    CU_C,
    CU_IDX,
    CU_NOW,
    CU_PC,
    CU_Q,
    CU_XSTALL,
    D_FLGD,
    EV_CLOCK,
    EV_CTX,
    EV_D0,
    EV_D1,
    EV_D2,
    EV_IDX,
    EV_PC,
    EV_Q,
    EV_RULE,
    EV_W,
    G_NEV,
    G_STOP,
    G_TMU_FREE,
    G_VDR_FREE,
    G_VDW_FREE,
    I_CS,
    I_CUR,
    I_EV,
    I_GS,
    I_ISCR,
    I_P,
    I_QS,
    I_RLEVEL,
    I_SF,
    I_SID,
    I_STALL,
    I_TMUT,
    I_VPMHZ,
    K_STALL,
    LANES,
    MAX_EVENTS,
    NCAUSES,
    NCS,
    NI,
    NQS,
    NUM_CTX,
    NUM_QPUS,
    P_MEM_SIZE,
    P_PHYS_BASE,
    P_STRICT,
    P_THREADS,
    P_VPM_ROWS,
    Q_LD_END,
    Q_LD_WAITED,
    Q_NOSWAP,
    Q_ST_END,
    Q_ST_WAITED,
    Q_TMU_COUNT0,
    Q_TMU_HEAD0,
    Q_VDR_MPITCHB,
    Q_VDR_SETUP,
    Q_VDW_SETUP,
    Q_VDW_STRIDE,
    Q_VR_ADDR,
    Q_VR_HORIZ,
    Q_VR_LANED,
    Q_VR_LEFT,
    Q_VR_READY,
    Q_VR_SIZE,
    Q_VR_STRIDE,
    Q_VRQ_LEFT,
    Q_VRQ_READY,
    Q_VW_ADDR,
    Q_VW_HORIZ,
    Q_VW_LANED,
    Q_VW_SIZE,
    Q_VW_STRIDE,
    Q_VW_VALID,
    Q_WAIT_ARG,
    Q_WAIT_KIND,
    Q_WAIT_SINCE,
    QPUS_PER_SLICE,
    R_DMA_LOAD_BUSY,
    R_DMA_STORE_BUSY,
    R_LDTMU_NOREQ,
    R_MISALIGNED,
    R_OOB,
    R_TMU_OVERFLOW,
    R_TMU_UNRELIABLE,
    R_UNDEFINED,
    R_UNSUPPORTED,
    R_VPM_DMA_WAIT,
    R_VPM_READ_NOSETUP,
    R_VPM_READ_QUEUE,
    R_VPM_SETUP_RESERVED,
    R_VPM_WRITE_NOSETUP,
    S_DMA_QUEUE,
    S_TMU,
    S_VPM_READ,
    SF_VDR_ADDRXY,
    SF_VDR_MODEW,
    SF_VDR_MPITCH,
    SF_VDR_NROWS,
    SF_VDR_ROWLEN,
    SF_VDR_VERT,
    SF_VDR_VPITCH,
    SF_VDRS_MPITCHB,
    SF_VDW_DEPTH,
    SF_VDW_HORIZ,
    SF_VDW_MODEW,
    SF_VDW_UNITS,
    SF_VDW_VPMBASE,
    SF_VDWS_BLOCKMODE,
    SF_VDWS_STRIDE,
    SF_VR_ADDR,
    SF_VR_HORIZ,
    SF_VR_LANED,
    SF_VR_NUM,
    SF_VR_SIZE,
    SF_VR_STRIDE,
    SF_VW_ADDR,
    SF_VW_HORIZ,
    SF_VW_LANED,
    SF_VW_SIZE,
    SF_VW_STRIDE,
    SID_VDR_BASIC,
    SID_VDR_STRIDE,
    SID_VDW_BASIC,
    SID_VDW_STRIDE,
    SID_VPM_READ,
    SID_VPM_WRITE,
    T_TMU_ISSUE,
    T_TMU_LAT,
    T_VDR_BPC,
    T_VDR_SETUP,
    T_VDW_BPC,
    T_VDW_SETUP,
    T_VPM_BPC,
    T_VPM_RD_LAT,
    TMU_SLOTS,
    UD_DMA_ADDRESS,
    UD_SETUP,
    UD_TMU_ADDRESS,
    UD_VPM_STORE,
    US_DMA_WIDTH,
    V_ACC,
    V_TMU,
    V_VPM,
    VPM_WORDS,
    W_NONE,
)


def njit(func, cache=False):
    """Compile a loop helper: ``numba.njit`` without reference counting (``_nrt=False``).

    The loop allocates nothing: every array is handed in by Python.  With numba's reference
    counting on, each call between the compiled helpers increfs and decrefs every array
    argument atomically, which cost more than the emulation itself (perf: ~2 us per
    instruction).  Functions compiled this way cannot allocate arrays.

    Helpers are not cached on their own: numba would re-validate such a cache only against
    the helper's own source file, and reuse stale constants after an edit of layout.py.
    Only ``core.run_loop`` is cached (``cache=True``), keyed on a hash of every source it
    depends on; its cached machine code contains the helpers.
    """
    if HAVE_NUMBA:
        import numba
        return numba.njit(cache=cache, nogil=True, _nrt=False)(func)  # type: ignore[call-overload]
    return func


BUS_PHYS_MASK = 0x3FFFFFFF   # bus address -> physical: drop the two alias bits (memory.py)
PAGE_LOCKED = 2              # memory.py PAGE_LOCKED


# ---------------------------------------------------------------------------------------------
# Memory-hierarchy and trace state: the part of S beyond layout.NI.
#
# The V3D (v3d.py) allocates S with NS_UNTRACED (or NS_TOTAL) words and fills the tables below
# at job start; the cache contents are copied in from, and back to, the V3D (caches outlive
# jobs).  These offsets live here, next to the only code that uses them, until layout.py
# takes them over (it is being edited by another helper).
# ---------------------------------------------------------------------------------------------

LINE_SHIFT = 6          # 64-byte lines in every V3D cache (addendum "Cache details")
LINE_BYTES = 1 << LINE_SHIFT
# cache instances
CA_IC = 0               # + slice: instruction caches, one per slice (guide p.14, p.17)
CA_UC = 3               # + slice: uniforms caches, one per slice (guide p.14)
CA_TMU = 6              # + slice * 2 + physical TMU: the TMUs' L1 caches (guide p.14, Table 72)
CA_L2C = 12             # the V3D L2 cache shared by all of them (guide p.14)
CA_SOC = 13             # the VideoCore's own L2 between the V3D and SDRAM (L2-cached bus aliases)
NCACHES = 14
# Most lines an instance may hold (TimingParameters checks its sizes against these).
CACHE_MAX_LINES = (256,) * 3 + (256,) * 3 + (256,) * 6 + (4096, 8192)
EW = 4                  # words per cache entry
(E_TAG, E_LRU, E_READY, E_DIRTY) = range(EW)   # line + 1 (0 = empty), LRU stamp, data-ready cycle, dirty

# counters (V3D performance-counter sources and memory traffic)
(XC_IC_HIT, XC_IC_MISS, XC_UC_HIT, XC_UC_MISS, XC_TMU_QUADS, XC_TMU_MISS, XC_L2_HIT, XC_L2_MISS,
 XC_SOC_HIT, XC_SOC_MISS, XC_SOC_WB, XC_SDRAM_RD, XC_SDRAM_WR, XC_DMA_RD, XC_DMA_WR, XC_ROW_MISS,
 NXC) = range(17)
# shared state and the timing parameters the memory model reads (whole cycles / bytes)
(XG_LRU, XG_L2C_FREE, XG_VPM_FREE, XG_TRACE, XG_NTRACE, XG_TDROP,
 XT_L2C_LAT, XT_L2C_CPL, XT_SOC_LAT, XT_SDRAM_LAT, XT_BIN_BYTES, XT_TMU_MISS, XT_VPM_CPV,
 XT_ROW_MISS_BYTES, XT_PAGE_SHIFT, XT_BANK_MASK, NXG) = range(17)
MAX_BANKS = 16
# extra stall causes (layout.STALL_CAUSES holds the others)
EXTRA_STALL_CAUSES = ("icache", "uniforms", "vpm_port")
(XS_ICACHE, XS_UCACHE, XS_VPM) = range(len(EXTRA_STALL_CAUSES))
NXS = len(EXTRA_STALL_CAUSES)
# SDRAM bandwidth bookkeeping: time bins of 2**BIN_SHIFT cycles, a ring of NBINS (epoch, bytes)
BIN_SHIFT = 5
NBINS = 4096
# trace records: kind, track, start cycle, end cycle, two details
TW = 6
(TR_KIND, TR_TRACK, TR_T0, TR_T1, TR_A, TR_B) = range(TW)
TRACE_MAX = 1 << 16
# trace kinds: 0..NCAUSES-1 are layout.STALL_CAUSES, then EXTRA_STALL_CAUSES, then unit activity
TK_UNIT = 32
TK_TMU = TK_UNIT            # a TMU request (a: QPU, b: lines missed)
TK_DMA_LOAD = TK_UNIT + 1   # a VCD load (a: QPU, b: bytes)
TK_DMA_STORE = TK_UNIT + 2  # a VDW store (a: QPU, b: bytes)
TK_SDRAM = TK_UNIT + 3      # SDRAM traffic of one request (a: bytes read, b: bytes written)
TK_WAIT_END = TK_UNIT + 4   # a semaphore / mutex wait (a: layout.W_* kind, b: its argument)
# trace tracks: QPU q is track q; shared units follow
TRK_TMU = 16                # + slice * 2 + physical TMU
TRK_DMA_LOAD = 24
TRK_DMA_STORE = 25
TRK_SDRAM = 26

X_CACHE = NI                                   # + k * 3: first entry offset, sets, ways
X_CNT = X_CACHE + NCACHES * 3                  # + XC_*
X_G = X_CNT + NXC                              # + XG_* / XT_*
X_QL = X_G + NXG                               # + q * 2: last fetched code line + 1, its entry
X_CL = X_QL + NUM_QPUS * 2                     # + c * 2: last uniform line + 1, its entry
X_TMUQ = X_CL + NUM_CTX * 2                    # + unit: data-ready cycle of the TMU's last request
X_STALL = X_TMUQ + NUM_QPUS // QPUS_PER_SLICE * 2   # + q * NXS + XS_*
X_BANKS = X_STALL + NUM_QPUS * NXS             # + bank: open SDRAM row + 1 (0: none)
X_BINS = X_BANKS + MAX_BANKS                   # + 2 * bin: epoch, bytes booked
X_ENTRIES = X_BINS + 2 * NBINS                 # cache entries (EW words each), instance after instance
NX_ENTRIES = sum(CACHE_MAX_LINES) * EW
X_TRACE = X_ENTRIES + NX_ENTRIES               # + n * TW (allocated only when tracing)
NS_UNTRACED = X_TRACE                          # length of S without, and with, the trace buffer
NS_TOTAL = X_TRACE + TRACE_MAX * TW


# ---------------------------------------------------------------------------------------------
# events and time
# ---------------------------------------------------------------------------------------------

@njit
def emit(S, rule, d0, d1, d2):
    """Record a finding for the current instruction; in strict mode an error stops the job."""
    n = S[I_GS + G_NEV]
    if n < MAX_EVENTS:
        e = I_EV + n * EV_W
        S[e + EV_RULE] = rule
        S[e + EV_Q] = S[I_CUR + CU_Q]
        S[e + EV_CTX] = S[I_CUR + CU_C]
        S[e + EV_PC] = S[I_CUR + CU_PC]
        S[e + EV_IDX] = S[I_CUR + CU_IDX]
        S[e + EV_CLOCK] = S[I_CUR + CU_NOW]
        S[e + EV_D0] = d0
        S[e + EV_D1] = d1
        S[e + EV_D2] = d2
        S[I_GS + G_NEV] = n + 1
    if S[I_P + P_STRICT] != 0 and S[I_RLEVEL + rule] != 0:
        S[I_GS + G_STOP] = 1


@njit
def stall_to(S, code, t, cause):
    """Advance the instruction's time to ``t`` (if later), charging the wait to ``cause``."""
    now = S[I_CUR + CU_NOW]
    if t > now:
        d = t - now
        q = S[I_CUR + CU_Q]
        S[I_STALL + q * NCAUSES + cause] += d
        code[S[I_CUR + CU_IDX], K_STALL] += d
        trace(cause, q, now, t, S[I_CUR + CU_PC], 0, S)
        S[I_CUR + CU_NOW] = t


@njit
def cycles(x):
    """A duration in whole cycles (the timing table holds floats)."""
    return np.int64(x + 0.999999)


@njit
def data_offset(addr, nbytes, S, ps):
    """Buffer offset of a bus address, or -1 if [addr, addr+nbytes) is not all in locked pages."""
    off = (addr & BUS_PHYS_MASK) - S[I_P + P_PHYS_BASE]
    if off < 0 or off + nbytes > S[I_P + P_MEM_SIZE]:
        return -1
    if ps[off >> 12] != PAGE_LOCKED or ps[(off + nbytes - 1) >> 12] != PAGE_LOCKED:
        return -1
    return off


@njit
def mem_offset(addr, nbytes, S, ps):
    """``data_offset`` for the QPU's own fetches.  A 4-byte access is a uniform read, which
    goes through the slice's uniforms cache (a miss delays the current instruction: the
    "uniforms" stall).  An 8-byte access is an instruction fetch: the loop looks the PC up
    ahead of time (branch targets), so the instruction cache is consulted by ``code_fetch``
    instead, which the loop calls as the instruction issues.

    The loop (core.py) calls this for exactly those two accesses; TMU and DMA accesses use
    ``data_offset`` and their own cache paths below.
    """
    off = data_offset(addr, nbytes, S, ps)
    if off >= 0 and nbytes == 4:
        uniform_fetch(addr, S)
    return off


# ---------------------------------------------------------------------------------------------
# Caches, the V3D L2, the VideoCore L2 and SDRAM (timing only: data always comes from memory)
# ---------------------------------------------------------------------------------------------

@njit
def cache_find(k, line, S):
    """S offset of the entry holding ``line`` in cache instance ``k`` (LRU refreshed), or -1."""
    sets = S[X_CACHE + 3 * k + 1]
    if sets == 0:
        return -1
    ways = S[X_CACHE + 3 * k + 2]
    b = S[X_CACHE + 3 * k] + (line & (sets - 1)) * ways * EW
    tag = line + 1
    for w in range(ways):
        e = b + w * EW
        if S[e + E_TAG] == tag:
            S[X_G + XG_LRU] += 1
            S[e + E_LRU] = S[X_G + XG_LRU]
            return e
    return -1


@njit
def cache_fill(k, line, ready, dirty, t, S):
    """Put ``line`` into cache ``k`` over its least recently used entry (data there at cycle
    ``ready``); a dirty victim is written back to SDRAM from cycle ``t``.  Returns the entry's
    S offset, or -1 when the cache has no lines."""
    sets = S[X_CACHE + 3 * k + 1]
    if sets == 0:
        return -1
    ways = S[X_CACHE + 3 * k + 2]
    b = S[X_CACHE + 3 * k] + (line & (sets - 1)) * ways * EW
    victim = b
    for w in range(1, ways):
        e = b + w * EW
        if S[e + E_LRU] < S[victim + E_LRU]:
            victim = e
    if S[victim + E_DIRTY] != 0 and S[victim + E_TAG] != 0:
        S[X_CNT + XC_SOC_WB] += 1
        sdram_transfer(S[victim + E_TAG] - 1, t, LINE_BYTES, 1, S)
    S[X_G + XG_LRU] += 1
    S[victim + E_TAG] = line + 1
    S[victim + E_LRU] = S[X_G + XG_LRU]
    S[victim + E_READY] = ready
    S[victim + E_DIRTY] = dirty
    return victim


@njit
def sdram_transfer(line, t, nbytes, write, S):
    """Book an SDRAM transfer of ``nbytes`` at 64-byte ``line`` from cycle ``t`` on; returns
    the cycle it is done.

    The SDRAM has banks, each with one open row (page); an access to another row of its bank
    first closes and opens one, which costs the bus XT_ROW_MISS_BYTES worth of time
    (precharge + activate).  So streams (DMA rows, consecutive lines) run near the peak rate
    and scattered lines (bit-reversed TMU gathers) far below it.  Bandwidth is kept per bin of
    2**BIN_SHIFT cycles (XT_BIN_BYTES bytes each): a request fills bins from its own on, so
    DMA, TMU and cache traffic share the bandwidth whatever order the loop books them in
    (DMAs book rows ahead of the current cycle).
    """
    S[X_CNT + (XC_SDRAM_WR if write else XC_SDRAM_RD)] += nbytes
    page = (line << LINE_SHIFT) >> S[X_G + XT_PAGE_SHIFT]
    bank = X_BANKS + (page & S[X_G + XT_BANK_MASK])
    if S[bank] != page + 1:
        S[bank] = page + 1
        S[X_CNT + XC_ROW_MISS] += 1
        nbytes += S[X_G + XT_ROW_MISS_BYTES]
    cap = S[X_G + XT_BIN_BYTES]
    if cap <= 0:
        return t
    b = t >> BIN_SHIFT
    left = nbytes
    while True:
        slot = X_BINS + 2 * (b & (NBINS - 1))
        if S[slot] != b:
            S[slot] = b
            S[slot + 1] = 0
        room = cap - S[slot + 1]
        if room >= left:
            S[slot + 1] += left
            done = (b << BIN_SHIFT) + ((S[slot + 1] << BIN_SHIFT) + cap - 1) // cap
            least = t + ((nbytes << BIN_SHIFT) + cap - 1) // cap
            return done if done > least else least
        if room > 0:
            S[slot + 1] = cap
            left -= room
        b += 1


@njit
def memory_read(line, alias, t, S):
    """A 64-byte read behind the V3D L2 at cycle ``t``: the VideoCore L2 for the cached bus
    aliases (0x0 and 0x4 allocate, 0x8 only looks up, 0xC bypasses it), then SDRAM.
    Returns the data-arrival cycle."""
    if alias != 3 and S[X_CACHE + 3 * CA_SOC + 1] != 0:
        t = t + S[X_G + XT_SOC_LAT]
        e = cache_find(CA_SOC, line, S)
        if e >= 0:
            S[X_CNT + XC_SOC_HIT] += 1
            return max(t, S[e + E_READY])
        S[X_CNT + XC_SOC_MISS] += 1
        arrive = sdram_transfer(line, t, LINE_BYTES, 0, S) + S[X_G + XT_SDRAM_LAT]
        if alias != 2:
            cache_fill(CA_SOC, line, arrive, 0, t, S)
        return arrive
    return sdram_transfer(line, t, LINE_BYTES, 0, S) + S[X_G + XT_SDRAM_LAT]


@njit
def memory_write(line, alias, t, S):
    """A 64-byte write behind the V3D (VDW store): write-allocate, write-back in the VideoCore
    L2 for the allocating aliases, straight to SDRAM otherwise.  Returns when it is accepted."""
    if (alias == 0 or alias == 1) and S[X_CACHE + 3 * CA_SOC + 1] != 0:
        e = cache_find(CA_SOC, line, S)
        if e < 0:
            e = cache_fill(CA_SOC, line, t, 1, t, S)
        else:
            S[e + E_DIRTY] = 1
        return t + S[X_G + XT_SOC_LAT]
    if alias != 3 and S[X_CACHE + 3 * CA_SOC + 1] != 0:
        e = cache_find(CA_SOC, line, S)     # non-allocating alias: a cached copy is updated
        if e >= 0:
            S[e + E_DIRTY] = 1
            return t + S[X_G + XT_SOC_LAT]
    return sdram_transfer(line, t, LINE_BYTES, 1, S)


@njit
def l2_read(line, alias, t, S):
    """A line missed by a TMU, instruction or uniforms cache, asked of the V3D L2 at cycle
    ``t`` (one line per XT_L2C_CPL cycles, shared by every slice).  Returns its arrival."""
    p = max(t, S[X_G + XG_L2C_FREE])
    S[X_G + XG_L2C_FREE] = p + S[X_G + XT_L2C_CPL]
    p += S[X_G + XT_L2C_LAT]
    e = cache_find(CA_L2C, line, S)
    if e >= 0:
        S[X_CNT + XC_L2_HIT] += 1
        return max(p, S[e + E_READY])
    S[X_CNT + XC_L2_MISS] += 1
    arrive = memory_read(line, alias, p, S)
    cache_fill(CA_L2C, line, arrive, 0, p, S)
    return arrive


@njit
def stall_fetch(t, cause, S):
    """Delay the current instruction to ``t`` for an instruction or uniform fetch or the VPM
    port (the extra stall causes).  The delay also goes to CU_XSTALL, which core.py adds to
    the instruction's profile row when it completes (this function has no ``code``)."""
    now = S[I_CUR + CU_NOW]
    if t > now:
        q = S[I_CUR + CU_Q]
        S[X_STALL + q * NXS + cause] += t - now
        S[I_CUR + CU_XSTALL] += t - now
        trace(NCAUSES + cause, q, now, t, S[I_CUR + CU_PC], 0, S)
        S[I_CUR + CU_NOW] = t


@njit
def slice_cache_read(addr, k, slot, hit, miss, cause, S):
    """A read of ``addr`` through cache instance ``k`` (one of a slice's instruction or
    uniforms caches).  ``slot`` holds two words: the last line read this way and its entry,
    so the common case (the same line again, still cached) is two array reads.  A miss asks
    the V3D L2 and delays the current instruction (stall ``cause``); ``hit`` / ``miss`` are
    the counters to count in."""
    line = (addr & BUS_PHYS_MASK) >> LINE_SHIFT
    if S[slot] == line + 1 and S[S[slot + 1] + E_TAG] == line + 1:
        S[X_CNT + hit] += 1
        return
    now = S[I_CUR + CU_NOW]
    e = cache_find(k, line, S)
    if e >= 0:
        S[X_CNT + hit] += 1
        ready = S[e + E_READY]        # another QPU of the slice may still be filling it
    else:
        S[X_CNT + miss] += 1
        ready = l2_read(line, (addr >> 30) & 3, now, S)
        e = cache_fill(k, line, ready, 0, now, S)
    stall_fetch(ready, cause, S)
    if e >= 0:
        S[slot] = line + 1
        S[slot + 1] = e
    else:
        S[slot] = 0


@njit
def code_fetch(addr, S):
    """Instruction fetch through the slice's instruction cache (each QPU remembers the line
    it fetched last)."""
    q = S[I_CUR + CU_Q]
    if S[X_G + XG_TRACE] != 0:
        wait_ended(q, S)
    slice_cache_read(addr, CA_IC + q // QPUS_PER_SLICE, X_QL + 2 * q, XC_IC_HIT, XC_IC_MISS, XS_ICACHE, S)


@njit
def uniform_fetch(addr, S):
    """A uniform read through the slice's uniforms cache (each thread remembers the line it
    read last)."""
    q = S[I_CUR + CU_Q]
    slice_cache_read(addr, CA_UC + q // QPUS_PER_SLICE, X_CL + 2 * S[I_CUR + CU_C], XC_UC_HIT, XC_UC_MISS,
                     XS_UCACHE, S)


# ---------------------------------------------------------------------------------------------
# trace records (only while S[X_G + XG_TRACE] is set; Python drains them between loop calls)
# ---------------------------------------------------------------------------------------------

@njit
def trace(kind, track, t0, t1, a, b, S):
    if S[X_G + XG_TRACE] == 0:
        return
    n = S[X_G + XG_NTRACE]
    if n >= TRACE_MAX:
        S[X_G + XG_TDROP] += 1
        return
    r = X_TRACE + n * TW
    S[r + TR_KIND] = kind
    S[r + TR_TRACK] = track
    S[r + TR_T0] = t0
    S[r + TR_T1] = t1
    S[r + TR_A] = a
    S[r + TR_B] = b
    S[X_G + XG_NTRACE] = n + 1


@njit
def wait_ended(q, S):
    """A QPU blocked on a semaphore or the mutex retries its instruction: trace the wait."""
    qb = I_QS + q * NQS
    kind = S[qb + Q_WAIT_KIND]
    if kind != W_NONE:
        trace(TK_WAIT_END, q, S[qb + Q_WAIT_SINCE], S[I_CUR + CU_NOW], kind, S[qb + Q_WAIT_ARG], S)
        S[qb + Q_WAIT_KIND] = W_NONE


# ---------------------------------------------------------------------------------------------
# TMU: direct-address lookups (guide p.41: "writing to just the 's' parameter, using the
# absolute memory address ... the bottom two bits of the address are ignored")
# ---------------------------------------------------------------------------------------------

@njit
def tmu_unit(q, t, S):
    """Physical TMU for TMU ``t`` as addressed by QPU ``q``: QPUs 2 and 3 of each slice swap
    TMU0 and TMU1 unless tmu_noswap was written non-zero (guide p.23 and p.40; addendum)."""
    if S[I_QS + q * NQS + Q_NOSWAP] == 0 and (q % QPUS_PER_SLICE) >= 2:
        return t ^ 1
    return t


@njit
def tmu_request(t, vrow, mask, V, D, S, tp, mem, ps):
    """A write to tmuN_s of vector V[vrow]: one 16-lane lookup pushed to the request FIFO.

    Lanes whose write condition failed still push (addendum "No conditional write to
    peripheral registers"): their address, and so their result, is undefined.
    """
    q = S[I_CUR + CU_Q]
    u = tmu_unit(q, t, S)
    qb = I_QS + q * NQS
    hcol = qb + Q_TMU_HEAD0 + 2 * u
    ccol = qb + Q_TMU_COUNT0 + 2 * u
    count = S[ccol]
    # TFREQ holds 8 direct-address requests per QPU and TMU; the FIFO has no notion of threads,
    # so each of two threads may use half of it (guide p.39-40)
    own = I_CS + S[I_CUR + CU_C] * NCS + C_TMU_OUT0 + u
    if S[I_P + P_THREADS] == 2 and S[own] >= 4:
        emit(S, R_TMU_OVERFLOW, S[own] + 1, 4, t)
    elif count >= 8:
        emit(S, R_TMU_OVERFLOW, count + 1, 8, t)
    elif count >= 4:
        emit(S, R_TMU_UNRELIABLE, count + 1, 4, t)
    if count >= TMU_SLOTS:
        return
    S[own] += 1
    slot = (S[hcol] + count) % TMU_SLOTS
    row = V_TMU + (q * 2 + u) * TMU_SLOTS + slot
    bad_undef = -1
    bad_oob = -1
    n_oob = 0
    bad_mis = -1
    # Timing: the TMU takes the request when free (it is then busy for tmu_issue_cycles, plus
    # XT_TMU_MISS per missed line) and looks the lanes up in element order in its L1 cache
    # (the addendum's "sequence counts": a line evicted between two lanes is missed again);
    # each missed line is asked of the V3D L2 in turn.  The data is ready tmu_latency after
    # the TMU took the request, or after the last missed line arrived.
    unit = (q // QPUS_PER_SLICE) * 2 + u
    k = CA_TMU + unit
    now = S[I_CUR + CU_NOW]
    start = max(now, S[I_GS + G_TMU_FREE + unit])
    fill = start
    arrive = start
    last_line = -1
    nmiss = 0
    for lane in range(LANES):
        V[row, lane] = 0
        D[row, lane] = 0
        if mask[lane] == 0:
            continue
        if D[vrow, lane] != 15:
            if bad_undef < 0:
                bad_undef = lane
            continue
        a = np.int64(V[vrow, lane])
        off = data_offset(a & ~3, 4, S, ps)
        if off < 0:
            if bad_oob < 0:
                bad_oob = lane
            n_oob += 1
            continue
        if a & 3 and bad_mis < 0:
            bad_mis = lane
        V[row, lane] = mem[off >> 2]
        D[row, lane] = 15
        line = (a & BUS_PHYS_MASK) >> LINE_SHIFT
        if line != last_line:
            last_line = line
            e = cache_find(k, line, S)
            if e >= 0:
                t = S[e + E_READY]
            else:
                nmiss += 1
                t = l2_read(line, (a >> 30) & 3, fill, S)
                fill += S[X_G + XT_TMU_MISS]
                cache_fill(k, line, t, 0, fill, S)
            if t > arrive:
                arrive = t
    if bad_undef >= 0:
        emit(S, R_UNDEFINED, UD_TMU_ADDRESS, bad_undef, t)
    if bad_oob >= 0:
        emit(S, R_OOB, np.int64(V[vrow, bad_oob]), bad_oob, n_oob)
    if bad_mis >= 0:
        emit(S, R_MISALIGNED, np.int64(V[vrow, bad_mis]), bad_mis, 4)
    S[X_CNT + XC_TMU_QUADS] += LANES // 4
    S[X_CNT + XC_TMU_MISS] += nmiss
    S[I_GS + G_TMU_FREE + unit] = start + cycles(tp[T_TMU_ISSUE]) + nmiss * S[X_G + XT_TMU_MISS]
    # results leave a TMU in request order (one receive FIFO per QPU, one pipeline per TMU)
    ready = max(arrive + cycles(tp[T_TMU_LAT]), S[X_TMUQ + unit])
    S[X_TMUQ + unit] = ready
    S[I_TMUT + (q * 2 + u) * TMU_SLOTS + slot] = ready
    S[ccol] = count + 1
    trace(TK_TMU, TRK_TMU + unit, start, ready, q, nmiss, S)


@njit
def tmu_receive(t, V, D, S, code):
    """ldtmu0/1: pop the oldest result into r4 (available to the next instruction, guide p.19)."""
    q = S[I_CUR + CU_Q]
    u = tmu_unit(q, t, S)
    qb = I_QS + q * NQS
    hcol = qb + Q_TMU_HEAD0 + 2 * u
    ccol = qb + Q_TMU_COUNT0 + 2 * u
    r4 = V_ACC + q * 6 + 4
    if S[ccol] == 0:
        # the hardware waits forever for data that never comes (guide p.39-40)
        emit(S, R_LDTMU_NOREQ, t, 0, 0)
        for lane in range(LANES):
            V[r4, lane] = 0
            D[r4, lane] = 0
        return
    slot = S[hcol]
    stall_to(S, code, S[I_TMUT + (q * 2 + u) * TMU_SLOTS + slot], S_TMU)
    row = V_TMU + (q * 2 + u) * TMU_SLOTS + slot
    for lane in range(LANES):
        V[r4, lane] = V[row, lane]
        D[r4, lane] = D[row, lane]
    S[hcol] = (slot + 1) % TMU_SLOTS
    S[ccol] -= 1
    own = I_CS + S[I_CUR + CU_C] * NCS + C_TMU_OUT0 + u
    if S[own] > 0:
        S[own] -= 1


@njit
def tmu_all_done(q, S):
    """Cycle at which every outstanding lookup of QPU ``q`` has its data (0 if none)."""
    latest = 0
    qb = I_QS + q * NQS
    for u in range(2):
        head = S[qb + Q_TMU_HEAD0 + 2 * u]
        for k in range(S[qb + Q_TMU_COUNT0 + 2 * u]):
            latest = max(latest, S[I_TMUT + (q * 2 + u) * TMU_SLOTS + (head + k) % TMU_SLOTS])
    return latest


# ---------------------------------------------------------------------------------------------
# Setup words (qpu/isa/vpm.py layouts, handed over in S at I_SF / I_SID)
# ---------------------------------------------------------------------------------------------

@njit
def setup_field(word, S, k):
    raw = (word >> S[I_SF + 3 * k]) & S[I_SF + 3 * k + 1]
    if raw == 0 and S[I_SF + 3 * k + 2] != 0:
        return S[I_SF + 3 * k + 2]
    return raw


@njit
def setup_is(word, S, k):
    hi = S[I_SID + 3 * k]
    lo = S[I_SID + 3 * k + 1]
    return ((word >> lo) & ((1 << (hi - lo + 1)) - 1)) == S[I_SID + 3 * k + 2]


# ---------------------------------------------------------------------------------------------
# VPM addressing (guide p.53-58, Figures 8 and 9)
# ---------------------------------------------------------------------------------------------

@njit
def vpm_vector(addr, horiz, laned, size, S):
    """VPM word index (S[I_ISCR + i]) and bit shift (S[I_ISCR + 16 + i]) of each element of
    one QPU vector access; returns the element width in bits.

    ADDR is {Y[5:0], sub} horizontally or {Y[5:4], X[3:0], sub} vertically, where sub is
    the byte (8-bit) or half-word (16-bit) select (Tables 32/33).  The 32-bit vector is row
    Y (horizontal) or the 16 rows of column X from Y[5:4]*16 (vertical); 'laned' takes
    byte/half ``sub`` of each of its 16 words, 'packed' takes whole words 4*sub.. (8-bit)
    or 8*sub.. (16-bit) split into consecutive bytes/halves (p.53, Figures 8 and 9).
    """
    if size == 0:
        sub_bits = 2
        width = 8
    elif size == 1:
        sub_bits = 1
        width = 16
    else:
        sub_bits = 0
        width = 32
    sub = addr & ((1 << sub_bits) - 1)
    v = addr >> sub_bits
    per_word = 32 // width
    for i in range(LANES):
        if width == 32:
            j = i
            sh = 0
        elif laned:
            j = i
            sh = width * sub
        else:
            j = (16 // per_word) * sub + i // per_word
            sh = width * (i % per_word)
        if horiz:
            S[I_ISCR + i] = (v & 63) * 16 + j
        else:
            S[I_ISCR + i] = (((v >> 4) & 3) * 16 + j) * 16 + (v & 15)
        S[I_ISCR + 16 + i] = sh
    return width


@njit
def vpm_addr_mask(size):
    """Width of the ADDR counter: 8 bits for 8-bit, 7 for 16-bit, 6 for 32-bit vectors (p.57)."""
    if size == 0:
        return 0xFF
    if size == 1:
        return 0x7F
    return 0x3F


@njit
def vpm_read_setup(word, S, tp):
    """A VPM generic block read setup (Table 33).

    A new setup is accepted only while the previous one has at most one vector left
    (addendum, Section 7 "VPM read setups cannot be queued"); otherwise it is ignored.
    """
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    size = setup_field(word, S, SF_VR_SIZE)
    if size == 3:
        emit(S, R_VPM_SETUP_RESERVED, word, 0, 0)
        return
    left = S[qb + Q_VR_LEFT]
    if S[qb + Q_VRQ_LEFT] > 0 or left > 1:
        emit(S, R_VPM_READ_QUEUE, left + S[qb + Q_VRQ_LEFT], 0, 0)
        return
    base = qb + (Q_VR_LEFT if left == 0 else Q_VRQ_LEFT)
    # the queued setup's columns mirror those of the current one
    S[base] = setup_field(word, S, SF_VR_NUM)
    S[base + (Q_VR_ADDR - Q_VR_LEFT)] = setup_field(word, S, SF_VR_ADDR)
    S[base + (Q_VR_STRIDE - Q_VR_LEFT)] = setup_field(word, S, SF_VR_STRIDE)
    S[base + (Q_VR_HORIZ - Q_VR_LEFT)] = setup_field(word, S, SF_VR_HORIZ)
    S[base + (Q_VR_LANED - Q_VR_LEFT)] = setup_field(word, S, SF_VR_LANED)
    S[base + (Q_VR_SIZE - Q_VR_LEFT)] = size
    S[base + (Q_VR_READY - Q_VR_LEFT)] = S[I_CUR + CU_NOW] + cycles(tp[T_VPM_RD_LAT])


@njit
def vpm_write_setup(word, S):
    """A VPM generic block write setup (Table 32): used for every following write."""
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    size = setup_field(word, S, SF_VW_SIZE)
    if size == 3:
        emit(S, R_VPM_SETUP_RESERVED, word, 1, 0)
        return
    S[qb + Q_VW_VALID] = 1
    S[qb + Q_VW_ADDR] = setup_field(word, S, SF_VW_ADDR)
    S[qb + Q_VW_STRIDE] = setup_field(word, S, SF_VW_STRIDE)
    S[qb + Q_VW_HORIZ] = setup_field(word, S, SF_VW_HORIZ)
    S[qb + Q_VW_LANED] = setup_field(word, S, SF_VW_LANED)
    S[qb + Q_VW_SIZE] = size


@njit
def _promote_queued_read(qb, S, now):
    for k in range(Q_VRQ_READY - Q_VRQ_LEFT + 1):
        S[qb + Q_VR_LEFT + k] = S[qb + Q_VRQ_LEFT + k]
    S[qb + Q_VRQ_LEFT] = 0
    S[qb + Q_VR_READY] = max(S[qb + Q_VR_READY], now)


@njit
def vpm_port(slack, S):
    """One 16-word vector through the VPM's QPU port, which all QPUs share: QPU-VPM 4 GB/s at
    250 MHz (issue 5's published figure) is one vector per XT_VPM_CPV cycles in total.  The
    access waits for the port ("vpm_port" stall) unless it can wait in a FIFO: ``slack``
    cycles (a write enters the QPU's write FIFO; a read must have its vector)."""
    t = S[X_G + XG_VPM_FREE]
    now = S[I_CUR + CU_NOW]
    if t - slack > now:
        stall_fetch(t - slack, XS_VPM, S)
    S[X_G + XG_VPM_FREE] = max(t, now) + S[X_G + XT_VPM_CPV]


@njit
def vpm_read(orow, V, D, S, code):
    """Pop one vector from the VPM read FIFO into V[orow] (reads block until the data is
    there: addendum Section 7; the guide's "undefined data" for early reads is not seen)."""
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    if S[qb + Q_VR_LEFT] == 0:
        if S[qb + Q_VRQ_LEFT] > 0:
            _promote_queued_read(qb, S, S[I_CUR + CU_NOW])
        else:
            emit(S, R_VPM_READ_NOSETUP, 0, 0, 0)
            for lane in range(LANES):
                V[orow, lane] = 0
                D[orow, lane] = 0
            return
    stall_to(S, code, S[qb + Q_VR_READY], S_VPM_READ)
    vpm_port(0, S)
    addr = S[qb + Q_VR_ADDR]
    size = S[qb + Q_VR_SIZE]
    width = vpm_vector(addr, S[qb + Q_VR_HORIZ], S[qb + Q_VR_LANED], size, S)
    vmask = (1 << width) - 1
    nbytes_mask = (1 << (width // 8)) - 1
    now = S[I_CUR + CU_NOW]
    hazard = -1
    for i in range(LANES):
        w = S[I_ISCR + i]
        sh = S[I_ISCR + 16 + i]
        if S[I_VPMHZ + 2 * w] > now and hazard < 0:
            hazard = w
        r = V_VPM + (w >> 4)
        V[orow, i] = (np.int64(V[r, w & 15]) >> sh) & vmask
        need = nbytes_mask << (sh // 8)
        D[orow, i] = 15 if (D[r, w & 15] & need) == need else 0
    if hazard >= 0:
        emit(S, R_VPM_DMA_WAIT, hazard, S[I_VPMHZ + 2 * hazard], 0)
    S[qb + Q_VR_ADDR] = (addr + S[qb + Q_VR_STRIDE]) & vpm_addr_mask(size)
    S[qb + Q_VR_LEFT] -= 1
    if S[qb + Q_VR_LEFT] == 0 and S[qb + Q_VRQ_LEFT] > 0:
        _promote_queued_read(qb, S, now)


@njit
def vpm_write(vrow, mask, V, D, S):
    """Push V[vrow] through the VPM write FIFO.  Writes outside the user window are masked
    (guide p.55); lanes whose condition failed write undefined data (addendum)."""
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    if S[qb + Q_VW_VALID] == 0:
        emit(S, R_VPM_WRITE_NOSETUP, 0, 0, 0)
        return
    vpm_port(S[X_G + XT_VPM_CPV], S)
    addr = S[qb + Q_VW_ADDR]
    size = S[qb + Q_VW_SIZE]
    width = vpm_vector(addr, S[qb + Q_VW_HORIZ], S[qb + Q_VW_LANED], size, S)
    vmask = (1 << width) - 1
    nbytes_mask = (1 << (width // 8)) - 1
    now = S[I_CUR + CU_NOW]
    limit = S[I_P + P_VPM_ROWS] * 16
    hazard = -1
    for i in range(LANES):
        w = S[I_ISCR + i]
        if w >= limit:
            continue
        if (S[I_VPMHZ + 2 * w] > now or S[I_VPMHZ + 2 * w + 1] > now) and hazard < 0:
            hazard = w
        sh = S[I_ISCR + 16 + i]
        r = V_VPM + (w >> 4)
        x = w & 15
        old = np.int64(V[r, x])
        V[r, x] = ((old & ~(vmask << sh)) | ((np.int64(V[vrow, i]) & vmask) << sh)) & 0xFFFFFFFF
        bytes_ = nbytes_mask << (sh // 8)
        if mask[i] != 0 and D[vrow, i] == 15:
            D[r, x] = D[r, x] | bytes_
        else:
            D[r, x] = D[r, x] & (15 - bytes_)
    if hazard >= 0:
        emit(S, R_VPM_DMA_WAIT, hazard, max(S[I_VPMHZ + 2 * hazard], S[I_VPMHZ + 2 * hazard + 1]), 1)
    S[qb + Q_VW_ADDR] = (addr + S[qb + Q_VW_STRIDE]) & vpm_addr_mask(size)


# ---------------------------------------------------------------------------------------------
# VCD / VDW DMA (Tables 34-37).  The data moves when the DMA is started; its duration is
# modelled from the timing table, and the VPM words it touches are marked busy for the
# shortest time it could take, so that a program touching them earlier is certainly racing.
# ---------------------------------------------------------------------------------------------

@njit
def vr_setup_write(word, S, tp):
    """vr_setup: VDR extended stride, VDR basic setup or VPM read setup (by the high bits)."""
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    if setup_is(word, S, SID_VDR_STRIDE):
        S[qb + Q_VDR_MPITCHB] = setup_field(word, S, SF_VDRS_MPITCHB)
    elif setup_is(word, S, SID_VDR_BASIC):
        S[qb + Q_VDR_SETUP] = word
    elif setup_is(word, S, SID_VPM_READ):
        vpm_read_setup(word, S, tp)
    else:
        emit(S, R_VPM_SETUP_RESERVED, word, 0, 0)


@njit
def vw_setup_write(word, S):
    """vw_setup: VPM write setup, VDW basic setup or VDW stride setup (by bits 31:30)."""
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    if setup_is(word, S, SID_VPM_WRITE):
        vpm_write_setup(word, S)
    elif setup_is(word, S, SID_VDW_BASIC):
        S[qb + Q_VDW_SETUP] = word
    elif setup_is(word, S, SID_VDW_STRIDE):
        S[qb + Q_VDW_STRIDE] = word
    else:
        emit(S, R_VPM_SETUP_RESERVED, word, 1, 0)


@njit
def dma_queue_wait(free, S):
    """Hold the QPU writing vr_addr / vw_addr until the (shared) engine is free (dma_queue
    stall; into the profile through CU_XSTALL, as stall_fetch: dma_load/dma_store get no ``code``)."""
    now = S[I_CUR + CU_NOW]
    if free > now:
        q = S[I_CUR + CU_Q]
        S[I_STALL + q * NCAUSES + S_DMA_QUEUE] += free - now
        S[I_CUR + CU_XSTALL] += free - now
        trace(S_DMA_QUEUE, q, now, free, S[I_CUR + CU_PC], 0, S)
        S[I_CUR + CU_NOW] = free


@njit
def dma_memory(addr, nrows, rowbytes, pitch, start, setup, bpc, write, S):
    """End cycle of a VCD load / VDW store of ``nrows`` rows of ``rowbytes`` bytes, ``pitch``
    apart in memory, started at ``start``.

    The engine moves rows at the rate of the published DMA measurements (``setup`` cycles,
    then ``bpc`` bytes per cycle); each row's lines also go through the memory side (the
    VideoCore L2 and shared SDRAM bandwidth), so the DMA ends when both are done.
    """
    end = start + cycles(setup + nrows * rowbytes / bpc)
    base = addr & ~3
    alias = (addr >> 30) & 3
    for r in range(nrows):
        t = start + cycles(setup + r * rowbytes / bpc)
        a = base + r * pitch
        first = (a & BUS_PHYS_MASK) >> LINE_SHIFT
        last = ((a + rowbytes - 1) & BUS_PHYS_MASK) >> LINE_SHIFT
        for line in range(first, last + 1):
            if write:
                done = memory_write(line, alias, t, S)
            else:
                done = memory_read(line, alias, t, S)
            if done > end:
                end = done
    trace(TK_SDRAM, TRK_SDRAM, start, end, 0 if write else nrows * rowbytes, nrows * rowbytes if write else 0, S)
    return end


@njit
def dma_load(addr, V, D, S, tp, mem, ps):
    """vr_addr write: VCD DMA load of a 2D block of 32-bit words from memory into the VPM.

    Row r, item k of the block in memory (at addr + r*pitch + 4k; pitch = 8*2**MPITCH or
    the extended-stride MPITCHB, Table 36/37) goes to VPM row Y + r*VPITCH, column X + k
    (horizontal) or row Y + r*VPITCH + k, column X (vertical): VPITCH is added to Y after
    each row in both modes (Table 36), which hardware-tested vertical loads confirm
    (py-videocore tests/test_dma.py).  8/16-bit widths are not modelled.
    """
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    setup = S[qb + Q_VDR_SETUP]
    if setup < 0:
        emit(S, R_UNDEFINED, UD_SETUP, 0, 0)
        return
    if setup_field(setup, S, SF_VDR_MODEW) != 0:
        emit(S, R_UNSUPPORTED, US_DMA_WIDTH, setup, 0)
        return
    now = S[I_CUR + CU_NOW]
    if S[qb + Q_LD_END] > now and S[qb + Q_LD_WAITED] == 0:
        emit(S, R_DMA_LOAD_BUSY, S[qb + Q_LD_END], 0, 0)
    # "A new DMA load or store operation cannot be started until the previous one is
    # complete" (guide p.56): the writing QPU waits until the engine takes the request
    dma_queue_wait(S[I_GS + G_VDR_FREE], S)
    now = S[I_CUR + CU_NOW]
    mpitch = setup_field(setup, S, SF_VDR_MPITCH)
    pitch = (8 << mpitch) if mpitch != 0 else S[qb + Q_VDR_MPITCHB]
    rowlen = setup_field(setup, S, SF_VDR_ROWLEN)
    nrows = setup_field(setup, S, SF_VDR_NROWS)
    vpitch = setup_field(setup, S, SF_VDR_VPITCH)
    vert = setup_field(setup, S, SF_VDR_VERT)
    xy = setup_field(setup, S, SF_VDR_ADDRXY)
    y0 = xy >> 4
    x0 = xy & 15
    if addr & 3:
        emit(S, R_MISALIGNED, addr, -1, 4)
    nbytes = nrows * rowlen * 4
    hz_end = now + cycles(nbytes / tp[T_VPM_BPC])
    bad = -1
    n_bad = 0
    hazard = -1
    for r in range(nrows):
        for k in range(rowlen):
            a = (addr & ~3) + r * pitch + 4 * k
            if vert:
                w = ((y0 + r * vpitch + k) * 16 + x0) % VPM_WORDS
            else:
                w = ((y0 + r * vpitch) * 16 + x0 + k) % VPM_WORDS
            hz = I_VPMHZ + 2 * w
            if (S[hz] > now or S[hz + 1] > now) and hazard < 0:
                hazard = w
            off = data_offset(a, 4, S, ps)
            vr = V_VPM + (w >> 4)
            if off < 0:
                if bad < 0:
                    bad = a
                n_bad += 1
                D[vr, w & 15] = 0
            else:
                V[vr, w & 15] = mem[off >> 2]
                D[vr, w & 15] = 15
            S[hz] = max(S[hz], hz_end)
    if bad >= 0:
        emit(S, R_OOB, bad, -1, n_bad)
    if hazard >= 0:
        emit(S, R_VPM_DMA_WAIT, hazard, max(S[I_VPMHZ + 2 * hazard], S[I_VPMHZ + 2 * hazard + 1]), 2)
    start = now
    end = dma_memory(addr, nrows, rowlen * 4, pitch, start, tp[T_VDR_SETUP], tp[T_VDR_BPC], 0, S)
    S[I_GS + G_VDR_FREE] = end
    S[qb + Q_LD_END] = end
    S[qb + Q_LD_WAITED] = 0
    S[X_CNT + XC_DMA_RD] += nbytes
    trace(TK_DMA_LOAD, TRK_DMA_LOAD, start, end, S[I_CUR + CU_Q], nbytes, S)


@njit
def dma_store(addr, V, D, S, tp, mem, ps):
    """vw_addr write: VDW DMA store of a 2D block of 32-bit words from the VPM to memory.

    UNITS rows of DEPTH words; row u starts at addr + u*(4*DEPTH + STRIDE) (STRIDE is the
    gap from the end of a row to the next, Table 35).  Row u, item d comes from VPM row
    Y + u, column X + d (horizontal) or row Y + d, column X + u (vertical) when BLOCKMODE is
    0, or from consecutive VPM words (along rows / down columns) when it is 1 (Tables 34-35).
    8/16-bit widths are not modelled.
    """
    qb = I_QS + S[I_CUR + CU_Q] * NQS
    setup = S[qb + Q_VDW_SETUP]
    if setup < 0:
        emit(S, R_UNDEFINED, UD_SETUP, 1, 0)
        return
    if setup_field(setup, S, SF_VDW_MODEW) != 0:
        emit(S, R_UNSUPPORTED, US_DMA_WIDTH, setup, 1)
        return
    now = S[I_CUR + CU_NOW]
    if S[qb + Q_ST_END] > now and S[qb + Q_ST_WAITED] == 0:
        emit(S, R_DMA_STORE_BUSY, S[qb + Q_ST_END], 0, 0)
    dma_queue_wait(S[I_GS + G_VDW_FREE], S)      # guide p.56, as for loads
    now = S[I_CUR + CU_NOW]
    units = setup_field(setup, S, SF_VDW_UNITS)
    depth = setup_field(setup, S, SF_VDW_DEPTH)
    horiz = setup_field(setup, S, SF_VDW_HORIZ)
    base = setup_field(setup, S, SF_VDW_VPMBASE)
    stride_word = S[qb + Q_VDW_STRIDE]
    blockmode = setup_field(stride_word, S, SF_VDWS_BLOCKMODE)
    stride = setup_field(stride_word, S, SF_VDWS_STRIDE)
    y0 = base >> 4
    x0 = base & 15
    if addr & 3:
        emit(S, R_MISALIGNED, addr, -1, 4)
    nbytes = units * depth * 4
    hz_end = now + cycles(nbytes / tp[T_VPM_BPC])
    bad = -1
    n_bad = 0
    undef = -1
    hazard = -1
    for u in range(units):
        for d in range(depth):
            a = (addr & ~3) + u * (4 * depth + stride) + 4 * d
            if blockmode:
                idx = u * depth + d
                if horiz:
                    w = (y0 * 16 + x0 + idx) % VPM_WORDS
                else:
                    w = ((y0 + idx % 16) * 16 + x0 + idx // 16) % VPM_WORDS
            elif horiz:
                w = ((y0 + u) * 16 + x0 + d) % VPM_WORDS
            else:
                w = ((y0 + d) * 16 + x0 + u) % VPM_WORDS
            hz = I_VPMHZ + 2 * w
            if S[hz] > now and hazard < 0:
                hazard = w
            vr = V_VPM + (w >> 4)
            if D[vr, w & 15] != 15 and undef < 0:
                undef = w
            off = data_offset(a, 4, S, ps)
            if off < 0:
                if bad < 0:
                    bad = a
                n_bad += 1
            else:
                mem[off >> 2] = V[vr, w & 15]
            S[hz + 1] = max(S[hz + 1], hz_end)
    if bad >= 0:
        emit(S, R_OOB, bad, -1, n_bad)
    if undef >= 0:
        emit(S, R_UNDEFINED, UD_VPM_STORE, undef, 0)
    if hazard >= 0:
        emit(S, R_VPM_DMA_WAIT, hazard, S[I_VPMHZ + 2 * hazard], 3)
    start = now
    end = dma_memory(addr, units, depth * 4, 4 * depth + stride, start, tp[T_VDW_SETUP], tp[T_VDW_BPC], 1, S)
    S[I_GS + G_VDW_FREE] = end
    S[qb + Q_ST_END] = end
    S[qb + Q_ST_WAITED] = 0
    S[X_CNT + XC_DMA_WR] += nbytes
    trace(TK_DMA_STORE, TRK_DMA_STORE, start, end, S[I_CUR + CU_Q], nbytes, S)


@njit
def element0_defined(vrow, mask, D, S, what, extra):
    """Element 0 of an I/O write whose value the hardware takes from element 0 must be
    defined (and actually written); else report undefined-value ``what``."""
    if D[vrow, 0] != 15 or mask[0] == 0:
        emit(S, R_UNDEFINED, what, extra, 0)
        return False
    return True


_ = (D_FLGD, UD_DMA_ADDRESS)
