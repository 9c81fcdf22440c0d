"""The compiled hot loop: executes pre-decoded instructions on the 12 QPUs.

``run_loop`` runs the QPUs in strict time order (each QPU keeps its own int64 cycle
clock): the runnable QPU with the smallest (clock, QPU number) executes one instruction,
and goes on only while its clock does not pass the next QPU's.  Every instruction starts
in time order because nearly all of them touch something shared between QPUs: the
slice's instruction and uniforms caches (every fetch), the V3D L2 behind them, TMUs, VPM,
DMA engines, semaphores, mutex.  So the shared units see every request in time order,
same-cycle requests in QPU-number order.  The loop returns to Python when the job
ends, when a strict-mode error was recorded, when a code page must be pre-decoded, when
the event buffer fills, at a step limit (so Python can check the wall clock) or on
deadlock/timeout.

Order of effects within one instruction (guide p.17-25):

1. blocking checks with no side effect (semaphore at 0/15, mutex held): the QPU waits
   and re-executes the instruction when woken;
2. the SFU result of instruction N-3 lands in r4 (guide p.23);
3. register reads (regfile A/B, I/O: uniforms, VPM, wait registers ...), regfile-A or
   r4 unpack, the two ALU operations, mul-output rotation;
4. writes under the per-lane conditions, with pack; I/O writes (TMU, SFU, VPM, setups,
   DMA, unif_addr ...); flags;
5. signals (ldtmu loads r4 for the next instruction, guide p.19; thread end/switch);
6. PC update (branches take effect after their 3 delay slots, guide p.34).

Regfile writes are applied at once; a read of a location the previous instruction
wrote returns the old value in the lanes written (no forwarding, guide p.18), reported as
regfile-read-after-write.  The old contents are saved only when the next instruction of
the thread (known before the write: the next word, or a due branch's target) reads that
location, which a correct program never does.

Definedness: every value carries a byte mask (bit i: byte i was written), flags a
0/1 per lane.  Only undefined values that reach memory, an address, a setup register
or a branch decision are reported (issue 3).  See docs/emulator.md for sources.

Speed (docs/emulator.md "Speed"): the common ALU instruction (register, accumulator,
small immediate and uniform operands; unconditional register or accumulator results) is
executed inside the loop, without calls that pass the state arrays (each such call costs
about as much as the instruction); rows are copied and definedness is combined through
uint64 views of V and D (8 lanes of definedness per word).  The op switch of each ALU
runs once per instruction (alu.py has one lane loop per op).  Everything else goes
through the helpers above the loop.  Also for speed, none of which changes a result:
row loops run over the literal 16 lanes (LLVM unrolls them; V.shape[1] is a run-time
value to it); the scheduler keeps the runnable QPUs' keys in order (one insertion per
pick instead of a scan); each thread remembers the code row of its next instruction
(layout.I_NEXT), so a known PC needs no look-up; the common instruction-cache and
uniforms-cache hits are tested in the loop (units.code_fetch / uniform_fetch only on the
rest); and no value is read back in part right after the vector stores that wrote it
(keep_last_value, keep_result): the CPU cannot forward such a store and stalls.

State is in the few arrays of layout.py (V values, D definedness, S scalars, code,
mem, ps).  Only the loop is cached on disk (its machine code includes every helper).
numba re-validates a cache against the function's own file only, so a hash of every
source the loop depends on (core, units, layout, alu, jit, predecode, the ISA tables) is
a closure variable of the loop, which numba includes in the cache key: editing any of
them recompiles the loop instead of reusing stale constants.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from qpu.isa.signals import Cond, Signal

from .alu import (
    ADD_FADD,
    ADD_OR,
    FAST_FLOAT,
    MUL_FMUL,
    MUL_V8MIN,
    add_alu,
    add_rows,
    fadd_row,
    fmul_row,
    ldi_per_element,
    mul_alu,
    mul_rows,
    pack_a,
    pack_mul,
    r5_quad,
    r5_rep,
    rotate_full,
    rotate_quads,
    set_flags,
    sfu,
    unpack_a,
    unpack_r4,
)
from .jit import HAVE_NUMBA
from .layout import (
    C_BR0_DUE,
    C_BR0_TGT,
    C_BR1_DUE,
    C_BR1_TGT,
    C_BR_AT,
    C_END,
    C_END_DUE,
    C_ICOUNT,
    C_PACC,
    C_PACC_AT,
    C_PC,
    C_PW0,
    C_PW1,
    C_PW_AT,
    C_SFU_DUE,
    C_START,
    C_STATE,
    C_TSW_DUE,
    C_UNIF,
    C_UNIF_WRITE,
    CS_ACTIVE,
    CS_DONE,
    CS_SUSPENDED,
    CU_C,
    CU_ICOUNT,
    CU_IDX,
    CU_NOW,
    CU_PC,
    CU_Q,
    CU_XSTALL,
    D_FLG,
    D_FLGD,
    D_PAM,
    D_PWM,
    F_ADD_DIRECT,
    F_BLOCKS,
    F_MUL_DIRECT,
    F_WADD_FAST,
    F_WMUL_FAST,
    G_HOSTINT,
    G_MUTEX,
    G_NEED_PAGE,
    G_NEV,
    G_RESCHED,
    G_SEM,
    G_STOP,
    I_CS,
    I_CUR,
    I_GS,
    I_NEXT,
    I_P,
    I_QS,
    I_RING,
    I_SCHED,
    I_STALL,
    K_A_NEED,
    K_ADD_A,
    K_ADD_B,
    K_ADD_FLOAT_OUT,
    K_BR_ALL,
    K_BR_FLAG,
    K_BR_RADDR,
    K_BR_REG,
    K_BR_REL,
    K_BR_SET,
    K_COND_ADD,
    K_COND_MUL,
    K_EXEC,
    K_FLAGS,
    K_IMM,
    K_KIND,
    K_LDI_MODE,
    K_MUL_A,
    K_MUL_B,
    K_MUL_FLOAT_OUT,
    K_MUXUSE,
    K_OP_ADD,
    K_OP_MUL,
    K_PACK,
    K_PACK_A_BYTES,
    K_PACK_M_BYTES,
    K_PM,
    K_R4_NEED,
    K_RA_ARG,
    K_RA_CODE,
    K_RB_ARG,
    K_RB_CODE,
    K_RESERVED,
    K_ROT,
    K_SEM_ACQ,
    K_SEM_ID,
    K_SF,
    K_SIG,
    K_SMALL,
    K_STALL,
    K_TEIO,
    K_UNPACK,
    K_UNPACK_FLOAT,
    K_WADD_ARG,
    K_WADD_CODE,
    K_WMUL_ARG,
    K_WMUL_CODE,
    KIND_ALU,
    KIND_BRANCH,
    KIND_SEM,
    LANES,
    MAX_EVENTS,
    NCAUSES,
    NCS,
    NQS,
    NUM_CTX,
    NUM_QPUS,
    P_MAX_CYCLES,
    P_MAX_STEPS,
    P_MEM_SIZE,
    P_NO_HAZARD_CHECKS,
    P_OR_OP,
    P_PHYS_BASE,
    P_THREADS,
    Q_CLOCK,
    Q_CUR,
    Q_INSTR,
    Q_LD_END,
    Q_LD_WAITED,
    Q_NOSWAP,
    Q_ST_END,
    Q_ST_WAITED,
    Q_STATUS,
    Q_VR_LEFT,
    Q_VRQ_LEFT,
    Q_WAIT_ARG,
    Q_WAIT_IDX,
    Q_WAIT_KIND,
    Q_WAIT_SINCE,
    QS_BLOCKED,
    QS_DONE,
    QS_RUN,
    R_BRANCH_DELAY,
    R_BREAKPOINT,
    R_HOSTINT_ZERO,
    R_MISALIGNED,
    R_OOB,
    R_R4_READ_SFU,
    R_R4_WRITE_SFU,
    R_RAW,
    R_RESERVED,
    R_ROT_ACC,
    R_ROT_R5,
    R_THREAD_END_IO,
    R_UNDEFINED,
    R_UNIF_AFTER_ADDR,
    R_UNSUPPORTED,
    R_VPM_READS_LEFT,
    RC_ELEM,
    RC_MUTEX,
    RC_NOP,
    RC_QPUNUM,
    RC_REG,
    RC_UNIF,
    RC_UNMAPPED,
    RC_VARY,
    RC_VPM,
    RC_VR_BUSY,
    RC_VR_WAIT,
    RC_VW_BUSY,
    RC_VW_WAIT,
    RUN_DEADLOCK,
    RUN_DONE,
    RUN_EVENTS_FULL,
    RUN_NEED_CODE,
    RUN_STEP_LIMIT,
    RUN_STOP,
    RUN_TIMEOUT,
    S_DMA_LOAD_WAIT,
    S_DMA_STORE_WAIT,
    S_MUTEX,
    S_SEMAPHORE,
    S_THREAD_SWITCH,
    SC_CARRY_ADD,
    SC_CARRY_MUL,
    SC_LINK,
    SC_M_ADD,
    SC_M_MUL,
    SC_MK_ADD,
    SC_MK_MUL,
    SC_NOP_ADD,
    SC_NOP_MUL,
    SC_ONES,
    SC_R4U,
    SC_TMP,
    SC_TMP2,
    SC_VA,
    SC_VA_UNPACKED,
    SC_VB,
    T_CPI,
    T_MUTEX,
    T_SEM,
    T_TSW,
    UD_BRANCH_COND,
    UD_BRANCH_TARGET,
    UD_DMA_ADDRESS,
    UD_HOSTINT,
    UD_NOSWAP,
    UD_SETUP,
    UD_UNIF_ADDR,
    US_FRAGMENT_IO,
    US_SIGNAL,
    US_TEXTURE,
    US_TLB,
    US_VARYING,
    V_ACC,
    V_LAST,
    V_OUT,
    V_PW,
    V_RF,
    V_SCR,
    V_SFU,
    V_SMALL,
    W_MUTEX,
    W_SEM_ACQ,
    W_SEM_REL,
    WC_ACC,
    WC_FRAG,
    WC_HOSTINT,
    WC_MUTEX,
    WC_NONE,
    WC_NOSWAP,
    WC_R5QUAD,
    WC_R5REP,
    WC_REG,
    WC_SFU,
    WC_TLB,
    WC_TMU_OTHER,
    WC_TMU_S,
    WC_UNIF_ADDR,
    WC_VPM,
    WC_VR_ADDR,
    WC_VR_SETUP,
    WC_VW_ADDR,
    WC_VW_SETUP,
)
from .predecode import SMALL_BITS
from .units import (
    BUS_PHYS_MASK,
    E_TAG,
    LINE_SHIFT,
    PAGE_LOCKED,
    X_CL,
    X_CNT,
    X_G,
    X_QL,
    XC_IC_HIT,
    XC_UC_HIT,
    XG_TRACE,
    code_fetch,
    cycles,
    data_offset,
    dma_load,
    dma_store,
    element0_defined,
    emit,
    mem_offset,
    njit,
    stall_to,
    tmu_all_done,
    tmu_receive,
    tmu_request,
    uniform_fetch,
    vpm_read,
    vpm_write,
    vr_setup_write,
    vw_setup_write,
)

# Signals handled by the loop (values from qpu/isa/signals.py, Table 4 p.29).
SIG_BKPT = int(Signal.BREAKPOINT)
SIG_NONE = int(Signal.NONE)
SIG_THRSW = int(Signal.THREAD_SWITCH)
SIG_THREND = int(Signal.PROGRAM_END)
SIG_LTHRSW = int(Signal.LAST_THREAD_SWITCH)
SIG_LDCEND = int(Signal.LOAD_COLOR_END)
SIG_LDTMU0 = int(Signal.LOAD_TMU0)
SIG_LDTMU1 = int(Signal.LOAD_TMU1)
SIG_LAST_ALU = int(Signal.LOAD_ALPHA_MASK)
SIG_SMALL = int(Signal.SMALL_IMM)

# Write conditions (Table 2, p.28): 0 never, 1 always, then pairs (set, clear) of Z, N, C.
# cond_mask() computes flag = (cond - 2) >> 1 and "set" = even cond; check that against the enum.
assert int(Cond.NEVER) == 0 and int(Cond.ALWAYS) == 1
assert (int(Cond.ZS), int(Cond.ZC), int(Cond.NS), int(Cond.NC), int(Cond.CS), int(Cond.CC)) == (2, 3, 4, 5, 6, 7)

INT64_MAX = np.iinfo(np.int64).max
KEY_NONE = INT64_MAX         # scheduling key of a QPU that cannot run
ROW_MASK = (1 << 40) - 1     # code rows are non-negative: masking says so to LLVM

# scratch rows in V / D
R_VA = V_SCR + SC_VA
R_VB = V_SCR + SC_VB
R_VAU = V_SCR + SC_VA_UNPACKED
R_R4U = V_SCR + SC_R4U
R_NOPA = V_SCR + SC_NOP_ADD
R_NOPM = V_SCR + SC_NOP_MUL
R_CA = V_SCR + SC_CARRY_ADD
R_CM = V_SCR + SC_CARRY_MUL
R_MA = V_SCR + SC_M_ADD
R_MKA = V_SCR + SC_MK_ADD
R_MM = V_SCR + SC_M_MUL
R_MKM = V_SCR + SC_MK_MUL
R_TMP = V_SCR + SC_TMP
R_TMP2 = V_SCR + SC_TMP2
R_LINK = V_SCR + SC_LINK
R_ONES = V_SCR + SC_ONES

# 64-bit words of the uint64 views of V (8 per row) and D (2 per row): row copies move 8 + 2
# words instead of 16 + 16 elements, and definedness is combined 8 lanes at a time.
_W1 = np.uint64(1)
_W2 = np.uint64(2)
_W3 = np.uint64(3)
_W32 = np.uint64(32)
_BYTE_ONES = np.uint64(0x0101010101010101)
_BYTE_15S = np.uint64(0x0F0F0F0F0F0F0F0F)
_W15 = np.uint64(15)
_LANE_PAIR = np.uint64(0x100000001)   # v * _LANE_PAIR puts uint32 v into both halves of a word


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------

def inline(func):
    """A loop helper that numba inlines into its callers (``inline='always'``): for the few
    called on nearly every instruction, where a call costs as much as the work."""
    if HAVE_NUMBA:
        import numba
        return numba.njit(inline="always", nogil=True, _nrt=False)(func)
    return func


@njit
def full15(x):
    """Per byte of a D word: 15 if its four definedness bits are all set, else 0."""
    return (x & (x >> _W1) & (x >> _W2) & (x >> _W3) & _BYTE_ONES) * _W15


@njit
def copy_row(V, D64, dst, src):
    """V/D row ``dst`` = row ``src`` (16 lanes, values and definedness).  Values move as
    uint32 lanes, which LLVM vectorises: the ALU loops then read them back with vector loads
    (8-byte stores followed by a 32-byte load stall the store forwarding)."""
    for k in range(LANES):
        V[dst, k] = V[src, k]
    D64[dst, 0] = D64[src, 0]
    D64[dst, 1] = D64[src, 1]


@njit
def fill_row(V, D64, dst, v, defined):
    """Every lane of row ``dst`` = the uint32 ``v``; definedness 15 or 0."""
    for k in range(LANES):
        V[dst, k] = v
    d = _BYTE_15S if defined else np.uint64(0)
    D64[dst, 0] = d
    D64[dst, 1] = d


@njit
def keep_result(V, D64, src, out):
    """Elements 12-15 of an ALU result computed in place, for a later nop ALU with a
    destination (addendum "Secret access to previous MUL ALU result"), into its V_OUT row.
    Elements 8-15 are copied: one 32-byte load that matches the ALU loop's last vector store
    (a narrower load of part of it stalls: no store forwarding); elements 0-11 of a V_OUT
    row are never read."""
    for k in range(8, LANES):
        V[out, k] = V[src, k]
    D64[out, 1] = D64[src, 1]


@njit
def keep_last(V64, D64, src, last):
    """Lanes 0-3 of ``last`` = lanes 12-15 of ``src``: what address 39 reads later (addendum
    "Secret access to previous input values").  Lanes 4-15 of ``last`` are not used."""
    V64[last, 0] = V64[src, 6]
    V64[last, 1] = V64[src, 7]
    D64[last, 0] = D64[src, 1] >> _W32


@njit
def keep_last_value(V, D64, v, defined, last):
    """``keep_last`` of a row that fill_row(..., v, defined) just wrote, from the value itself:
    reading back part of the row right after its vector stores would stall (no store forwarding)."""
    for k in range(4):
        V[last, k] = v
    D64[last, 0] = _BYTE_15S >> _W32 if defined else np.uint64(0)


@njit
def cond_mask(cond, q, D, mrow, mkrow):
    """D[mrow] = the write condition passes per lane; D[mkrow] = that is known (flags defined)."""
    if cond == 0 or cond == 1:
        for lane in range(LANES):
            D[mrow, lane] = cond
            D[mkrow, lane] = 1
        return
    f = D_FLG + 3 * q + ((cond - 2) >> 1)
    want = 1 if (cond & 1) == 0 else 0
    fd = D_FLGD + q
    for lane in range(LANES):
        D[mrow, lane] = 1 if D[f, lane] == want else 0
        D[mkrow, lane] = D[fd, lane]


@njit
def block(q, kind, arg, idx, S):
    qb = I_QS + q * NQS
    S[qb + Q_STATUS] = QS_BLOCKED
    S[qb + Q_WAIT_KIND] = kind
    S[qb + Q_WAIT_ARG] = arg
    S[qb + Q_WAIT_SINCE] = S[I_CUR + CU_NOW]
    S[qb + Q_WAIT_IDX] = idx


@njit
def wake(kind, arg, t, S, code):
    """Make every QPU blocked on (kind, arg) runnable at time ``t``; it retries its instruction."""
    for qq in range(NUM_QPUS):
        qb = I_QS + qq * NQS
        if S[qb + Q_STATUS] == QS_BLOCKED and S[qb + Q_WAIT_KIND] == kind and \
                (kind == W_MUTEX or S[qb + Q_WAIT_ARG] == arg):
            S[qb + Q_STATUS] = QS_RUN
            newclock = max(S[qb + Q_CLOCK], t)
            d = newclock - S[qb + Q_WAIT_SINCE]
            if d > 0:
                S[I_STALL + qq * NCAUSES + (S_MUTEX if kind == W_MUTEX else S_SEMAPHORE)] += d
                code[S[qb + Q_WAIT_IDX], K_STALL] += d
            S[qb + Q_CLOCK] = newclock
            S[I_GS + G_RESCHED] = 1


@njit
def full_defs(D, dst, src, need):
    """D[dst, l] = 15 if the bytes ``need`` of D[src, l] are all defined, else 0."""
    for lane in range(LANES):
        D[dst, lane] = 15 if (D[src, lane] & need) == need else 0


@njit
def regfile_row(arg, q, c, S):
    """V row of a physical register: a second thread sees the upper and lower 16 locations of
    each file swapped by inverting address bit 4 (guide p.20)."""
    if S[I_P + P_THREADS] == 2 and (c & 1) == 1:
        arg = arg ^ 16
    return V_RF + q * 64 + arg


@njit
def code_row(pc, page_map, S, ps):
    """Code row of the instruction at bus address ``pc``, or -1 (not decoded yet, or not valid).
    A pure look-up: no fetch (units.mem_offset also models the fetch)."""
    off = (pc & BUS_PHYS_MASK) - S[I_P + P_PHYS_BASE]
    if (pc & 7) != 0 or off < 0 or off + 8 > S[I_P + P_MEM_SIZE] or ps[off >> 12] != PAGE_LOCKED:
        return -1
    base = page_map[off >> 12]
    if base < 0:
        return -1
    return base + ((off & 4095) >> 3)


@inline
def next_reads(nidx, row, rfb, tx, code):
    """Whether the instruction at code row ``nidx`` (-1: unknown, assume yes) reads V row ``row``
    of this thread's register file (through raddr_a/b, or as a branch target register)."""
    if nidx < 0:
        return True
    if code[nidx, K_RA_CODE] == RC_REG and rfb + (code[nidx, K_RA_ARG] ^ tx) == row:
        return True
    if code[nidx, K_RB_CODE] == RC_REG and rfb + (code[nidx, K_RB_ARG] ^ tx) == row:
        return True
    return code[nidx, K_KIND] == KIND_BRANCH and code[nidx, K_BR_REG] != 0 and \
        rfb + (code[nidx, K_BR_RADDR] ^ tx) == row


@inline
def plain_dest(is_mul, i, nidx, rfb, acc, tx, checks, code, V, D, S):
    """V row of a plain (unconditional, unpacked) register or accumulator write of instruction
    ``i``, after recording what the hazard checks of the next instruction (code row ``nidx``,
    -1 unknown) need: the register's old contents if it reads that register (no forwarding,
    guide p.18), the accumulator's written lanes if it rotates (guide p.37)."""
    wcode = code[i, K_WMUL_CODE] if is_mul else code[i, K_WADD_CODE]
    w = code[i, K_WMUL_ARG] if is_mul else code[i, K_WADD_ARG]
    if wcode == WC_REG:
        drow = rfb + ((w ^ tx) & 63)
        if checks and next_reads(nidx, drow, rfb, tx, code):
            record_regfile_write(drow, R_ONES, V, D, S)
        return drow
    if checks and (nidx < 0 or code[nidx, K_ROT] >= 0):
        record_acc_write(w & 7, R_ONES, D, S)
    return acc + (w & 7)


@njit
def read_regfile(rrow, orow, V, D, S):
    """Read a physical register; a location the previous instruction wrote yields its old
    value there (no forwarding, guide p.18): reported as regfile-read-after-write."""
    c = S[I_CUR + CU_C]
    cb = I_CS + c * NCS
    for lane in range(LANES):
        V[orow, lane] = V[rrow, lane]
        D[orow, lane] = D[rrow, lane]
    if S[cb + C_PW_AT] == S[I_CUR + CU_ICOUNT] - 1 and S[I_P + P_NO_HAZARD_CHECKS] == 0:
        for k in range(2):
            if S[cb + C_PW0 + k] == rrow:
                old = V_PW + 2 * c + k
                wm = D_PWM + 2 * c + k
                n = 0
                for lane in range(LANES):
                    if D[wm, lane] != 0:
                        n += 1
                        V[orow, lane] = V[old, lane]
                        D[orow, lane] = D[old, lane]
                if n > 0:
                    emit(S, R_RAW, (rrow - V_RF) % 64, n, 0)


@inline
def read_uniform(cb, icount, S, ps, mem):
    """Read the next uniform of the thread whose scalars start at S[cb] (guide p.22): the word,
    or -1 when its address is not readable (reported).  Advances the stream."""
    if icount - S[cb + C_UNIF_WRITE] <= 2 and S[I_P + P_NO_HAZARD_CHECKS] == 0:
        emit(S, R_UNIF_AFTER_ADDR, icount - S[cb + C_UNIF_WRITE], 0, 0)
    a = S[cb + C_UNIF]
    S[cb + C_UNIF] = (a + 4) & 0xFFFFFFFF
    off = data_offset(a, 4, S, ps)
    if off >= 0:
        # units.uniform_fetch's own shortcut (the thread's last uniforms-cache line still
        # there: a hit), here so that the common case makes no call
        line1 = ((a & BUS_PHYS_MASK) >> LINE_SHIFT) + 1
        cl = X_CL + 2 * S[I_CUR + CU_C]
        if S[cl] == line1 and S[S[cl + 1] + E_TAG] == line1:
            S[X_CNT + XC_UC_HIT] += 1
        else:
            uniform_fetch(a, S)
    if off < 0:
        emit(S, R_OOB, a, -3, 1)
        return -1
    if a & 3:
        emit(S, R_MISALIGNED, a, -3, 4)
    return np.int64(mem[off >> 2])


@njit
def read_port(fileb, rcode, arg, orow, V, D, S, tp, mem, ps, code):
    """Perform the read of one raddr field (with its side effects) into V/D[orow]."""
    q = S[I_CUR + CU_Q]
    c = S[I_CUR + CU_C]
    qb = I_QS + q * NQS
    last = V_LAST + 2 * q + fileb
    if rcode == RC_REG:
        read_regfile(regfile_row(arg, q, c, S), orow, V, D, S)
    elif rcode == RC_NOP:
        # address 39 returns the values elements 12-15 last read through this file, repeated
        # per quad (addendum "Secret access to previous input values through the NOP register")
        for lane in range(LANES):
            V[orow, lane] = V[last, lane & 3]
            D[orow, lane] = D[last, lane & 3]
        return
    elif rcode == RC_UNIF:
        v = read_uniform(I_CS + (c & 31) * NCS, S[I_CUR + CU_ICOUNT], S, ps, mem)
        for lane in range(LANES):
            V[orow, lane] = v if v >= 0 else 0
            D[orow, lane] = 15 if v >= 0 else 0
    elif rcode == RC_ELEM or (rcode == RC_UNMAPPED and fileb == 0):
        for lane in range(LANES):
            V[orow, lane] = lane
            D[orow, lane] = 15
    elif rcode == RC_QPUNUM or (rcode == RC_UNMAPPED and fileb == 1):
        for lane in range(LANES):
            V[orow, lane] = q
            D[orow, lane] = 15
    elif rcode == RC_VPM:
        vpm_read(orow, V, D, S, code)
    elif rcode == RC_VR_BUSY or rcode == RC_VW_BUSY:
        endcol = qb + (Q_LD_END if rcode == RC_VR_BUSY else Q_ST_END)
        busy = 1 if S[endcol] > S[I_CUR + CU_NOW] else 0
        if busy == 0:
            S[qb + (Q_LD_WAITED if rcode == RC_VR_BUSY else Q_ST_WAITED)] = 1
        for lane in range(LANES):
            V[orow, lane] = busy
            D[orow, lane] = 15
    elif rcode == RC_VR_WAIT or rcode == RC_VW_WAIT:
        if rcode == RC_VR_WAIT:
            stall_to(S, code, S[qb + Q_LD_END], S_DMA_LOAD_WAIT)
            S[qb + Q_LD_WAITED] = 1
        else:
            stall_to(S, code, S[qb + Q_ST_END], S_DMA_STORE_WAIT)
            S[qb + Q_ST_WAITED] = 1
        for lane in range(LANES):
            V[orow, lane] = 0
            D[orow, lane] = 0
    elif rcode == RC_MUTEX:
        # granted (the loop blocked the QPU before the instruction while the mutex was held);
        # the read data is the unmapped-I/O default: element or QPU number (guide p.24)
        S[I_GS + G_MUTEX] = q
        S[I_CUR + CU_NOW] += cycles(tp[T_MUTEX])
        for lane in range(LANES):
            V[orow, lane] = lane if fileb == 0 else q
            D[orow, lane] = 15
    else:  # RC_VARY, RC_FRAG: fragment-shader interfaces
        emit(S, R_UNSUPPORTED, US_VARYING if rcode == RC_VARY else US_FRAGMENT_IO, 0, 0)
        for lane in range(LANES):
            V[orow, lane] = 0
            D[orow, lane] = 0
    for k in range(4):
        V[last, k] = V[orow, 12 + k]
        D[last, k] = D[orow, 12 + k]


@njit
def record_regfile_write(rrow, mrow, V, D, S):
    """Keep the old contents of a register the current instruction writes (for the next
    instruction's read-after-write check)."""
    c = S[I_CUR + CU_C]
    cb = I_CS + c * NCS
    if S[cb + C_PW_AT] != S[I_CUR + CU_ICOUNT]:
        S[cb + C_PW_AT] = S[I_CUR + CU_ICOUNT]
        S[cb + C_PW0] = -1
        S[cb + C_PW0 + 1] = -1
    k = 0 if S[cb + C_PW0] < 0 else 1
    S[cb + C_PW0 + k] = rrow
    old = V_PW + 2 * c + k
    wm = D_PWM + 2 * c + k
    for lane in range(LANES):
        V[old, lane] = V[rrow, lane]
        D[old, lane] = D[rrow, lane]
        D[wm, lane] = D[mrow, lane]


@njit
def record_acc_write(a, mrow, D, S):
    """Remember which lanes of accumulator ``a`` this instruction writes (rotation checks)."""
    c = S[I_CUR + CU_C]
    cb = I_CS + c * NCS
    if S[cb + C_PACC_AT] != S[I_CUR + CU_ICOUNT]:
        S[cb + C_PACC_AT] = S[I_CUR + CU_ICOUNT]
        S[cb + C_PACC] = 0
    row = D_PAM + 6 * c + a
    if S[cb + C_PACC] & (1 << a):
        for lane in range(LANES):
            D[row, lane] |= D[mrow, lane]
    else:
        for lane in range(LANES):
            D[row, lane] = D[mrow, lane]
        S[cb + C_PACC] |= 1 << a


@njit
def store_lanes(drow, srow, vrow, mrow, mkrow, nbytes, V, D):
    """Conditional per-lane write of V[srow] (definedness D[vrow]) over bytes ``nbytes`` of row drow."""
    keep = 15 - nbytes
    for lane in range(LANES):
        if D[mrow, lane] != 0:
            V[drow, lane] = V[srow, lane]
            if D[mkrow, lane] != 0 and D[vrow, lane] == 15:
                D[drow, lane] = (D[drow, lane] & keep) | nbytes
            elif D[mkrow, lane] != 0:
                D[drow, lane] = D[drow, lane] & keep
            else:
                D[drow, lane] = 0
        elif D[mkrow, lane] == 0:
            D[drow, lane] = 0


@njit
def write_result(is_mul, wcode, warg, vrow, mrow, mkrow, i, arow, brow, op_for_pack, V, D, S, tp, mem, ps,
                 code):
    """Write one ALU's 16-lane result V[vrow] to its destination (register, accumulator, I/O)
    under the lane mask D[mrow] (D[mkrow]: the mask is known).  The loop writes plain
    unconditional register and accumulator results itself; everything else comes here."""
    if wcode == WC_NONE:
        return
    q = S[I_CUR + CU_Q]
    c = S[I_CUR + CU_C]
    cb = I_CS + c * NCS
    pm = code[i, K_PM]
    pack = code[i, K_PACK]
    checks = S[I_P + P_NO_HAZARD_CHECKS] == 0
    if wcode == WC_REG or wcode == WC_ACC:
        if wcode == WC_REG:
            drow = regfile_row(warg, q, c, S)
            if checks:
                record_regfile_write(drow, mrow, V, D, S)
        else:
            drow = V_ACC + 6 * q + warg
            if checks:
                record_acc_write(warg, mrow, D, S)
        nbytes = 15
        srow = vrow
        if is_mul and pm == 1 and pack != 0:
            # mul colour pack into the chosen byte(s) of any destination (Table 9, p.32)
            pack_mul(pack, V[vrow], V[drow], V[R_TMP])
            srow = R_TMP
            nbytes = code[i, K_PACK_M_BYTES]
        elif pm == 0 and pack != 0 and wcode == WC_REG and warg < 32:
            # regfile-A pack applies to writes into physical regfile A (Table 7, p.31)
            fres = code[i, K_MUL_FLOAT_OUT] if is_mul else code[i, K_ADD_FLOAT_OUT]
            pack_a(pack, V[vrow], V[drow], fres, -1 if is_mul else op_for_pack, V[arow], V[brow], V[R_TMP])
            srow = R_TMP
            nbytes = code[i, K_PACK_A_BYTES]
        store_lanes(drow, srow, vrow, mrow, mkrow, nbytes, V, D)
        return
    if wcode == WC_R5QUAD or wcode == WC_R5REP:
        # r5 via regfile A: element 0 of each quad to the quad; via B: element 0 to all
        # (addendum "Writing to r5"); the source element's condition decides the write
        if checks:
            record_acc_write(5, mrow, D, S)
        r5 = V_ACC + 6 * q + 5
        if wcode == WC_R5QUAD:
            r5_quad(V[vrow], V[R_TMP])
        else:
            r5_rep(V[vrow], V[R_TMP])
        for lane in range(LANES):
            s = (lane & 12) if wcode == WC_R5QUAD else 0
            if D[mrow, s] != 0:
                V[r5, lane] = V[R_TMP, lane]
                D[r5, lane] = D[vrow, s] if D[mkrow, s] != 0 else 0
            elif D[mkrow, s] == 0:
                D[r5, lane] = 0
        return
    # I/O registers.  FIFO-type registers are pushed whatever the lane conditions
    # (addendum "No conditional write to peripheral registers"): lanes whose condition
    # failed (or is unknown) carry undefined data.
    tm = D[R_TMP2]
    for lane in range(LANES):
        tm[lane] = 1 if (D[mrow, lane] != 0 and D[mkrow, lane] != 0) else 0
    if wcode == WC_TMU_S:
        tmu_request(warg, vrow, tm, V, D, S, tp, mem, ps)
    elif wcode == WC_VPM:
        vpm_write(vrow, tm, V, D, S)
    elif wcode == WC_SFU:
        if S[cb + C_SFU_DUE] > S[I_CUR + CU_ICOUNT] and checks:
            emit(S, R_R4_WRITE_SFU, 1, 0, 0)
        sr = V_SFU + c
        sfu(warg, V[vrow], V[sr])
        for lane in range(LANES):
            D[sr, lane] = 15 if (tm[lane] != 0 and D[vrow, lane] == 15) else 0
        # the result is in r4 for the third instruction after the write (guide p.23)
        S[cb + C_SFU_DUE] = S[I_CUR + CU_ICOUNT] + 3
    elif wcode == WC_VR_SETUP or wcode == WC_VW_SETUP:
        if element0_defined(vrow, tm, D, S, UD_SETUP, 0 if wcode == WC_VR_SETUP else 1):
            if wcode == WC_VR_SETUP:
                vr_setup_write(np.int64(V[vrow, 0]), S, tp)
            else:
                vw_setup_write(np.int64(V[vrow, 0]), S)
    elif wcode == WC_VR_ADDR:
        if element0_defined(vrow, tm, D, S, UD_DMA_ADDRESS, 0):
            dma_load(np.int64(V[vrow, 0]), V, D, S, tp, mem, ps)
    elif wcode == WC_VW_ADDR:
        if element0_defined(vrow, tm, D, S, UD_DMA_ADDRESS, 1):
            dma_store(np.int64(V[vrow, 0]), V, D, S, tp, mem, ps)
    elif wcode == WC_UNIF_ADDR:
        # the uniform stream restarts at element 0's address (guide p.22)
        element0_defined(vrow, tm, D, S, UD_UNIF_ADDR, 0)
        S[cb + C_UNIF] = np.int64(V[vrow, 0])
        S[cb + C_UNIF_WRITE] = S[I_CUR + CU_ICOUNT]
    elif wcode == WC_NOSWAP:
        # only element 0 counts, any non-zero value disables the swap (addendum Section 4)
        element0_defined(vrow, tm, D, S, UD_NOSWAP, 0)
        S[I_QS + q * NQS + Q_NOSWAP] = 1 if V[vrow, 0] != 0 else 0
    elif wcode == WC_HOSTINT:
        # conditional writes work as expected and zero raises nothing (addendum "Host
        # Interrupt"); element 0 is taken, like every element-0 I/O register
        if D[mrow, 0] != 0:
            element0_defined(vrow, tm, D, S, UD_HOSTINT, 0)
            if V[vrow, 0] != 0:
                S[I_GS + G_HOSTINT] += 1
            else:
                emit(S, R_HOSTINT_ZERO, 0, 0, 0)
    elif wcode == WC_MUTEX:
        any_lane = 0
        for lane in range(LANES):
            any_lane |= D[mrow, lane]
        if any_lane != 0 and S[I_GS + G_MUTEX] == q:
            S[I_GS + G_MUTEX] = -1
            wake(W_MUTEX, 0, S[I_CUR + CU_NOW], S, code)
    elif wcode == WC_TMU_OTHER:
        emit(S, R_UNSUPPORTED, US_TEXTURE, warg, 0)
    elif wcode == WC_TLB:
        emit(S, R_UNSUPPORTED, US_TLB, 0, 0)
    elif wcode == WC_FRAG:
        emit(S, R_UNSUPPORTED, US_FRAGMENT_IO, 1, 0)


@njit
def set_flags_from(q, vrow, crow, mrow, mkrow, V, D):
    """Flags are updated only in lanes whose write condition passes (addendum, set flags)."""
    f = D_FLG + 3 * q
    set_flags(V[vrow], D[crow], D[mrow], D[f], D[f + 1], D[f + 2])
    fd = D_FLGD + q
    for lane in range(LANES):
        if D[mkrow, lane] == 0:
            D[fd, lane] = 0
        elif D[mrow, lane] != 0:
            D[fd, lane] = 1 if D[vrow, lane] == 15 else 0


@njit
def operand_row(mux, acc, row_a, row_b, row_r4):
    """V row of an ALU input (Table 3, p.28): 0-5 accumulators (``acc`` = r0's row), 6 what
    regfile A delivered, 7 what regfile B (or the small immediate) delivered."""
    if mux == 6:
        return row_a
    if mux == 7:
        return row_b
    if mux == 4:
        return row_r4
    return acc + (mux & 7)


@njit
def rotate_rows(full, n, row, V, D):
    """Rotate a mul result (value, definedness, carry) by n elements."""
    if full:
        rotate_full(V[row], n, V[R_TMP])
        rotate_full(D[row], n, D[R_TMP])
        rotate_full(D[R_CM], n, D[R_TMP2])
    else:
        rotate_quads(V[row], n, V[R_TMP])
        rotate_quads(D[row], n, D[R_TMP])
        rotate_quads(D[R_CM], n, D[R_TMP2])
    for lane in range(LANES):
        V[row, lane] = V[R_TMP, lane]
        D[row, lane] = D[R_TMP, lane]
        D[R_CM, lane] = D[R_TMP2, lane]


@njit
def rotate_mul(i, row, xa, xb, icount, q, c, V, D, S, code):
    """Mul-output rotation (small immediates 48-63, Table 5) and its hazard checks."""
    cb = I_CS + c * NCS
    rot = code[i, K_ROT]
    n = rot
    r5 = V_ACC + 6 * q + 5
    checks = S[I_P + P_NO_HAZARD_CHECKS] == 0
    if rot == 0:
        # rotation by r5 element 0 bits 3:0 (Table 5)
        if checks and S[cb + C_PACC_AT] == icount - 1 and (S[cb + C_PACC] & 32) != 0:
            emit(S, R_ROT_R5, 0, 0, 0)
        n = np.int64(V[r5, 0]) & 15
        if D[r5, 0] != 15:
            for lane in range(LANES):
                D[row, lane] = 0
    if n != 0:
        full = xa <= 3 and xb <= 3
        if checks and full and S[cb + C_PACC_AT] == icount - 1 and code[i, K_COND_MUL] != 0:
            # full rotation needs both mul operands from r0-r3; data moving to a lower quad
            # from an accumulator the previous instruction wrote is stale (guide p.37;
            # addendum "Horizontal vector rotation": only lanes actually written count)
            for k in range(2):
                acc_i = xa if k == 0 else xb
                if (S[cb + C_PACC] >> acc_i) & 1:
                    pam = D_PAM + 6 * c + acc_i
                    for d in range(LANES):
                        s = (d - n) & 15
                        if (s >> 2) > (d >> 2) and D[pam, s] != 0 and (D[R_MM, d] != 0 or D[R_MKM, d] == 0):
                            emit(S, R_ROT_ACC, acc_i, s, d)
                            break
        rotate_rows(full, n, row, V, D)


# ---------------------------------------------------------------------------------------------
# instruction kinds other than ALU (the ALU instruction is executed inside the loop)
# ---------------------------------------------------------------------------------------------

@njit
def exec_ldi(i, code, V, D, S, tp, mem, ps):
    """Load immediate (3 modes) and the semaphore instruction, which "otherwise behaves like a
    32-bit load immediate" (guide p.33): the value appears at both ALU outputs."""
    q = S[I_CUR + CU_Q]
    if code[i, K_KIND] == KIND_SEM:
        s = code[i, K_SEM_ID]
        if code[i, K_SEM_ACQ] != 0:
            S[I_GS + G_SEM + s] -= 1
            wake(W_SEM_REL, s, S[I_CUR + CU_NOW], S, code)
        else:
            S[I_GS + G_SEM + s] += 1
            wake(W_SEM_ACQ, s, S[I_CUR + CU_NOW], S, code)
        S[I_CUR + CU_NOW] += cycles(tp[T_SEM])
    imm = code[i, K_IMM]
    mode = code[i, K_LDI_MODE]
    out_a = V_OUT + 2 * q
    out_m = out_a + 1
    if mode == 0 or code[i, K_KIND] == KIND_SEM:
        for lane in range(LANES):
            V[out_a, lane] = imm
    else:
        # modes 1 (signed) and 3 (unsigned) per-element 2-bit values (guide p.33, Figure 5)
        ldi_per_element(imm, 1 if mode == 1 else 0, V[out_a])
    for lane in range(LANES):
        D[out_a, lane] = 15
        D[R_CA, lane] = 0
        # both ALUs' last results are the immediate now (what a later nop ALU writes)
        V[out_m, lane] = V[out_a, lane]
        D[out_m, lane] = 15
    cond_mask(code[i, K_COND_ADD], q, D, R_MA, R_MKA)
    cond_mask(code[i, K_COND_MUL], q, D, R_MM, R_MKM)
    # the add ALU performs a "mov" (or) of the immediate: what the 32s pack sees
    if code[i, K_COND_ADD] != 0:
        write_result(False, code[i, K_WADD_CODE], code[i, K_WADD_ARG], out_a, R_MA, R_MKA, i, out_a, out_a,
                     S[I_P + P_OR_OP], V, D, S, tp, mem, ps, code)
    if code[i, K_COND_MUL] != 0:
        write_result(True, code[i, K_WMUL_CODE], code[i, K_WMUL_ARG], out_a, R_MM, R_MKM, i, out_a, out_a, -1,
                     V, D, S, tp, mem, ps, code)
    if code[i, K_SF] != 0:
        set_flags_from(q, out_a, R_CA, R_MA, R_MKA, V, D)


@njit
def exec_branch(i, code, V, D, S, tp, mem, ps):
    q = S[I_CUR + CU_Q]
    c = S[I_CUR + CU_C]
    cb = I_CS + c * NCS
    icount = S[I_CUR + CU_ICOUNT]
    pc = S[I_CUR + CU_PC]
    # at least two non-branch instructions between branches, taken or not (addendum "Distance
    # of branch instructions"); a branch in the third delay slot of another is fine
    if icount - S[cb + C_BR_AT] < 3:
        emit(S, R_BRANCH_DELAY, icount - S[cb + C_BR_AT], 0, 0)
        return
    S[cb + C_BR_AT] = icount
    flag = code[i, K_BR_FLAG]
    taken = True
    if flag >= 0:
        want = code[i, K_BR_SET]
        undefined = 0
        hits = 0
        f = D_FLG + 3 * q + flag
        for lane in range(LANES):
            if D[D_FLGD + q, lane] == 0:
                undefined += 1
            if D[f, lane] == want:
                hits += 1
        if undefined > 0:
            emit(S, R_UNDEFINED, UD_BRANCH_COND, undefined, 0)
        # conditions over all 16 elements' flags (Table 11, p.34-35)
        taken = hits == LANES if code[i, K_BR_ALL] != 0 else hits > 0
    target = code[i, K_IMM]
    if code[i, K_BR_REL] != 0:
        target += pc + 32   # relative to PC + 4 instructions (guide p.20)
    if code[i, K_BR_REG] != 0:
        # regfile A read; the target comes from element 15 (addendum "Branch Instruction -
        # register source"), not element 0 as the guide says
        read_regfile(regfile_row(code[i, K_BR_RADDR], q, c, S), R_TMP, V, D, S)
        if D[R_TMP, 15] != 15:
            emit(S, R_UNDEFINED, UD_BRANCH_TARGET, 0, 0)
        target += np.int64(V[R_TMP, 15])
    target &= 0xFFFFFFFF
    if not taken:
        return
    # link and flags are written only when the branch is taken (addendum "target assignment")
    if S[cb + C_BR0_DUE] >= icount:
        S[cb + C_BR1_DUE] = icount + 3
        S[cb + C_BR1_TGT] = target
    else:
        S[cb + C_BR0_DUE] = icount + 3
        S[cb + C_BR0_TGT] = target
    link = (pc + 32) & 0xFFFFFFFF   # the current instruction plus four (guide p.34)
    for lane in range(LANES):
        V[R_LINK, lane] = link
        D[R_LINK, lane] = 15
        D[R_CA, lane] = 0
        D[R_MA, lane] = 1
        D[R_MKA, lane] = 1
    write_result(False, code[i, K_WADD_CODE], code[i, K_WADD_ARG], R_LINK, R_MA, R_MKA, i, R_LINK, R_LINK, -1,
                 V, D, S, tp, mem, ps, code)
    write_result(True, code[i, K_WMUL_CODE], code[i, K_WMUL_ARG], R_LINK, R_MA, R_MKA, i, R_LINK, R_LINK, -1,
                 V, D, S, tp, mem, ps, code)
    if code[i, K_SF] != 0:
        set_flags_from(q, R_LINK, R_CA, R_MA, R_MKA, V, D)


@njit
def exec_signal(sig, icount, q, c, V, D, S, code):
    """The signal of an ALU instruction (Table 4, p.29), after its ALU work."""
    cb = I_CS + c * NCS
    if sig == SIG_LDTMU0 or sig == SIG_LDTMU1:
        if S[cb + C_SFU_DUE] > icount and S[I_P + P_NO_HAZARD_CHECKS] == 0:
            emit(S, R_R4_WRITE_SFU, 2, 0, 0)
        tmu_receive(sig - SIG_LDTMU0, V, D, S, code)
    elif sig == SIG_THREND:
        S[cb + C_END_DUE] = icount + 2
    elif sig == SIG_THRSW or sig == SIG_LTHRSW:
        S[cb + C_TSW_DUE] = icount + 2
    elif sig == SIG_BKPT:
        emit(S, R_BREAKPOINT, 0, 0, 0)
    elif sig <= SIG_LAST_ALU:
        # scoreboard and tile-buffer signals belong to fragment shaders
        emit(S, R_UNSUPPORTED, US_SIGNAL, sig, 0)
        if sig == SIG_LDCEND:
            S[cb + C_END_DUE] = icount + 2


# ---------------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------------

@njit
def resume_thread(q, o, S, D):
    """Run context ``o`` on QPU q.  Accumulators and flags are not preserved across thread
    switches (guide p.21): the resumed thread sees them undefined."""
    qb = I_QS + q * NQS
    ob = I_CS + o * NCS
    S[qb + Q_CUR] = o & 1
    if S[ob + C_START] < 0:
        S[ob + C_START] = S[qb + Q_CLOCK]
    S[ob + C_STATE] = CS_ACTIVE
    for a in range(6):
        for lane in range(LANES):
            D[V_ACC + 6 * q + a, lane] = 0
    for lane in range(LANES):
        D[D_FLGD + q, lane] = 0


@njit
def finish_thread(q, c, S, D):
    """Program end after its two delay slots (guide p.21): outstanding VPM reads are
    cancelled (guide p.56), which a correct program never leaves (vpm-reads-left)."""
    qb = I_QS + q * NQS
    left = S[qb + Q_VR_LEFT] + S[qb + Q_VRQ_LEFT]
    if left > 0:
        emit(S, R_VPM_READS_LEFT, left, 0, 0)
        S[qb + Q_VR_LEFT] = 0
        S[qb + Q_VRQ_LEFT] = 0
    cb = I_CS + c * NCS
    S[cb + C_STATE] = CS_DONE
    S[cb + C_END] = S[qb + Q_CLOCK]
    o = c ^ 1
    if S[I_P + P_THREADS] == 2 and S[I_CS + o * NCS + C_STATE] == CS_SUSPENDED:
        resume_thread(q, o, S, D)
    else:
        S[qb + Q_STATUS] = QS_DONE


@njit
def switch_thread(q, c, S, D, tp, code):
    """Thread switch after its two delay slots (guide p.21).  With one thread per QPU the
    program just waits until its TMU requests are complete (the QPU idles, then resumes the
    suspended thread); with two, the other suspended thread runs."""
    qb = I_QS + q * NQS
    o = c ^ 1
    if S[I_P + P_THREADS] == 2 and S[I_CS + o * NCS + C_STATE] == CS_SUSPENDED:
        S[I_CS + c * NCS + C_STATE] = CS_SUSPENDED
        S[qb + Q_CLOCK] += cycles(tp[T_TSW])
        resume_thread(q, o, S, D)
        return
    t = tmu_all_done(q, S)
    clock = S[qb + Q_CLOCK]
    if t > clock:
        S[I_STALL + q * NCAUSES + S_THREAD_SWITCH] += t - clock
        code[S[I_CUR + CU_IDX], K_STALL] += t - clock
        S[qb + Q_CLOCK] = t
    S[qb + Q_CLOCK] += cycles(tp[T_TSW])


@inline
def sched_key(q, S):
    """The scheduler's key of QPU q: clock * 16 + q while it can run, else KEY_NONE."""
    qb = I_QS + q * NQS
    if S[qb + Q_STATUS] == QS_RUN:
        S[I_SCHED + q] = (S[qb + Q_CLOCK] << 4) + q
    else:
        S[I_SCHED + q] = KEY_NONE


@njit
def fetch_failed(q, c, pc, off, S):
    """Instruction fetch outside locked memory or misaligned: the thread cannot go on."""
    emit(S, R_MISALIGNED if off >= 0 else R_OOB, pc, -2, 8)
    S[I_CS + c * NCS + C_STATE] = CS_DONE
    S[I_QS + q * NQS + Q_STATUS] = QS_DONE


@njit
def blocks_now(i, q, kind, S, code):
    """Blocking checks before any side effect (semaphore at 0/15, mutex held): True if the QPU
    must wait; it re-executes the instruction when woken."""
    if kind == KIND_SEM:
        s = code[i, K_SEM_ID]
        # acquire stalls at 0, release at 15 (guide p.33)
        if code[i, K_SEM_ACQ] != 0:
            if S[I_GS + G_SEM + s] <= 0:
                block(q, W_SEM_ACQ, s, i, S)
                return True
        elif S[I_GS + G_SEM + s] >= 15:
            block(q, W_SEM_REL, s, i, S)
            return True
    elif S[I_GS + G_MUTEX] >= 0:   # a mutex read while another QPU (or this one) holds it
        block(q, W_MUTEX, S[I_GS + G_MUTEX], i, S)
        return True
    return False


# ---------------------------------------------------------------------------------------------
# the loop: scheduler and one instruction
# ---------------------------------------------------------------------------------------------

def _source_stamp() -> str:
    """Hash of the compiled modules' sources and of the ISA tables they bake in."""
    here = os.path.dirname(os.path.abspath(__file__))
    isa = os.path.join(os.path.dirname(here), "qpu", "isa")
    paths = [os.path.join(here, n) for n in ("core.py", "units.py", "layout.py", "alu.py", "jit.py", "predecode.py")]
    if os.path.isdir(isa):
        paths += sorted(os.path.join(isa, n) for n in os.listdir(isa) if n.endswith(".py"))
    h = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as fh:
                h.update(fh.read())
        except OSError:
            h.update(path.encode())
    return h.hexdigest()


def _make_run_loop(stamp: str):
    def run_loop_compiled(code, page_map, V, D, S, tp, mem, ps, V64, D64):
        """Run QPUs until the job ends or Python is needed (a RUN_* code).  V64 / D64 are uint64
        views of V / D (same memory).

        Scheduling: the runnable QPU with the smallest clock (the lowest number among equal
        ones) runs as long as its clock does not pass the next QPU's (at equal clocks it goes
        on).  So every instruction starts in time order and the shared units (TMU, VPM, DMA,
        semaphores, mutex, caches) see requests in time order.  The pick reads the runnable
        QPUs' keys (clock * 16 + number) from a ring kept in ascending order: the first is the
        QPU to run, the second gives the next QPU's clock.  As only the QPU that ran changes
        its key (wake() makes the loop sort them all again), the ring needs one insertion per
        pick, from the back, where 12 QPUs in step put the key at once.
        """
        version = stamp   # a closure variable: part of numba's cache key (see module docstring)
        if len(version) == 0:
            return RUN_STOP
        # constant rows: the small immediates (B input) and an all-lanes write mask
        for k in range(64):
            fill_row(V, D64, V_SMALL + k, SMALL_BITS[k] & 0xFFFFFFFF, True)
        for lane in range(LANES):
            D[R_ONES, lane] = 1
        for cc in range(NUM_CTX):
            S[I_NEXT + cc] = -1          # next rows are learnt again (code pages may have been added)
        cpi = cycles(tp[T_CPI])
        checks = S[I_P + P_NO_HAZARD_CHECKS] == 0
        threads2 = S[I_P + P_THREADS] == 2
        tracing = S[X_G + XG_TRACE] != 0     # set by Python between loop calls
        steps = 0
        max_steps = S[I_P + P_MAX_STEPS]
        max_cycles = S[I_P + P_MAX_CYCLES]
        S[I_GS + G_RESCHED] = 1          # (re)build the scheduling keys from the QPU states
        rh = 0                           # the runnable QPUs' keys, ascending: S[I_RING + (rh + k) & 15],
        rn = 0                           # k < rn (keys are distinct: the QPU number is in them)
        q = -1
        while True:
            # --- pick the runnable QPU with the smallest (clock, number) and the next smallest
            # clock, from the keys clock * 16 + QPU (KEY_NONE when not runnable), kept in order
            if S[I_GS + G_RESCHED] != 0:
                # every key may have changed (job start, a QPU woken): sort them again
                S[I_GS + G_RESCHED] = 0
                rh = 0
                rn = 0
                for qq in range(NUM_QPUS):
                    sched_key(qq, S)
                    k = S[I_SCHED + qq]
                    if k != KEY_NONE:
                        t = rn
                        while t > 0 and S[I_RING + t - 1] > k:
                            S[I_RING + t] = S[I_RING + t - 1]
                            t -= 1
                        S[I_RING + t] = k
                        rn += 1
            elif q >= 0:
                # only the QPU that just ran (the first key) has a new key: the others change only
                # in wake(), which sets G_RESCHED.  Its new key is at least the next one, and
                # usually the largest (it went on until its clock passed the next QPU's): insert
                # it from the back
                rh = (rh + 1) & 15
                rn -= 1
                k = S[I_SCHED + q]
                if k != KEY_NONE:
                    t = rn
                    while t > 0 and S[I_RING + ((rh + t - 1) & 15)] > k:
                        S[I_RING + ((rh + t) & 15)] = S[I_RING + ((rh + t - 1) & 15)]
                        t -= 1
                    S[I_RING + ((rh + t) & 15)] = k
                    rn += 1
            m1 = S[I_RING + rh] if rn > 0 else KEY_NONE
            m2 = S[I_RING + ((rh + 1) & 15)] if rn > 1 else KEY_NONE
            if m1 == KEY_NONE:
                blocked = 0
                for qq in range(NUM_QPUS):
                    if S[I_QS + qq * NQS + Q_STATUS] == QS_BLOCKED:
                        blocked += 1
                return RUN_DEADLOCK if blocked > 0 else RUN_DONE
            q = m1 & 15                  # (masks tell LLVM indices are >= 0: no wraparound fix-ups)
            second = m2 >> 4             # the next QPU's clock: run while ours is not past it
            qb = I_QS + q * NQS
            acc = V_ACC + 6 * q          # row of r0
            rfb = V_RF + q * 64          # row of regfile location 0
            out_a = V_OUT + 2 * q        # the ALUs' result rows
            out_m = out_a + 1
            last_a = V_LAST + 2 * q      # last values read through file A / B
            last_b = last_a + 1
            while True:
                c = 2 * q + (S[qb + Q_CUR] & 1)
                nxt = S[I_NEXT + c]      # code row of the thread's next instruction, when known
                cb = I_CS + c * NCS
                now = S[qb + Q_CLOCK]
                if now > second:
                    break                # the next QPU is due first (same cycle: this one goes on)
                pc = S[cb + C_PC]
                icount = S[cb + C_ICOUNT] + 1
                S[I_CUR + CU_Q] = q
                S[I_CUR + CU_C] = c
                S[I_CUR + CU_PC] = pc
                S[I_CUR + CU_NOW] = now
                S[I_CUR + CU_ICOUNT] = icount
                S[I_CUR + CU_XSTALL] = 0
                # --- fetch (units.mem_offset: the locked-memory check).  A known next row
                # (nxt >= 0) passed the same check already: it is the row after the previous
                # instruction's in the same locked, decoded page, or a branch target that
                # code_row() checked like mem_offset does (page states do not change in the loop).
                if nxt >= 0:
                    i = nxt
                else:
                    S[I_CUR + CU_IDX] = -1       # no row yet, for findings of the fetch
                    off = mem_offset(pc, 8, S, ps)
                    if (pc & 7) != 0 or off < 0:
                        steps += 1
                        fetch_failed(q, c, pc, off, S)
                        sched_key(q, S)
                        if S[I_GS + G_STOP] != 0:
                            return RUN_STOP
                        break
                    base = page_map[off >> 12]
                    if base < 0:
                        S[I_GS + G_NEED_PAGE] = off >> 12
                        return RUN_NEED_CODE
                    i = (base + ((off & 4095) >> 3)) & ROW_MASK
                S[I_CUR + CU_IDX] = i
                flags = code[i, K_FLAGS]
                kind = code[i, K_KIND]
                reserved = code[i, K_RESERVED]
                steps += 1
                if (flags & F_BLOCKS) != 0 and reserved == 0 and blocks_now(i, q, kind, S, code):
                    sched_key(q, S)
                    break
                # the instruction cache (units.code_fetch: a miss stalls this instruction); after
                # the blocking check so that a waiting instruction is fetched once.  code_fetch's
                # own shortcut (not tracing, the QPU's last line still cached: a hit) is here, so
                # that the common case makes no call
                line1 = ((pc & BUS_PHYS_MASK) >> LINE_SHIFT) + 1
                ql = X_QL + 2 * q
                if not tracing and S[ql] == line1 and S[S[ql + 1] + E_TAG] == line1:
                    S[X_CNT + XC_IC_HIT] += 1
                else:
                    code_fetch(pc, S)

                S[cb + C_ICOUNT] = icount
                S[qb + Q_INSTR] += 1
                code[i, K_EXEC] += 1
                due = S[cb + C_SFU_DUE]
                if due >= 0 and icount >= due:
                    # the SFU result of instruction N-3 lands in r4 (guide p.23)
                    copy_row(V, D64, acc + 4, V_SFU + c)
                    S[cb + C_SFU_DUE] = -1
                # the next instruction of this thread: a due branch's target, else the next word
                branch_due = S[cb + C_BR0_DUE] == icount
                if branch_due:
                    nidx = code_row(S[cb + C_BR0_TGT], page_map, S, ps)
                elif ((i + 1) & 511) != 0:
                    nidx = i + 1         # rows of one 4 KiB page are consecutive
                else:
                    nidx = -1
                tx = 16 if (threads2 and (c & 1) == 1) else 0   # thread 2's regfile view (guide p.20)
                sig = code[i, K_SIG]

                if reserved != 0:
                    emit(S, R_RESERVED, reserved, 0, 0)
                elif kind == KIND_ALU:
                    if checks and code[i, K_TEIO] != 0 and (S[cb + C_END_DUE] >= icount or sig == SIG_THREND):
                        emit(S, R_THREAD_END_IO, 0, 0, 0)
                    # ---- register reads (raddr_a, raddr_b) and their side effects
                    ra = code[i, K_RA_CODE]
                    rb = code[i, K_RB_CODE]
                    muxuse = code[i, K_MUXUSE]
                    prev_wrote = checks and S[cb + C_PW_AT] == icount - 1
                    row_a = R_VA
                    if ra == RC_REG:
                        row_a = rfb + ((code[i, K_RA_ARG] ^ tx) & 63)
                        if prev_wrote and (S[cb + C_PW0] == row_a or S[cb + C_PW1] == row_a):
                            read_regfile(row_a, R_VA, V, D, S)   # no forwarding: old lanes, reported
                            row_a = R_VA
                        keep_last(V64, D64, row_a, last_a)
                    elif ra == RC_UNIF:
                        v = read_uniform(cb, icount, S, ps, mem)
                        fill_row(V, D64, R_VA, v if v >= 0 else 0, v >= 0)
                        keep_last_value(V, D64, v if v >= 0 else 0, v >= 0, last_a)
                    elif ra != RC_NOP or (muxuse & 64) != 0:
                        # other I/O; a nop read has no side effect and is skipped when unused
                        read_port(0, ra, code[i, K_RA_ARG], R_VA, V, D, S, tp, mem, ps, code)
                    row_b = R_VB
                    if rb == RC_NOP and (muxuse & 128) == 0:
                        pass
                    elif code[i, K_SMALL] != 0:
                        # a small immediate is read like a regfile-B value (guide p.19; addendum
                        # on ra39/rb39): a constant row
                        row_b = V_SMALL + (code[i, K_RB_ARG] & 63)
                        keep_last(V64, D64, row_b, last_b)
                    elif rb == RC_REG:
                        row_b = rfb + ((code[i, K_RB_ARG] ^ tx) & 63)
                        if prev_wrote and (S[cb + C_PW0] == row_b or S[cb + C_PW1] == row_b):
                            read_regfile(row_b, R_VB, V, D, S)
                            row_b = R_VB
                        keep_last(V64, D64, row_b, last_b)
                    elif rb == ra and (ra == RC_UNIF or ra == RC_VPM or ra == RC_VARY):
                        # One FIFO read through both files in one instruction: read once, both ports
                        # see the same value (the references say nothing; docs/emulator.md).
                        row_b = R_VA
                        keep_last(V64, D64, R_VA, last_b)
                    elif rb == RC_UNIF:
                        v = read_uniform(cb, icount, S, ps, mem)
                        fill_row(V, D64, R_VB, v if v >= 0 else 0, v >= 0)
                        keep_last_value(V, D64, v if v >= 0 else 0, v >= 0, last_b)
                    else:
                        read_port(1, rb, code[i, K_RB_ARG], R_VB, V, D, S, tp, mem, ps, code)
                    # ---- unpack (regfile A with pm = 0, r4 with pm = 1) into scratch rows
                    pm = code[i, K_PM]
                    unpack = code[i, K_UNPACK]
                    if (muxuse & 64) != 0 and pm == 0 and unpack != 0:
                        unpack_a(unpack, V[row_a], code[i, K_UNPACK_FLOAT], V[R_VAU])
                        full_defs(D, R_VAU, row_a, code[i, K_A_NEED])
                        row_a = R_VAU
                    row_r4 = acc + 4
                    if (muxuse & 16) != 0:
                        if checks and S[cb + C_SFU_DUE] > icount:
                            emit(S, R_R4_READ_SFU, S[cb + C_SFU_DUE] - icount, 0, 0)
                        if pm == 1 and unpack != 0:
                            unpack_r4(unpack, V[row_r4], V[R_R4U])
                            full_defs(D, R_R4U, row_r4, code[i, K_R4_NEED])
                            row_r4 = R_R4U

                    # ---- the two ALU operations; definedness: 15 where both inputs are defined.
                    # A result goes to the ALU's row in V_OUT (its "last result") and is copied to
                    # the destination by the writes below, or, for a plain unconditional write
                    # nothing else in the instruction reads (F_ADD_DIRECT / F_MUL_DIRECT), is
                    # computed straight into the destination (old contents saved first when the
                    # next instruction reads it) and only its elements 12-15 kept in V_OUT.
                    op_add = code[i, K_OP_ADD]
                    op_mul = code[i, K_OP_MUL]
                    # an add-ALU nop writes nothing, whatever its destination and condition: the
                    # addendum's "previous result" write is documented for the mul ALU only, and
                    # programs that ran on Pis rely on it (py-videocore's nop() is "nop r0" with
                    # condition always; its SGEMM counts down in r0 across one)
                    cond_add = code[i, K_COND_ADD] if op_add != 0 else 0
                    cond_mul = code[i, K_COND_MUL]
                    sf = code[i, K_SF]
                    rot = code[i, K_ROT]
                    a_add = operand_row(code[i, K_ADD_A], acc, row_a, row_b, row_r4)
                    b_add = operand_row(code[i, K_ADD_B], acc, row_a, row_b, row_r4)
                    res_a = out_a
                    done_add = False
                    if op_add != 0:
                        if sf == 0 and cond_add == 1 and (flags & F_ADD_DIRECT) != 0:
                            res_a = plain_dest(False, i, nidx, rfb, acc, tx, checks, code, V, D, S)
                            done_add = True
                        if op_add == ADD_OR and a_add == b_add:
                            copy_row(V, D64, res_a, a_add)        # mov: or x, x
                            D64[R_CA, 0] = 0
                            D64[R_CA, 1] = 0
                        elif sf == 0 and op_add == ADD_FADD and FAST_FLOAT:
                            fadd_row(V, a_add, b_add, res_a, R_TMP)
                        elif sf != 0 or not add_rows(op_add, V, a_add, b_add, res_a, R_TMP):
                            add_alu(op_add, V[a_add], V[b_add], V[res_a], D[R_CA])   # with the carry
                        D64[res_a, 0] = full15(D64[a_add, 0] & D64[b_add, 0])
                        D64[res_a, 1] = full15(D64[a_add, 1] & D64[b_add, 1])
                        if done_add:
                            keep_result(V, D64, res_a, out_a)
                    xa = code[i, K_MUL_A]
                    xb = code[i, K_MUL_B]
                    a_mul = operand_row(xa, acc, row_a, row_b, row_r4)
                    b_mul = operand_row(xb, acc, row_a, row_b, row_r4)
                    res_m = out_m
                    done_mul = False
                    if op_mul != 0:
                        if sf == 0 and cond_mul == 1 and rot < 0 and (flags & F_MUL_DIRECT) != 0:
                            res_m = plain_dest(True, i, nidx, rfb, acc, tx, checks, code, V, D, S)
                            done_mul = True
                        if op_mul == MUL_V8MIN and a_mul == b_mul:
                            copy_row(V, D64, res_m, a_mul)        # mov: v8min x, x
                            D64[R_CM, 0] = 0
                            D64[R_CM, 1] = 0
                        elif sf == 0 and op_mul == MUL_FMUL and FAST_FLOAT:
                            fmul_row(V, a_mul, b_mul, res_m)
                        elif sf != 0 or not mul_rows(op_mul, V, a_mul, b_mul, res_m):
                            mul_alu(op_mul, V[a_mul], V[b_mul], V[res_m], D[R_CM])
                        D64[res_m, 0] = full15(D64[a_mul, 0] & D64[b_mul, 0])
                        D64[res_m, 1] = full15(D64[a_mul, 1] & D64[b_mul, 1])
                        if done_mul:
                            keep_result(V, D64, res_m, out_m)
                    else:
                        res_m = R_NOPM
                        if cond_mul != 0 or (sf != 0 and op_add == 0):
                            for lane in range(LANES):
                                V[R_NOPM, lane] = V[out_m, 12 + (lane & 3)]
                                D[R_NOPM, lane] = D[out_m, 12 + (lane & 3)]
                                D[R_CM, lane] = 0

                    # ---- lane masks of the write conditions, where something needs them
                    plain_add = cond_add == 1 and (flags & F_WADD_FAST) != 0
                    plain_mul = cond_mul == 1 and (flags & F_WMUL_FAST) != 0
                    if (cond_add != 0 and not plain_add) or sf != 0:
                        cond_mask(cond_add, q, D, R_MA, R_MKA)
                    if (cond_mul != 0 and not plain_mul) or sf != 0 or rot >= 0:
                        cond_mask(cond_mul, q, D, R_MM, R_MKM)
                    if rot >= 0:
                        rotate_mul(i, res_m, xa, xb, icount, q, c, V, D, S, code)

                    # ---- writes: the add ALU's first, then the mul ALU's
                    if done_add:
                        pass
                    elif plain_add:
                        copy_row(V, D64, plain_dest(False, i, nidx, rfb, acc, tx, checks, code, V, D, S), res_a)
                    elif cond_add != 0:
                        write_result(False, code[i, K_WADD_CODE], code[i, K_WADD_ARG], res_a, R_MA, R_MKA, i,
                                     a_add, b_add, op_add, V, D, S, tp, mem, ps, code)
                    if done_mul:
                        pass
                    elif plain_mul:
                        copy_row(V, D64, plain_dest(True, i, nidx, rfb, acc, tx, checks, code, V, D, S), res_m)
                    elif cond_mul != 0:
                        write_result(True, code[i, K_WMUL_CODE], code[i, K_WMUL_ARG], res_m, R_MM, R_MKM, i,
                                     a_mul, b_mul, -1, V, D, S, tp, mem, ps, code)
                    if sf != 0:
                        # flags come from the add ALU unless it executes a nop (addendum: .never
                        # does not change that), then from the mul ALU
                        if op_add != 0:
                            set_flags_from(q, res_a, R_CA, R_MA, R_MKA, V, D)
                        else:
                            set_flags_from(q, res_m, R_CM, R_MM, R_MKM, V, D)
                    if sig != SIG_NONE and sig != SIG_SMALL:
                        exec_signal(sig, icount, q, c, V, D, S, code)
                elif kind == KIND_BRANCH:
                    exec_branch(i, code, V, D, S, tp, mem, ps)
                else:
                    if checks and code[i, K_TEIO] != 0 and S[cb + C_END_DUE] >= icount:
                        emit(S, R_THREAD_END_IO, 0, 0, 0)
                    exec_ldi(i, code, V, D, S, tp, mem, ps)

                # ---- PC (branches take effect after their 3 delay slots, guide p.34), time
                if branch_due:
                    S[cb + C_PC] = S[cb + C_BR0_TGT]
                    S[cb + C_BR0_DUE] = S[cb + C_BR1_DUE]
                    S[cb + C_BR0_TGT] = S[cb + C_BR1_TGT]
                    S[cb + C_BR1_DUE] = -1
                else:
                    S[cb + C_PC] = (pc + 8) & 0xFFFFFFFF
                S[qb + Q_CLOCK] = S[I_CUR + CU_NOW] + cpi
                if S[I_CUR + CU_XSTALL] != 0:
                    code[i, K_STALL] += S[I_CUR + CU_XSTALL]   # fetch / VPM-port stalls (units.stall_fetch)
                S[I_NEXT + c] = nidx
                if S[cb + C_END_DUE] == icount:
                    finish_thread(q, c, S, D)
                elif S[cb + C_TSW_DUE] == icount:
                    switch_thread(q, c, S, D, tp, code)

                sched_key(q, S)
                if S[I_GS + G_STOP] != 0:
                    return RUN_STOP
                if S[I_GS + G_NEV] >= MAX_EVENTS - 48:
                    return RUN_EVENTS_FULL
                clock = S[qb + Q_CLOCK]
                if clock > max_cycles:
                    return RUN_TIMEOUT
                if steps >= max_steps:
                    return RUN_STEP_LIMIT
                # (clock > second: the check at the top of this loop, made here while the clock
                # is at hand; with 12 QPUs in step it ends nearly every instruction's run)
                if clock > second or S[qb + Q_STATUS] != QS_RUN or S[I_GS + G_RESCHED] != 0:
                    break
    return njit(run_loop_compiled, cache=True)


SOURCE_STAMP = _source_stamp()
_run_loop = _make_run_loop(SOURCE_STAMP)


def run_loop(code, page_map, V, D, S, tp, mem, ps):
    """Run the loop over the job's state arrays (layout.py); returns a RUN_* code."""
    return _run_loop(code, page_map, V, D, S, tp, mem, ps, V.view(np.uint64), D.view(np.uint64))
