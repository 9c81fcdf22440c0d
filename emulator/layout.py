"""Layout of the emulator's state arrays: column numbers, codes and sizes.

The compiled hot loop (core.py, units.py) keeps all machine state in a few
numpy arrays so that numba can compile it and the plain-Python fallback can run
it unchanged.  This module names the columns of those arrays and the small
integer codes the pre-decoder (predecode.py) writes for the loop.  It holds no
ISA facts: the pre-decoder derives every code from the tables in ``qpu.isa``.

Numba bakes module-level integers into the compiled code as constants; core.py
includes a hash of this file in its compilation cache key (see core.py), so an
edit here recompiles the loop instead of reusing stale machine code.
"""

from __future__ import annotations

NUM_QPUS = 12            # 3 slices of 4 QPUs (guide p.13, "Quad Processor" overview)
QPUS_PER_SLICE = 4
THREADS_PER_QPU_MAX = 2
NUM_CTX = NUM_QPUS * THREADS_PER_QPU_MAX   # context c = 2 * qpu + thread
LANES = 16

# VPM rows held by the emulator.  The QPU window is 64 rows (guide p.53); VDW/VCD addresses
# carry a 7-bit Y (Tables 34 and 36), so 128 rows are addressable by DMA.
VPM_ROWS = 128
VPM_WORDS = VPM_ROWS * 16

TMU_SLOTS = 16           # ring size per QPU and TMU (the hardware FIFO holds 8; room for lenient overflow)

# ---------------------------------------------------------------------------------------------
# Pre-decoded instruction columns (int64 array code[n, NCOL])
# ---------------------------------------------------------------------------------------------
# The columns every ALU instruction reads come first: they share the row's first cache lines.
(K_FLAGS, K_KIND, K_RESERVED, K_SIG, K_TEIO, K_RA_CODE, K_RA_ARG, K_RB_CODE, K_RB_ARG, K_MUXUSE,
 K_SMALL, K_PM, K_UNPACK, K_OP_ADD, K_OP_MUL, K_ADD_A, K_ADD_B, K_MUL_A, K_MUL_B,
 K_COND_ADD, K_COND_MUL, K_SF, K_ROT, K_WADD_CODE, K_WADD_ARG, K_WMUL_CODE, K_WMUL_ARG,
 K_WS, K_PACK, K_IMM,
 K_UNPACK_FLOAT, K_A_NEED, K_R4_NEED, K_PACK_A_BYTES, K_PACK_M_BYTES,
 K_ADD_FLOAT_OUT, K_MUL_FLOAT_OUT,
 K_LDI_MODE, K_SEM_ID, K_SEM_ACQ,
 K_BR_FLAG, K_BR_ALL, K_BR_SET, K_BR_REL, K_BR_REG, K_BR_RADDR, K_BR_SF,
 NCOL) = range(48)

# K_FLAGS bits, decided once per instruction by the pre-decoder so the loop tests one word
F_BLOCKS = 2       # may have to wait before it executes (semaphore, mutex read)
F_WADD_FAST = 4    # add ALU writes a register or accumulator with no pack (plain copy when .always)
F_WMUL_FAST = 8    # the same for the mul ALU
F_ADD_DIRECT = 16  # plain add write whose register the mul ALU does not read: computed in place
F_MUL_DIRECT = 32  # plain mul write to another register than the add ALU's: computed in place

# instruction kinds
KIND_ALU = 0
KIND_LDI = 1
KIND_SEM = 2
KIND_BRANCH = 3

# reserved-encoding reasons (K_RESERVED); names in predecode.RESERVED_REASONS
RES_NONE = 0
RES_ADD_OP = 1
RES_MUL_OP = 2
RES_MUL_PACK = 3
RES_BRANCH_COND = 4
RES_LDI_MODE = 5
RES_WRITE_ADDR = 6

# read codes (K_RA_CODE / K_RB_CODE)
RC_NONE = 0        # small immediate in raddr_b
RC_REG = 1         # arg: physical index 0..31 file A, 32..63 file B
RC_UNIF = 2
RC_VARY = 3        # unsupported (fragment shaders)
RC_ELEM = 4
RC_QPUNUM = 5
RC_NOP = 6         # address 39: the last values read through this file (addendum)
RC_VPM = 7
RC_VR_BUSY = 8
RC_VW_BUSY = 9
RC_VR_WAIT = 10
RC_VW_WAIT = 11
RC_MUTEX = 12
RC_FRAG = 13       # unsupported (pixel coordinates, multisample flags)
RC_UNMAPPED = 14   # unmapped I/O read: element number (file A) / QPU number (file B), guide p.24

# write codes (K_WADD_CODE / K_WMUL_CODE), after the write swap is applied
WC_NONE = 0
WC_REG = 1         # arg: physical index 0..63
WC_ACC = 2         # arg: accumulator 0..3
WC_R5QUAD = 3
WC_R5REP = 4
WC_UNIF_ADDR = 5
WC_NOSWAP = 6
WC_HOSTINT = 7
WC_VPM = 8
WC_VR_SETUP = 9
WC_VW_SETUP = 10
WC_VR_ADDR = 11
WC_VW_ADDR = 12
WC_MUTEX = 13
WC_SFU = 14        # arg: write address (alu.sfu uses its low two bits)
WC_TMU_S = 15      # arg: TMU 0/1 as addressed (before the QPU 2/3 swap)
WC_TMU_OTHER = 16  # t, r, b: texture lookups (unsupported)
WC_TLB = 17        # unsupported
WC_FRAG = 18       # unsupported
WC_RESERVED = 19

# ---------------------------------------------------------------------------------------------
# Per-QPU scalars (int64 qs[NUM_QPUS, NQS])
# ---------------------------------------------------------------------------------------------
(Q_CLOCK, Q_STATUS, Q_CUR, Q_WAIT_KIND, Q_WAIT_ARG, Q_WAIT_SINCE, Q_WAIT_IDX, Q_INSTR, Q_NOSWAP,
 Q_TMU_HEAD0, Q_TMU_COUNT0, Q_TMU_HEAD1, Q_TMU_COUNT1,
 Q_VR_LEFT, Q_VR_ADDR, Q_VR_STRIDE, Q_VR_HORIZ, Q_VR_LANED, Q_VR_SIZE, Q_VR_READY,
 Q_VRQ_LEFT, Q_VRQ_ADDR, Q_VRQ_STRIDE, Q_VRQ_HORIZ, Q_VRQ_LANED, Q_VRQ_SIZE, Q_VRQ_READY,
 Q_VW_VALID, Q_VW_ADDR, Q_VW_STRIDE, Q_VW_HORIZ, Q_VW_LANED, Q_VW_SIZE,
 Q_VDR_SETUP, Q_VDR_MPITCHB, Q_VDW_SETUP, Q_VDW_STRIDE,
 Q_LD_END, Q_LD_WAITED, Q_ST_END, Q_ST_WAITED,
 Q_LAST_IDX, NQS) = range(43)

QS_IDLE = 0      # no program started on this QPU
QS_RUN = 1
QS_BLOCKED = 2   # waiting for a semaphore or the mutex
QS_DONE = 3

W_NONE = 0
W_SEM_ACQ = 1    # arg: semaphore number
W_SEM_REL = 2
W_MUTEX = 3      # arg: owner QPU

# ---------------------------------------------------------------------------------------------
# Per-context (thread) scalars (int64 cs[NUM_CTX, NCS])
# ---------------------------------------------------------------------------------------------
(C_STATE, C_PC, C_UNIF, C_ICOUNT, C_BR0_DUE, C_BR0_TGT, C_BR1_DUE, C_BR1_TGT, C_END_DUE, C_TSW_DUE,
 C_UNIF_WRITE, C_SFU_DUE, C_PW_AT, C_PW0, C_PW1, C_PACC_AT, C_PACC, C_PROG, C_START, C_END,
 C_TMU_OUT0, C_TMU_OUT1, C_BR_AT, NCS) = range(24)

CS_NONE = 0
CS_ACTIVE = 1
CS_SUSPENDED = 2
CS_DONE = 3

# ---------------------------------------------------------------------------------------------
# Globals (int64 gs[NGS])
# ---------------------------------------------------------------------------------------------
G_SEM = 0                    # 16 semaphore counters: G_SEM .. G_SEM + 15
G_MUTEX = 16                 # owner QPU or -1
G_VDR_FREE = 17              # cycle when the shared VCD (DMA load) engine is free
G_VDW_FREE = 18              # same for the VDW (DMA store) engine
G_TMU_FREE = 19              # 6 entries: slice * 2 + physical TMU
G_HOSTINT = 25
G_NEV = 26                   # events recorded
G_NEED_PAGE = 27             # physical page the loop needs pre-decoded
G_RESCHED = 28               # a QPU was woken: re-pick the next QPU
G_STEPS = 29
G_STOP = 30                  # a strict-mode error was recorded: the step returns RUN_STOP
NGS = 32

# ---------------------------------------------------------------------------------------------
# Parameters (int64 p[NPS]) and timing (float64 tp[len(TIMING_FIELDS)])
# ---------------------------------------------------------------------------------------------
(P_PHYS_BASE, P_MEM_SIZE, P_STRICT, P_THREADS, P_MAX_CYCLES, P_MAX_STEPS, P_VPM_ROWS, P_OR_OP,
 P_NO_HAZARD_CHECKS, NPS) = range(10)
# P_NO_HAZARD_CHECKS: 1 turns off the instruction-sequence checks (read-after-write, r4 after
# SFU, rotations, uniform after unif_addr, thread-end I/O); 0, the default, keeps them.

# Order of the timing parameters handed to the loop (names of TimingParameters fields).
TIMING_FIELDS = (
    "cycles_per_instruction", "tmu_latency", "tmu_issue_cycles", "vpm_read_latency",
    "vdr_setup_cycles", "vdr_bytes_per_cycle", "vdw_setup_cycles", "vdw_bytes_per_cycle",
    "vpm_bytes_per_cycle", "semaphore_cycles", "mutex_cycles", "thread_switch_cycles",
)
(T_CPI, T_TMU_LAT, T_TMU_ISSUE, T_VPM_RD_LAT, T_VDR_SETUP, T_VDR_BPC, T_VDW_SETUP, T_VDW_BPC,
 T_VPM_BPC, T_SEM, T_MUTEX, T_TSW) = range(len(TIMING_FIELDS))

# ---------------------------------------------------------------------------------------------
# Setup-word field table (int64 sf[NSF, 3] = lo, mask, zero_means), filled from qpu.isa.vpm
# ---------------------------------------------------------------------------------------------
SETUP_FIELDS = (
    ("vpm_write", "stride"), ("vpm_write", "horiz"), ("vpm_write", "laned"), ("vpm_write", "size"),
    ("vpm_write", "addr"),
    ("vpm_read", "num"), ("vpm_read", "stride"), ("vpm_read", "horiz"), ("vpm_read", "laned"),
    ("vpm_read", "size"), ("vpm_read", "addr"),
    ("vdw_basic", "units"), ("vdw_basic", "depth"), ("vdw_basic", "horiz"), ("vdw_basic", "vpmbase"),
    ("vdw_basic", "modew"),
    ("vdw_stride", "blockmode"), ("vdw_stride", "stride"),
    ("vdr_basic", "modew"), ("vdr_basic", "mpitch"), ("vdr_basic", "rowlen"), ("vdr_basic", "nrows"),
    ("vdr_basic", "vpitch"), ("vdr_basic", "vert"), ("vdr_basic", "addrxy"),
    ("vdr_stride", "mpitchb"),
)
(SF_VW_STRIDE, SF_VW_HORIZ, SF_VW_LANED, SF_VW_SIZE, SF_VW_ADDR,
 SF_VR_NUM, SF_VR_STRIDE, SF_VR_HORIZ, SF_VR_LANED, SF_VR_SIZE, SF_VR_ADDR,
 SF_VDW_UNITS, SF_VDW_DEPTH, SF_VDW_HORIZ, SF_VDW_VPMBASE, SF_VDW_MODEW,
 SF_VDWS_BLOCKMODE, SF_VDWS_STRIDE,
 SF_VDR_MODEW, SF_VDR_MPITCH, SF_VDR_ROWLEN, SF_VDR_NROWS, SF_VDR_VPITCH, SF_VDR_VERT, SF_VDR_ADDRXY,
 SF_VDRS_MPITCHB) = range(len(SETUP_FIELDS))

# Selector bits of the setup formats (int64 sid[NSID, 3] = hi, lo, value), from qpu.isa.vpm
SETUP_IDS = ("vpm_write", "vpm_read", "vdw_basic", "vdw_stride", "vdr_basic", "vdr_stride")
(SID_VPM_WRITE, SID_VPM_READ, SID_VDW_BASIC, SID_VDW_STRIDE, SID_VDR_BASIC, SID_VDR_STRIDE) = range(6)

# ---------------------------------------------------------------------------------------------
# Events (int64 ev[MAX_EVENTS, EV_W]) and the rules the loop reports (codes = index here)
# ---------------------------------------------------------------------------------------------
MAX_EVENTS = 256
(EV_RULE, EV_Q, EV_CTX, EV_PC, EV_IDX, EV_CLOCK, EV_D0, EV_D1, EV_D2, EV_W) = range(10)

CORE_RULES = (
    "regfile-read-after-write", "r4-read-after-sfu", "r4-write-after-sfu", "rotate-after-r5-write",
    "rotate-after-acc-write", "ldtmu-without-request", "tmu-fifo-overflow", "tmu-fifo-unreliable",
    "vpm-read-without-setup", "vpm-write-without-setup", "vpm-read-setup-queue", "vpm-reads-left",
    "dma-load-busy", "dma-store-busy", "vpm-used-before-dma-wait", "vpm-setup-reserved",
    "thread-end-io", "memory-out-of-bounds", "memory-misaligned", "undefined-value",
    "uniform-after-address-write", "host-int-zero", "reserved-encoding", "breakpoint", "unsupported",
    "branch-in-delay-slot",
)
(R_RAW, R_R4_READ_SFU, R_R4_WRITE_SFU, R_ROT_R5, R_ROT_ACC, R_LDTMU_NOREQ, R_TMU_OVERFLOW,
 R_TMU_UNRELIABLE, R_VPM_READ_NOSETUP, R_VPM_WRITE_NOSETUP, R_VPM_READ_QUEUE, R_VPM_READS_LEFT,
 R_DMA_LOAD_BUSY, R_DMA_STORE_BUSY, R_VPM_DMA_WAIT, R_VPM_SETUP_RESERVED,
 R_THREAD_END_IO, R_OOB, R_MISALIGNED, R_UNDEFINED,
 R_UNIF_AFTER_ADDR, R_HOSTINT_ZERO, R_RESERVED, R_BREAKPOINT, R_UNSUPPORTED,
 R_BRANCH_DELAY) = range(len(CORE_RULES))

# detail codes for undefined-value (EV_D0) and unsupported (EV_D0) events
UD_TMU_ADDRESS = 1
UD_DMA_ADDRESS = 2
UD_SETUP = 3
UD_UNIF_ADDR = 4
UD_BRANCH_COND = 5
UD_BRANCH_TARGET = 6
UD_VPM_STORE = 7
UD_NOSWAP = 8
UD_HOSTINT = 9

US_VARYING = 1
US_FRAGMENT_IO = 2
US_TEXTURE = 3
US_TLB = 4
US_SIGNAL = 5
US_DMA_WIDTH = 6

# ---------------------------------------------------------------------------------------------
# Stall causes (int64 stalls[NUM_QPUS, len(STALL_CAUSES)])
# ---------------------------------------------------------------------------------------------
STALL_CAUSES = ("tmu", "vpm_read", "dma_load_wait", "dma_store_wait", "dma_queue", "semaphore",
                "mutex", "thread_switch")
(S_TMU, S_VPM_READ, S_DMA_LOAD_WAIT, S_DMA_STORE_WAIT, S_DMA_QUEUE, S_SEMAPHORE, S_MUTEX,
 S_THREAD_SWITCH) = range(len(STALL_CAUSES))

# run() return codes
RUN_DONE = 0
RUN_STOP = 1          # a strict-mode error was recorded
RUN_NEED_CODE = 2     # gs[G_NEED_PAGE] must be pre-decoded
RUN_EVENTS_FULL = 3
RUN_STEP_LIMIT = 4
RUN_DEADLOCK = 5
RUN_TIMEOUT = 6

# per-step context (int64 cur[NCU]): who executes what, and the running time of the instruction
(CU_Q, CU_C, CU_PC, CU_IDX, CU_NOW, CU_ICOUNT, CU_START, CU_XSTALL, NCU) = range(9)

# scratch rows (uint32 scr[NSCR, 16] values, uint8 scrd[NSCR, 16] byte masks / flags)
(SC_VA, SC_VB, SC_R4U, SC_NOP_ADD, SC_NOP_MUL, SC_CARRY_ADD, SC_CARRY_MUL, SC_M_ADD, SC_MK_ADD,
 SC_M_MUL, SC_MK_MUL, SC_TMP, SC_TMP2, SC_VA_UNPACKED, SC_LINK, SC_ONES, NSCR) = range(17)
# SC_NOP_*: output of an ALU executing nop with a destination; SC_LINK: a branch's link value;
# SC_ONES: D row of 1s (the lane mask of an unconditional write)

# ---------------------------------------------------------------------------------------------
# The state arrays handed to the compiled loop.  Few arrays, because every call between
# compiled helpers passes each array as a struct of scalars (the cost dominated otherwise).
#
# V: uint32 [NV_ROWS, 16] 16-lane values; D: uint8 [ND_ROWS, 16] the matching definedness byte
# masks (row r of D describes row r of V) followed by uint8-only rows (flags ...);
# S: int64 [NI] all scalars, tables and event records, at the offsets below.
# ---------------------------------------------------------------------------------------------
V_RF = 0                                        # + q * 64 + r (r < 32: file A, else file B)
V_ACC = V_RF + NUM_QPUS * 64                    # + q * 6 + a (r0..r5)
V_TMU = V_ACC + NUM_QPUS * 6                    # + (q * 2 + unit) * TMU_SLOTS + slot
V_SFU = V_TMU + NUM_QPUS * 2 * TMU_SLOTS        # + c: SFU result waiting for r4
V_PW = V_SFU + NUM_CTX                          # + c * 2 + k: old contents of written registers
V_LAST = V_PW + NUM_CTX * 2                     # + q * 2 + file: last values read through A/B (lanes 0-3)
V_OUT = V_LAST + NUM_QPUS * 2                   # + q * 2 + (0 add, 1 mul): the ALUs' last results
V_SMALL = V_OUT + NUM_QPUS * 2                  # + code: small immediate ``code`` in every lane (constant)
V_SCR = V_SMALL + 64                            # + SC_*: scratch vectors
V_VPM = V_SCR + NSCR                            # + row: the VPM, 16 words per row
NV_ROWS = V_VPM + VPM_ROWS
# V_OUT rows hold each ALU's result until the ALU next computes one, which is what a nop ALU
# with a destination writes back (elements 12-15, addendum): no copy per instruction.
D_FLG = NV_ROWS                                 # + q * 3 + f (Z, N, C)
D_FLGD = D_FLG + NUM_QPUS * 3                   # + q: flags defined
D_PWM = D_FLGD + NUM_QPUS                       # + c * 2 + k: lanes written by the previous instruction
D_PAM = D_PWM + NUM_CTX * 2                     # + c * 6 + a: accumulator lanes written by it
ND_ROWS = D_PAM + NUM_CTX * 6

I_QS = 0                                        # + q * NQS + Q_*
I_CS = I_QS + NUM_QPUS * NQS                    # + c * NCS + C_*
I_GS = I_CS + NUM_CTX * NCS                     # + G_*
I_P = I_GS + NGS                                # + P_*
I_CUR = I_P + NPS                               # + CU_*
I_ISCR = I_CUR + NCU                            # 32 scratch ints (VPM word indices, shifts)
I_TMUT = I_ISCR + 32                            # + (q * 2 + unit) * TMU_SLOTS + slot: data ready cycle
I_VPMHZ = I_TMUT + NUM_QPUS * 2 * TMU_SLOTS     # + word * 2 + (0 load, 1 store): DMA busy until
I_SF = I_VPMHZ + VPM_WORDS * 2                  # + k * 3: setup field lo, mask, zero_means
I_SID = I_SF + len(SETUP_FIELDS) * 3            # + k * 3: setup selector hi, lo, value
I_RLEVEL = I_SID + len(SETUP_IDS) * 3           # + rule: 1 = error level
I_STALL = I_RLEVEL + len(CORE_RULES)            # + q * NCAUSES + cause
I_EV = I_STALL + NUM_QPUS * len(STALL_CAUSES)   # + n * EV_W + EV_*
I_SCHED = I_EV + MAX_EVENTS * EV_W              # + q: scheduling key (core.py), rebuilt on each loop entry
I_RING = I_SCHED + NUM_QPUS                     # + k: the runnable QPUs' keys in order, a ring of 16 (core.py)
I_NEXT = I_RING + 16                            # + c: code row of the context's next instruction or -1 (core.py)
NI = I_NEXT + NUM_CTX
NCAUSES = len(STALL_CAUSES)

# extra columns of the code array: per-instruction profile
K_EXEC = NCOL
K_STALL = NCOL + 1
NCODE = NCOL + 2
