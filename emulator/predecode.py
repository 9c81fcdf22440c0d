"""Pre-decode QPU machine words into the integer columns the compiled loop executes.

Every field is extracted with the layouts of ``qpu.isa.formats.FIELDS`` (no bit
position is written here), and every derived value comes from the ISA tables:
register map units (``qpu.isa.registers``), op arities and float-ness
(``qpu.isa.ops``), small immediates (``qpu.isa.small_imm``), pack/unpack byte
coverage (``qpu.isa.packing``), branch condition logic (``qpu.isa.signals``).
The column numbers and codes are in layout.py.

``predecode(words)`` is vectorised numpy over any number of words; any 64-bit
word decodes (reserved encodings get a non-zero ``K_RESERVED`` reason and are
reported only if executed).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from qpu.isa.formats import FIELD_BY_NAME, LOAD_IMM_MODES, SIG_BRANCH, SIG_LOAD_IMM, SIG_SMALL_IMM, Format, LoadImmMode
from qpu.isa.ops import ADD_OPS, MUL_OPS, RESERVED_ADD_CODES, RESERVED_MUL_CODES, Kind
from qpu.isa.packing import PACK_A_MODES, PACK_MUL_MODES, RESERVED_PACK_MUL_CODES, UNPACK_MODES, PackMode
from qpu.isa.registers import ACC_WRITE_ADDRS, NOP_ADDR, R5_WRITE_ADDR, REGISTERS, Space, Unit
from qpu.isa.signals import BRANCH_COND_LOGIC, RESERVED_BRANCH_CONDS, BranchCond, Mux, Signal
from qpu.isa.small_imm import SMALL_IMMS

from . import layout as L

RESERVED_REASONS = {
    L.RES_ADD_OP: "reserved add-ALU opcode",
    L.RES_MUL_OP: "reserved mul-ALU opcode",
    L.RES_MUL_PACK: "reserved mul-ALU pack mode (pm=1)",
    L.RES_BRANCH_COND: "reserved branch condition (12-14)",
    L.RES_LDI_MODE: "reserved load-immediate mode (2, 5, 6, 7)",
    L.RES_WRITE_ADDR: "write to an address the register map leaves empty",
}


# --------------------------------------------------------------------------------------------
# Register-map derived lookup tables (64 entries per space)
# --------------------------------------------------------------------------------------------

def _read_code(space: Space, addr: int) -> Tuple[int, int]:
    info = REGISTERS[space].get(addr)
    base = 0 if space is Space.READ_A else 32
    if info is None:
        return L.RC_UNMAPPED, 0
    unit = info.unit
    if unit is Unit.REGFILE:
        return L.RC_REG, base + addr
    if unit is Unit.UNIFORM:
        return L.RC_UNIF, 0
    if unit is Unit.VARYING:
        return L.RC_VARY, 0
    if unit is Unit.ID:
        return (L.RC_ELEM, 0) if info.dsl == "element_number" else (L.RC_QPUNUM, 0)
    if unit is Unit.NOP:
        return L.RC_NOP, 0
    if unit is Unit.VPM:
        return L.RC_VPM, 0
    if unit is Unit.DMA_LOAD:
        return (L.RC_VR_WAIT, 0) if info.dsl == "vpm_ld_wait" else (L.RC_VR_BUSY, 0)
    if unit is Unit.DMA_STORE:
        return (L.RC_VW_WAIT, 0) if info.dsl == "vpm_st_wait" else (L.RC_VW_BUSY, 0)
    if unit is Unit.MUTEX:
        return L.RC_MUTEX, 0
    if unit is Unit.FRAGMENT:
        return L.RC_FRAG, 0
    raise AssertionError(f"no read code for {info}")  # pragma: no cover - table consistency


def _write_code(space: Space, addr: int) -> Tuple[int, int]:
    info = REGISTERS[space].get(addr)
    base = 0 if space is Space.WRITE_A else 32
    if info is None:
        return L.WC_RESERVED, 0
    unit = info.unit
    if unit is Unit.REGFILE:
        return L.WC_REG, base + addr
    if unit is Unit.ACCUMULATOR:
        if addr == R5_WRITE_ADDR:
            return (L.WC_R5QUAD, 0) if space is Space.WRITE_A else (L.WC_R5REP, 0)
        return L.WC_ACC, ACC_WRITE_ADDRS[addr]
    if unit is Unit.NOP:
        return L.WC_NONE, 0
    if unit is Unit.UNIFORM:
        return L.WC_UNIF_ADDR, 0
    if unit is Unit.TMU_NOSWAP:
        return L.WC_NOSWAP, 0
    if unit is Unit.HOST_INT:
        return L.WC_HOSTINT, 0
    if unit is Unit.VPM:
        return L.WC_VPM, 0
    if unit is Unit.VPM_SETUP:
        return (L.WC_VR_SETUP, 0) if space is Space.WRITE_A else (L.WC_VW_SETUP, 0)
    if unit is Unit.DMA_LOAD:
        return L.WC_VR_ADDR, 0
    if unit is Unit.DMA_STORE:
        return L.WC_VW_ADDR, 0
    if unit is Unit.MUTEX:
        return L.WC_MUTEX, 0
    if unit is Unit.SFU:
        return L.WC_SFU, addr
    if unit in (Unit.TMU0, Unit.TMU1):
        tmu = 0 if unit is Unit.TMU0 else 1
        # the 's' register is the retiring one that starts a lookup (guide p.23 and p.41)
        return (L.WC_TMU_S, tmu) if info.dsl.endswith("_s") else (L.WC_TMU_OTHER, tmu)
    if unit is Unit.TLB:
        return L.WC_TLB, 0
    if unit is Unit.FRAGMENT:
        return L.WC_FRAG, 0
    raise AssertionError(f"no write code for {info}")  # pragma: no cover


def _table(fn, space: Space) -> Tuple[np.ndarray, np.ndarray]:
    codes = np.zeros(64, dtype=np.int64)
    args = np.zeros(64, dtype=np.int64)
    for addr in range(64):
        codes[addr], args[addr] = fn(space, addr)
    return codes, args


READ_A_CODE, READ_A_ARG = _table(_read_code, Space.READ_A)
READ_B_CODE, READ_B_ARG = _table(_read_code, Space.READ_B)
WRITE_A_CODE, WRITE_A_ARG = _table(_write_code, Space.WRITE_A)
WRITE_B_CODE, WRITE_B_ARG = _table(_write_code, Space.WRITE_B)

# Read codes that talk to a peripheral the last three instructions must not touch (guide p.37:
# "varyings read, uniforms read or any kind of VPM, VDR, or VDW read or write").
_TEIO_READS = (L.RC_UNIF, L.RC_VARY, L.RC_VPM, L.RC_VR_BUSY, L.RC_VW_BUSY, L.RC_VR_WAIT, L.RC_VW_WAIT)
_TEIO_WRITES = (L.WC_VPM, L.WC_VR_SETUP, L.WC_VW_SETUP, L.WC_VR_ADDR, L.WC_VW_ADDR, L.WC_UNIF_ADDR)


def _op_table(ops, attr) -> np.ndarray:
    out = np.zeros(32, dtype=np.int64)
    for code, info in ops.items():
        out[code] = attr(info)
    return out


ADD_ARITY = _op_table(ADD_OPS, lambda o: o.arity)
MUL_ARITY = _op_table(MUL_OPS, lambda o: o.arity)
ADD_FLOAT_IN = _op_table(ADD_OPS, lambda o: o.in_kind is Kind.FLOAT)
MUL_FLOAT_IN = _op_table(MUL_OPS, lambda o: o.in_kind is Kind.FLOAT)
ADD_FLOAT_OUT = _op_table(ADD_OPS, lambda o: o.out_kind is Kind.FLOAT)
MUL_FLOAT_OUT = _op_table(MUL_OPS, lambda o: o.out_kind is Kind.FLOAT)


def _pack_bytes(mode: PackMode) -> int:
    """Mask of the destination bytes a pack mode writes (the others keep their value)."""
    if 0 <= mode.byte_lane <= 3:
        return 1 << mode.byte_lane
    if mode.half in (0, 1):
        return 0x3 << (2 * mode.half)
    return 0xF


PACK_A_BYTES = np.full(16, 0xF, dtype=np.int64)
for _c, _m in PACK_A_MODES.items():
    PACK_A_BYTES[_c] = _pack_bytes(_m)
PACK_MUL_BYTES = np.full(16, 0xF, dtype=np.int64)
for _c, _m in PACK_MUL_MODES.items():
    PACK_MUL_BYTES[_c] = _pack_bytes(_m)
UNPACK_BYTES = np.full(8, 0xF, dtype=np.int64)
for _c, _u in UNPACK_MODES.items():
    UNPACK_BYTES[_c] = _u.bytes_read

SMALL_BITS = np.array([s.bits for s in SMALL_IMMS], dtype=np.int64)
SMALL_ROT = np.array([-1 if s.rotation is None else s.rotation for s in SMALL_IMMS], dtype=np.int64)

BR_FLAG = np.full(16, -1, dtype=np.int64)
BR_ALL = np.zeros(16, dtype=np.int64)
BR_SET = np.zeros(16, dtype=np.int64)
for _bc, (_flag, _all, _set) in BRANCH_COND_LOGIC.items():
    BR_FLAG[int(_bc)], BR_ALL[int(_bc)], BR_SET[int(_bc)] = _flag, int(_all), int(_set)
assert BR_FLAG[int(BranchCond.ALWAYS)] == -1

RESERVED_ADD = np.zeros(32, dtype=bool)
RESERVED_ADD[list(RESERVED_ADD_CODES)] = True
RESERVED_MUL = np.zeros(8, dtype=bool)
RESERVED_MUL[list(RESERVED_MUL_CODES)] = True
RESERVED_MULPACK = np.zeros(16, dtype=bool)
RESERVED_MULPACK[list(RESERVED_PACK_MUL_CODES)] = True
RESERVED_BR = np.zeros(16, dtype=bool)
RESERVED_BR[list(RESERVED_BRANCH_CONDS)] = True
LDI_OK = np.zeros(8, dtype=bool)
LDI_OK[list(LOAD_IMM_MODES)] = True


def _field(words: np.ndarray, fmt: Format, name: str) -> np.ndarray:
    f = FIELD_BY_NAME[fmt][name]
    return ((words >> np.uint64(f.lo)) & np.uint64(f.mask)).astype(np.int64)


def predecode(words: np.ndarray) -> np.ndarray:
    """Decode uint64 instruction words into an int64 array ``[len(words), layout.NCOL]``."""
    w = np.ascontiguousarray(words, dtype=np.uint64)
    n = len(w)
    k = np.zeros((n, L.NCOL), dtype=np.int64)
    A = Format.ALU
    sig = _field(w, A, "sig")
    mode = _field(w, A, "unpack")
    is_branch = sig == SIG_BRANCH
    is_li = sig == SIG_LOAD_IMM
    is_sem = is_li & (mode == int(LoadImmMode.SEMAPHORE))
    is_ldi = is_li & ~is_sem
    is_small = sig == SIG_SMALL_IMM
    is_alu = ~(is_branch | is_li)
    kind = np.where(is_branch, L.KIND_BRANCH, np.where(is_sem, L.KIND_SEM, np.where(is_ldi, L.KIND_LDI, L.KIND_ALU)))
    k[:, L.K_KIND] = kind
    k[:, L.K_SIG] = sig

    # Upper-half fields shared by ALU, load-immediate and semaphore words (Table 1).
    for col, name in ((L.K_COND_ADD, "cond_add"), (L.K_COND_MUL, "cond_mul"), (L.K_SF, "sf"), (L.K_WS, "ws"),
                      (L.K_PM, "pm"), (L.K_PACK, "pack"), (L.K_UNPACK, "unpack")):
        k[:, col] = _field(w, A, name)
    # Branch words: the sf position is raddr_a's bit 0 (addendum "implicit set flags"); no other
    # upper-half field exists there, and the branch writes its link unconditionally when taken.
    k[is_branch, L.K_COND_ADD] = 1
    k[is_branch, L.K_COND_MUL] = 1
    k[is_branch, L.K_PM] = 0
    k[is_branch, L.K_PACK] = 0
    k[is_branch, L.K_UNPACK] = 0
    k[is_li, L.K_UNPACK] = 0   # the mode field, not an unpack

    ws = k[:, L.K_WS]
    waddr_add = _field(w, A, "waddr_add")
    waddr_mul = _field(w, A, "waddr_mul")
    add_to_b = ws == 1
    k[:, L.K_WADD_CODE] = np.where(add_to_b, WRITE_B_CODE[waddr_add], WRITE_A_CODE[waddr_add])
    k[:, L.K_WADD_ARG] = np.where(add_to_b, WRITE_B_ARG[waddr_add], WRITE_A_ARG[waddr_add])
    k[:, L.K_WMUL_CODE] = np.where(add_to_b, WRITE_A_CODE[waddr_mul], WRITE_B_CODE[waddr_mul])
    k[:, L.K_WMUL_ARG] = np.where(add_to_b, WRITE_A_ARG[waddr_mul], WRITE_B_ARG[waddr_mul])

    # ALU lower half.
    op_add = np.where(is_alu, _field(w, A, "op_add"), 0)
    op_mul = np.where(is_alu, _field(w, A, "op_mul"), 0)
    k[:, L.K_OP_ADD] = op_add
    k[:, L.K_OP_MUL] = op_mul
    muxes = {}
    for col, name in ((L.K_ADD_A, "add_a"), (L.K_ADD_B, "add_b"), (L.K_MUL_A, "mul_a"), (L.K_MUL_B, "mul_b")):
        muxes[name] = np.where(is_alu, _field(w, A, name), 0)
        k[:, col] = muxes[name]
    add_ar = ADD_ARITY[op_add]
    mul_ar = MUL_ARITY[op_mul]
    one = np.int64(1)
    muxuse = np.zeros(n, dtype=np.int64)
    muxuse |= np.where(add_ar >= 1, one << muxes["add_a"], 0)
    muxuse |= np.where(add_ar >= 2, one << muxes["add_b"], 0)
    muxuse |= np.where(mul_ar >= 1, one << muxes["mul_a"], 0)
    muxuse |= np.where(mul_ar >= 2, one << muxes["mul_b"], 0)
    k[:, L.K_MUXUSE] = np.where(is_alu, muxuse, 0)

    raddr_a = _field(w, A, "raddr_a")
    raddr_b = _field(w, A, "raddr_b")   # the small-immediate code when sig = 13
    k[:, L.K_RA_CODE] = np.where(is_alu, READ_A_CODE[raddr_a], L.RC_NOP)
    k[:, L.K_RA_ARG] = np.where(is_alu, READ_A_ARG[raddr_a], 0)
    # a read of the nop address (39) is no read: it yields the previous values (addendum)
    k[:, L.K_RB_CODE] = np.where(is_alu & ~is_small, READ_B_CODE[raddr_b], np.where(is_small, L.RC_NONE, L.RC_NOP))
    # small immediates: the code, so the loop can use the constant row V_SMALL + code
    k[:, L.K_RB_ARG] = np.where(is_alu & ~is_small, READ_B_ARG[raddr_b], np.where(is_small, raddr_b, 0))
    k[:, L.K_SMALL] = is_small
    k[:, L.K_ROT] = np.where(is_small, SMALL_ROT[raddr_b], -1)
    imm = np.where(is_small, SMALL_BITS[raddr_b], 0)

    # Regfile-A unpack converts to float "if any ALU consuming data executes float instruction"
    # (Table 6, p.31): consumers are the ALUs whose used muxes select regfile A.
    a_mux = int(Mux.A)
    add_uses_a = ((add_ar >= 1) & (muxes["add_a"] == a_mux)) | ((add_ar >= 2) & (muxes["add_b"] == a_mux))
    mul_uses_a = ((mul_ar >= 1) & (muxes["mul_a"] == a_mux)) | ((mul_ar >= 2) & (muxes["mul_b"] == a_mux))
    k[:, L.K_UNPACK_FLOAT] = ((add_uses_a & (ADD_FLOAT_IN[op_add] == 1)) | (mul_uses_a & (MUL_FLOAT_IN[op_mul] == 1)))
    pm = k[:, L.K_PM]
    unpack = k[:, L.K_UNPACK]
    pack = k[:, L.K_PACK]
    k[:, L.K_A_NEED] = np.where(is_alu & (pm == 0), UNPACK_BYTES[unpack], 0xF)
    k[:, L.K_R4_NEED] = np.where(is_alu & (pm == 1), UNPACK_BYTES[unpack], 0xF)
    k[:, L.K_PACK_A_BYTES] = np.where(pm == 0, PACK_A_BYTES[pack], 0xF)
    k[:, L.K_PACK_M_BYTES] = np.where(pm == 1, PACK_MUL_BYTES[pack], 0xF)
    k[:, L.K_ADD_FLOAT_OUT] = np.where(is_alu, ADD_FLOAT_OUT[op_add], 0)
    k[:, L.K_MUL_FLOAT_OUT] = np.where(is_alu, MUL_FLOAT_OUT[op_mul], 0)

    # Load immediate / semaphore.
    li_imm = _field(w, Format.LOAD_IMM, "immediate")
    imm = np.where(is_li, li_imm, imm)
    k[:, L.K_LDI_MODE] = np.where(is_ldi, mode, 0)
    k[:, L.K_SEM_ID] = np.where(is_sem, _field(w, Format.SEMAPHORE, "semaphore"), 0)
    # "incremented if sa is 0 and decremented if sa is 1" (guide p.33): sa = 1 is an acquire
    k[:, L.K_SEM_ACQ] = np.where(is_sem, _field(w, Format.SEMAPHORE, "sa"), 0)

    # Branch.
    B = Format.BRANCH
    cond_br = _field(w, B, "cond_br")
    br_imm = _field(w, B, "immediate")
    imm = np.where(is_branch, br_imm, imm)
    k[:, L.K_IMM] = imm
    k[:, L.K_BR_FLAG] = np.where(is_branch, BR_FLAG[cond_br], -1)
    k[:, L.K_BR_ALL] = np.where(is_branch, BR_ALL[cond_br], 0)
    k[:, L.K_BR_SET] = np.where(is_branch, BR_SET[cond_br], 0)
    k[:, L.K_BR_REL] = np.where(is_branch, _field(w, B, "rel"), 0)
    k[:, L.K_BR_REG] = np.where(is_branch, _field(w, B, "reg"), 0)
    k[:, L.K_BR_RADDR] = np.where(is_branch, _field(w, B, "raddr_a"), 0)
    k[:, L.K_BR_SF] = np.where(is_branch, _field(w, A, "sf"), 0)
    k[is_branch, L.K_SF] = k[is_branch, L.K_BR_SF]

    # Peripheral accesses forbidden in the last three instructions.
    teio = np.isin(k[:, L.K_RA_CODE], _TEIO_READS) | np.isin(k[:, L.K_RB_CODE], _TEIO_READS)
    teio |= np.isin(k[:, L.K_WADD_CODE], _TEIO_WRITES) | np.isin(k[:, L.K_WMUL_CODE], _TEIO_WRITES)
    k[:, L.K_TEIO] = teio & ~is_branch

    # Reserved encodings (guide p.29-36), reported when executed.
    res = np.zeros(n, dtype=np.int64)
    res = np.where(is_alu & RESERVED_ADD[op_add], L.RES_ADD_OP, res)
    res = np.where(is_alu & (res == 0) & RESERVED_MUL[op_mul], L.RES_MUL_OP, res)
    res = np.where(~is_branch & (res == 0) & (pm == 1) & RESERVED_MULPACK[pack], L.RES_MUL_PACK, res)
    res = np.where(is_branch & RESERVED_BR[cond_br], L.RES_BRANCH_COND, res)
    res = np.where(is_ldi & ~LDI_OK[mode], L.RES_LDI_MODE, res)
    bad_write = (k[:, L.K_WADD_CODE] == L.WC_RESERVED) | (k[:, L.K_WMUL_CODE] == L.WC_RESERVED)
    res = np.where((res == 0) & bad_write, L.RES_WRITE_ADDR, res)
    k[:, L.K_RESERVED] = res
    k[:, L.K_FLAGS] = _flags(k, is_alu, is_sem)
    return k


def _flags(k: np.ndarray, is_alu: np.ndarray, is_sem: np.ndarray) -> np.ndarray:
    """The K_FLAGS word (layout.F_*) of each instruction."""
    ra, rb = k[:, L.K_RA_CODE], k[:, L.K_RB_CODE]
    wadd, wmul = k[:, L.K_WADD_CODE], k[:, L.K_WMUL_CODE]
    pm, pack = k[:, L.K_PM], k[:, L.K_PACK]
    blocks = is_sem | (is_alu & ((ra == L.RC_MUTEX) | (rb == L.RC_MUTEX)))
    # a plain register write: regfile-A pack (pm = 0) applies to physical regfile A only
    # (Table 7), mul colour pack (pm = 1) to any mul write (Table 9)
    a_pack = (pm == 0) & (pack != 0)
    add_fast = (wadd == L.WC_ACC) | ((wadd == L.WC_REG) & ~(a_pack & (k[:, L.K_WADD_ARG] < 32)))
    mul_fast = ((wmul == L.WC_ACC) | ((wmul == L.WC_REG) & ~(a_pack & (k[:, L.K_WMUL_ARG] < 32))))
    mul_fast &= ~((pm == 1) & (pack != 0))
    # The loop may compute an ALU's result straight into its destination when nothing reads the
    # old contents later in the instruction: the add ALU's register is not a mul operand (the
    # add result is written before the mul ALU computes), and the mul ALU's destination is
    # not the add ALU's (the add write must come first).
    warg_add = k[:, L.K_WADD_ARG]
    mul_ar = MUL_ARITY[k[:, L.K_OP_MUL]]
    conflict = np.zeros(len(k), dtype=bool)
    for nth, col in ((1, L.K_MUL_A), (2, L.K_MUL_B)):
        mux = k[:, col]
        used = mul_ar >= nth
        conflict |= used & (wadd == L.WC_ACC) & (mux == warg_add)
        conflict |= used & (wadd == L.WC_REG) & (mux == int(Mux.A)) & (ra == L.RC_REG) & (k[:, L.K_RA_ARG] == warg_add)
        conflict |= used & (wadd == L.WC_REG) & (mux == int(Mux.B)) & (rb == L.RC_REG) & (k[:, L.K_RB_ARG] == warg_add)
    same_dest = (wadd == wmul) & (warg_add == k[:, L.K_WMUL_ARG])
    f = np.where(blocks, L.F_BLOCKS, 0)
    f |= np.where(add_fast, L.F_WADD_FAST, 0) | np.where(mul_fast, L.F_WMUL_FAST, 0)
    f |= np.where(add_fast & ~conflict, L.F_ADD_DIRECT, 0) | np.where(mul_fast & ~same_dest, L.F_MUL_DIRECT, 0)
    return f.astype(np.int64)


def predecode_bytes(data: bytes) -> np.ndarray:
    """Pre-decode a byte string of whole little-endian 64-bit words."""
    if len(data) % 8:
        raise ValueError("code must be a whole number of 64-bit words")
    return predecode(np.frombuffer(data, dtype="<u8"))


# Consistency checks that tie the codes above to the tables (cheap, run at import).
assert READ_A_CODE[NOP_ADDR] == L.RC_NOP and READ_B_CODE[NOP_ADDR] == L.RC_NOP
assert WRITE_A_CODE[NOP_ADDR] == L.WC_NONE
assert int(Signal.LOAD_TMU1) == int(Signal.LOAD_TMU0) + 1


def describe_columns(row: np.ndarray) -> Dict[str, int]:
    """A readable dict of one pre-decoded row (debugging aid)."""
    names: List[str] = [n for n in dir(L) if n.startswith("K_") and n != "K_NCOL"]
    return {n: int(row[getattr(L, n)]) for n in sorted(names, key=lambda n: getattr(L, n))}
