"""The QPUs' shared and closely coupled units, as compiled helpers of the hot loop.

* events: ``emit`` records a rule finding (layout.CORE_RULES code) for Python to format.
* memory: bus address -> buffer offset with the locked-page check (memory.py page_state).
* TMU: direct-address general memory lookups, per-QPU request/receive FIFOs, the
  TMU0/TMU1 swap of QPUs 2 and 3 (guide p.23, p.39-41; addendum Section 4).
* VPM: the QPU read/write FIFOs with their setups (guide Section 7 p.53-58,
  Figures 8-9, Tables 32-33; addendum Section 7 on read setups).
* VCD/VDW: DMA loads and stores between memory and the VPM (Tables 34-37; the
  VDW stride is 16 bits wide per the addendum), one engine each shared by all QPUs.

State lives in the arrays described in layout.py: V (uint32 16-lane values), D (their
definedness byte masks: bit i = byte i was written, 15 = fully defined, plus flags),
S (int64 scalars, tables, events), ``code`` (pre-decoded instructions and their
profile counters), ``mem`` (GPU memory words) and ``ps`` (its page states).
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
    NQS,
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
        S[I_STALL + S[I_CUR + CU_Q] * NCAUSES + cause] += d
        code[S[I_CUR + CU_IDX], K_STALL] += d
        S[I_CUR + CU_NOW] = t


@njit
def cycles(x):
    """A duration in whole cycles (the timing table holds floats)."""
    return np.int64(x + 0.999999)


@njit
def mem_offset(addr, nbytes, S, ps):
    """Buffer offset of a bus address, or -1 if [addr, addr+nbytes) is not all in locked pages."""
    off = (addr & BUS_PHYS_MASK) - S[I_P + P_PHYS_BASE]
    if off < 0 or off + nbytes > S[I_P + P_MEM_SIZE]:
        return -1
    if ps[off >> 12] != PAGE_LOCKED or ps[(off + nbytes - 1) >> 12] != PAGE_LOCKED:
        return -1
    return off


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
        off = mem_offset(a & ~3, 4, S, ps)
        if off < 0:
            if bad_oob < 0:
                bad_oob = lane
            n_oob += 1
            continue
        if a & 3 and bad_mis < 0:
            bad_mis = lane
        V[row, lane] = mem[off >> 2]
        D[row, lane] = 15
    if bad_undef >= 0:
        emit(S, R_UNDEFINED, UD_TMU_ADDRESS, bad_undef, t)
    if bad_oob >= 0:
        emit(S, R_OOB, np.int64(V[vrow, bad_oob]), bad_oob, n_oob)
    if bad_mis >= 0:
        emit(S, R_MISALIGNED, np.int64(V[vrow, bad_mis]), bad_mis, 4)
    unit = I_GS + G_TMU_FREE + (q // QPUS_PER_SLICE) * 2 + u
    start = max(S[I_CUR + CU_NOW], S[unit])
    S[unit] = start + cycles(tp[T_TMU_ISSUE])
    S[I_TMUT + (q * 2 + u) * TMU_SLOTS + slot] = start + cycles(tp[T_TMU_LAT])
    S[ccol] = count + 1


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
            off = mem_offset(a, 4, S, ps)
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
    start = max(now, S[I_GS + G_VDR_FREE])
    end = start + cycles(tp[T_VDR_SETUP] + nbytes / tp[T_VDR_BPC])
    S[I_GS + G_VDR_FREE] = end
    S[qb + Q_LD_END] = end
    S[qb + Q_LD_WAITED] = 0


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
            off = mem_offset(a, 4, S, ps)
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
    start = max(now, S[I_GS + G_VDW_FREE])
    end = start + cycles(tp[T_VDW_SETUP] + nbytes / tp[T_VDW_BPC])
    S[I_GS + G_VDW_FREE] = end
    S[qb + Q_ST_END] = end
    S[qb + Q_ST_WAITED] = 0


@njit
def element0_defined(vrow, mask, D, S, what, extra):
    """Element 0 of an I/O write whose value the hardware takes from element 0 must be
    defined (and actually written); else report undefined-value ``what``."""
    if D[vrow, 0] != 15 or mask[0] == 0:
        emit(S, R_UNDEFINED, what, extra, 0)
        return False
    return True


_ = (D_FLGD, UD_DMA_ADDRESS)
