"""Per-instruction facts for the checker, read straight from a word's fields: what it reads,
writes, signals and which units it touches."""


from __future__ import annotations

from typing import Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from ..isa.formats import LOAD_IMM_MODES, Format, LoadImmMode, decode_fields
from ..isa.ops import ADD_OPS, MUL_OPS, OpInfo
from ..isa.packing import PACK_MUL_MODES
from ..isa.registers import NOP_ADDR, R5_WRITE_ADDR, REGISTERS, RegInfo, Space, Unit
from ..isa.signals import RESERVED_BRANCH_CONDS, SIGNALS, Cond, Mux, Signal

# --------------------------------------------------------------------------------------------
# Per-instruction facts, straight from the word's fields
# --------------------------------------------------------------------------------------------

class _Write(NamedTuple):
    addr: int
    file: str            # "a" or "b": the register space written
    alu: str             # "add" or "mul" (the ALU output that carries the value)
    cond: Optional[int]  # write condition; None for a branch's link write (written if taken)
    info: RegInfo

    @property
    def name(self) -> str:
        return self.info.text

    @property
    def unit(self) -> Unit:
        return self.info.unit

    @property
    def physical(self) -> bool:
        return self.addr < 32


class _Read(NamedTuple):
    addr: int
    file: str
    info: Optional[RegInfo]  # None: an unmapped I/O read address

    @property
    def name(self) -> str:
        return self.info.text if self.info is not None else f"r{self.file}{self.addr}"

    @property
    def unit(self) -> Optional[Unit]:
        return self.info.unit if self.info is not None else None


# I/O units the last three instructions of a program must leave alone (guide p.37).
_THREAD_END_IO_UNITS = frozenset({Unit.UNIFORM, Unit.VARYING, Unit.VPM, Unit.VPM_SETUP,
                                  Unit.DMA_LOAD, Unit.DMA_STORE})
# "VPM registers" of guide Table 31 (p.57): data, setup, DMA address/busy/wait.
_VPM_UNITS = frozenset({Unit.VPM, Unit.VPM_SETUP, Unit.DMA_LOAD, Unit.DMA_STORE})
_TMU_UNITS = {Unit.TMU0: 0, Unit.TMU1: 1}
_TMU_S_ADDRS = {56: 0, 60: 1}   # tmu0_s, tmu1_s: the retiring writes (guide p.23)
_UNIF_ADDR = 32                 # uniform read (both files)
_VARY_ADDR = 35                 # varying read (both files); also writes r5 (guide p.22)
_UNIF_ADDR_WRITE = 40
_TMU_NOSWAP_ADDR = 36
_VPM_ADDR = 48
_MUTEX_ADDR = 51
_REG14 = 14
_TLB_Z_ADDR = 44
_MS_FLAGS_READ = (42, "a")      # ms_flags is read through file A only (Table 14)
_CONDITIONAL = frozenset(int(c) for c in Cond if c not in (Cond.NEVER, Cond.ALWAYS))


class _Ins:
    """What one instruction does, as far as the rules care."""

    __slots__ = (
        "index", "word", "kind", "reserved", "signal", "setf", "pm", "pack",
        "reads", "a_used", "acc_reads", "mul_srcs", "writes", "rotation",
        "add_op", "mul_op", "add_muxes", "mul_muxes", "small_imm", "unpack",
        "cond_br", "rel", "reg", "imm", "target", "target_problem",
        "ldi_value",
    )

    def __init__(self, index: int, word: int) -> None:
        self.index = index
        self.word = word
        self.reserved = ""
        self.signal = Signal.NONE
        self.setf = False
        self.pm = 0
        self.pack = 0
        self.unpack = 0
        self.reads: Tuple[_Read, ...] = ()
        self.a_used = False
        self.acc_reads: Set[int] = set()
        self.mul_srcs: Tuple[int, ...] = ()
        self.writes: Tuple[_Write, ...] = ()
        self.rotation: Optional[int] = None
        self.add_op: Optional[OpInfo] = None
        self.mul_op: Optional[OpInfo] = None
        self.add_muxes: Tuple[int, ...] = ()
        self.mul_muxes: Tuple[int, ...] = ()
        self.small_imm: Optional[int] = None
        self.cond_br = 0
        self.rel = False
        self.reg: Optional[int] = None
        self.imm = 0
        self.target: Optional[int] = None
        self.target_problem = ""
        self.ldi_value: Optional[int] = None   # element 0 of a load immediate's value
        fmt, f = decode_fields(word)
        if fmt is Format.BRANCH:
            self.kind = "branch"
            self._branch(f)
        elif fmt is Format.LOAD_IMM or fmt is Format.SEMAPHORE:
            self.kind = "ldi" if fmt is Format.LOAD_IMM else "sema"
            self._imm_like(fmt, f)
        else:
            self.kind = "alu"
            self._alu(fmt, f)

    # --- decoding helpers -------------------------------------------------------------------

    @staticmethod
    def _write(addr: int, file: str, alu: str, cond: Optional[int]) -> Optional[_Write]:
        if addr == NOP_ADDR or cond == Cond.NEVER:
            return None
        space = Space.WRITE_A if file == "a" else Space.WRITE_B
        return _Write(addr, file, alu, cond, REGISTERS[space][addr])

    def _dest_writes(self, f: Dict[str, int], cond_add: Optional[int], cond_mul: Optional[int]) -> None:
        ws = f["ws"]
        add = self._write(f["waddr_add"], "b" if ws else "a", "add", cond_add)
        mul = self._write(f["waddr_mul"], "a" if ws else "b", "mul", cond_mul)
        self.writes = tuple(w for w in (add, mul) if w is not None)

    def _branch(self, f: Dict[str, int]) -> None:
        self.cond_br = f["cond_br"]
        if self.cond_br in RESERVED_BRANCH_CONDS:
            self.reserved = f"reserved branch condition {self.cond_br} (guide Table 11)"
        self.rel = bool(f["rel"])
        self.setf = bool(f["raddr_a"] & 1)
        self.imm = f["immediate"] - (1 << 32) if f["immediate"] & 0x80000000 else f["immediate"]
        if f["reg"]:
            self.reg = f["raddr_a"]
            self.reads = (_Read(self.reg, "a", REGISTERS[Space.READ_A][self.reg]),)
            self.a_used = True
        self._dest_writes(f, None, None)

    def _imm_like(self, fmt: Format, f: Dict[str, int]) -> None:
        self.setf = bool(f["sf"])
        self.pm, self.pack = f["pm"], f["pack"]
        if fmt is Format.LOAD_IMM:
            mode = f["unpack"]
            if mode not in LOAD_IMM_MODES:
                self.reserved = f"reserved load-immediate mode {mode} (guide Figure 5)"
            else:
                v = f["immediate"]
                if mode == LoadImmMode.U32:
                    self.ldi_value = v
                else:  # per-element: element 0 is bit 16 (MS) and bit 0 (LS)
                    e0 = ((v >> 16) & 1) << 1 | (v & 1)
                    if mode == LoadImmMode.PER_ELEMENT_SIGNED and e0 >= 2:
                        e0 -= 4
                    self.ldi_value = e0 & 0xFFFFFFFF
        self._dest_writes(f, f["cond_add"], f["cond_mul"])

    def _alu(self, fmt: Format, f: Dict[str, int]) -> None:
        small = fmt is Format.ALU_SMALL_IMM
        self.setf = bool(f["sf"])
        self.pm, self.pack, self.unpack = f["pm"], f["pack"], f["unpack"]
        if not small:
            self.signal = Signal(f["sig"])
        add_op = ADD_OPS.get(f["op_add"])
        mul_op = MUL_OPS[f["op_mul"]]
        if add_op is None:
            self.reserved = f"reserved add opcode {f['op_add']} (guide Table 12)"
        elif self.pm and self.pack and self.pack not in PACK_MUL_MODES:
            self.reserved = f"reserved mul pack mode {self.pack} (guide Table 9)"
        self.add_op, self.mul_op = add_op, mul_op
        # Flags come from the add ALU unless it executes a nop (vc4asm addendum, "set flags").
        add_flags = self.setf and (add_op is None or not add_op.is_nop)
        mul_flags = self.setf and add_op is not None and add_op.is_nop

        def used(op: Optional[OpInfo], cond: int, flags: bool, sa: str, sb: str) -> Tuple[int, ...]:
            arity = 2 if op is None else op.arity  # a reserved op: assume it reads both inputs
            if arity == 0 or (cond == Cond.NEVER and not flags):
                return ()
            return (f[sa],) if arity == 1 else (f[sa], f[sb])

        self.add_muxes = used(add_op, f["cond_add"], add_flags, "add_a", "add_b")
        self.mul_muxes = used(mul_op, f["cond_mul"], mul_flags, "mul_a", "mul_b")
        self.mul_srcs = self.mul_muxes
        self.acc_reads = {m for m in self.add_muxes + self.mul_muxes if m <= Mux.R5}
        self.a_used = Mux.A in self.add_muxes + self.mul_muxes
        reads = []
        if f["raddr_a"] != NOP_ADDR:
            reads.append(_Read(f["raddr_a"], "a", REGISTERS[Space.READ_A].get(f["raddr_a"])))
        if small:
            self.small_imm = f["small_imm"]
            if self.small_imm >= 48 and self.mul_muxes:
                self.rotation = self.small_imm - 48
        elif f["raddr_b"] != NOP_ADDR:
            reads.append(_Read(f["raddr_b"], "b", REGISTERS[Space.READ_B].get(f["raddr_b"])))
        self.reads = tuple(reads)
        self._dest_writes(f, f["cond_add"], f["cond_mul"])

    # --- derived properties -----------------------------------------------------------------

    @property
    def is_branch(self) -> bool:
        return self.kind == "branch"

    @property
    def ends_thread(self) -> bool:
        return SIGNALS[self.signal].ends_thread

    @property
    def switches_thread(self) -> bool:
        return SIGNALS[self.signal].switches_thread

    @property
    def ldtmu(self) -> Optional[int]:
        if self.signal is Signal.LOAD_TMU0:
            return 0
        if self.signal is Signal.LOAD_TMU1:
            return 1
        return None

    def reads_addr(self, addr: int, file: Optional[str] = None) -> bool:
        return any(r.addr == addr and (file is None or r.file == file) for r in self.reads)

    def writes_addr(self, addr: int, file: Optional[str] = None) -> Optional[_Write]:
        for w in self.writes:
            if w.addr == addr and (file is None or w.file == file):
                return w
        return None

    def writes_unit(self, units: Iterable[Unit]) -> List[_Write]:
        us = set(units)
        return [w for w in self.writes if w.unit in us]

    @property
    def sfu_write(self) -> Optional[_Write]:
        ws = self.writes_unit((Unit.SFU,))
        return ws[0] if ws else None

    def r4_writer(self) -> str:
        """What in this instruction makes the hardware write r4 ('' for nothing)."""
        w = self.sfu_write
        if w is not None:
            return f"the SFU write to {w.name}"
        if SIGNALS[self.signal].writes_r4:
            return f"the {SIGNALS[self.signal].text} signal"
        return ""

    @property
    def r5_write(self) -> str:
        w = self.writes_addr(R5_WRITE_ADDR)
        if w is not None:
            return w.name
        if self.reads_addr(_VARY_ADDR):
            return "r5 (a varying read also writes r5)"
        return ""

    def tmu_s_writes(self) -> List[int]:
        return [_TMU_S_ADDRS[w.addr] for w in self.writes if w.addr in _TMU_S_ADDRS]

    def vpm_reads(self) -> int:
        return sum(1 for r in self.reads if r.addr == _VPM_ADDR)



def _opposite(c1: int, c2: int) -> bool:
    """zs/zc, ns/nc, cs/cc: exactly one of the two holds for each element (Table 2)."""
    return c1 in _CONDITIONAL and c2 in _CONDITIONAL and c1 ^ c2 == 1


def _cond_text(c: Optional[int]) -> str:
    return "taken branch" if c is None else Cond(c).name.lower()

