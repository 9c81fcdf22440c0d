"""Static checker: the hardware's programming rules, checked on the machine words.

``check(program)`` decodes every word, follows the program's control flow and
reports each violated rule of ``qpu.isa.rules`` (rule id, level, instruction
index and byte address, the instruction's disassembly, the kernel source line
when the Program knows it, a specific message, and the guide / addendum citation).

Control flow
------------
The QPU executes the three instructions after a branch before the jump takes
effect, and the two after a program end (thrend/ldcend) before it stops (guide
p.34, p.21).  So the successor of an instruction depends on what is pending: the
analysis works on nodes ``(index, pending events)``, where an event is a branch
or a program end (or a thread switch, which only matters for its own rule) still
waiting for its delay slots.  A conditional branch has both successors, an
unconditional one only its target; a branch through a register or an absolute
branch (its target depends on the load address) is not followed: an info-level
``branch-target-unknown`` note says so.  The instruction after a branch with link
(a call) is where the callee returns: it is checked with unknown state.
Instructions no path reaches (code reached only through register branches) are
checked too, with unknown state.

Rules on neighbouring instructions (read after write, r4 after an SFU write,
rotation after a write, uniforms after unif_addr, tmu_noswap distance, the thread
end's delay slots) look along these edges, so a loop's last instruction precedes
its first.  Counting rules (outstanding TMU requests, VPM reads set up, VPM write
set up) run a small data-flow analysis over the same graph: each node holds the
set of counts possible on the paths reaching it.  A problem on every path is
reported at the rule's level; one that only some paths have (possibly paths that
cannot happen at run time: the analysis does not know the flags) is reported as
a warning and says "on some paths".

Conservative choices (values are unknown statically)
----------------------------------------------------
* A write counts when its condition is not ``never``: conditional writes may
  happen.  A read counts when the raddr field names it (whether or not an ALU
  uses the value: the hardware reads it, as vc4asm's ``read`` does).
* A value written to vr_setup / vw_setup is known when it comes from a
  load-immediate, directly or through a ``mov`` from a register that a
  load-immediate set on every path (searched up to 32 instructions back).  An
  unknown vr_setup value stops the VPM-read counting on that path (it may be a
  read setup or a DMA setup); an unknown vw_setup value is taken as a write setup.
* TMU requests are counted per register name (tmu0_s writes against ldtmu0
  signals, tmu1_s against ldtmu1); the automatic TMU swap on QPUs 2 and 3 (guide
  p.40) is assumed to apply to requests and loads alike.  A request counts as one
  FIFO entry whatever t/r/b coordinates it also wrote (exact for direct memory
  lookups, which write s only).
* Accumulators written by both ALUs under opposite conditions (zs/zc, ns/nc,
  cs/cc) are not reported: Broadcom's GPU_FFT shaders rely on it.
* Each program entry point starts with no TMU request outstanding, no VPM read
  set up and no VPM write set up.
"""

from __future__ import annotations

import functools
import operator
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

from .disassembler import format_instruction
from .encoding import decode
from .errors import QPUError, SourceLocation
from .isa.formats import LOAD_IMM_MODES, Format, LoadImmMode, decode_fields
from .isa.ops import ADD_OPS, MOV_ADD, MOV_MUL, MUL_OPS, OpInfo
from .isa.packing import PACK_MUL_MODES
from .isa.registers import NOP_ADDR, R5_WRITE_ADDR, REGISTERS, STALLING_WRITE_UNITS, RegInfo, Space, Unit
from .isa.rules import RULES, Level
from .isa.signals import RESERVED_BRANCH_CONDS, SIGNALS, BranchCond, Cond, Mux, Signal
from .isa.small_imm import SMALL_IMMS
from .isa.vpm import SetupFormat, decode_setup, setup_format_of
from .program import Program, ProgramLike, as_program

__all__ = ["check", "CheckReport", "Finding", "CheckError"]


# --------------------------------------------------------------------------------------------
# Public result types
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One violated rule at one instruction."""

    rule: str
    level: Level
    index: int                 # instruction index in the program
    instruction: str           # its disassembly
    message: str               # what is wrong here, naming registers and other instructions
    citation: str              # where the rule comes from (guide page, addendum section)
    location: Optional[SourceLocation] = None  # kernel source file:line when known

    @property
    def address(self) -> int:
        """Byte offset of the instruction from the start of the program."""
        return 8 * self.index

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location is not None else ""
        return (f"{where}{self.level.value}[{self.rule}] {self.address:#06x} (#{self.index}) "
                f"`{self.instruction}`: {self.message} [{self.citation}]")


class CheckError(QPUError):
    """A program violates error-level rules; ``findings`` lists them."""

    def __init__(self, findings: Sequence[Finding], name: str = "") -> None:
        self.findings = list(findings)
        what = f" in {name}" if name else ""
        lines = [f"{len(self.findings)} error(s) found by the static checker{what}:"]
        lines += [f"  {f}" for f in self.findings]
        super().__init__("\n".join(lines))


@dataclass
class CheckReport:
    """Everything ``check`` found, in instruction order."""

    findings: List[Finding] = field(default_factory=list)
    program: Optional[Program] = None

    @property
    def errors(self) -> List[Finding]:
        return [f for f in self.findings if f.level is Level.ERROR]

    @property
    def warnings(self) -> List[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]

    @property
    def notes(self) -> List[Finding]:
        return [f for f in self.findings if f.level is Level.INFO]

    @property
    def ok(self) -> bool:
        """True when no error-level rule is violated (warnings and notes allowed)."""
        return not self.errors

    def by_rule(self, rule_id: str) -> List[Finding]:
        return [f for f in self.findings if f.rule == rule_id]

    def summary(self) -> str:
        return f"{len(self.errors)} error(s), {len(self.warnings)} warning(s), {len(self.notes)} note(s)"

    def raise_for_errors(self) -> CheckReport:
        """Raise CheckError if there is any error; return the report otherwise."""
        errors = self.errors
        if errors:
            raise CheckError(errors, self.program.name if self.program is not None else "")
        return self

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)


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


# --------------------------------------------------------------------------------------------
# The control-flow graph over (index, pending events)
# --------------------------------------------------------------------------------------------

# An event: (instructions still to execute before it takes effect, kind, target, origin index).
# Kinds: "b" unconditional branch, "c" conditional branch, "e" program end, "s" thread switch.
# target -1: not followed (register / absolute / outside the program).
_Event = Tuple[int, str, int, int]
_NodeKey = Tuple[int, Tuple[_Event, ...]]

_BRANCH_SLOTS = 3       # guide p.34
_END_SLOTS = 2          # guide p.21
_SWITCH_SLOTS = 2       # guide p.21

# Data-flow state: one bit set per possible count; _TOP means unknown (no reports).
_TOP = 1 << 60
_TMU_CAP = 9            # "9 or more" outstanding requests (the FIFO holds 8)
_VPM_CAP = 32           # "32 or more" VPM reads set up (two queued setups of 16)
_VW_NOT_SET, _VW_SET = 1, 2
_NO_COORDS, _COORDS = 1, 2
_State = Tuple[int, int, int, int, int, int]


def _inc(mask: int, by: int, cap: int) -> int:
    if mask & _TOP:
        return mask
    out = 0
    m = mask
    c = 0
    while m:
        if m & 1:
            out |= 1 << min(c + by, cap)
        m >>= 1
        c += 1
    return out


def _dec(mask: int) -> int:
    """One consumed: every count minus one; 0 stays 0 (the error is reported once)."""
    if mask & _TOP:
        return mask
    return (mask >> 1) | (mask & 1)


def _counts(mask: int) -> List[int]:
    return [c for c in range(64) if mask >> c & 1]


class _Checker:
    def __init__(self, program: Program, threaded: bool, entry_points: Sequence[int]) -> None:
        self.program = program
        self.threaded = threaded
        self.n = len(program.words)
        cache: Dict[int, _Ins] = {}
        self.ins: List[_Ins] = []
        for i, w in enumerate(program.words):
            if w in cache and not cache[w].is_branch:
                tmpl = cache[w]
                ins = _Ins.__new__(_Ins)
                for slot in _Ins.__slots__:
                    setattr(ins, slot, getattr(tmpl, slot))
                ins.index = i
            else:
                ins = _Ins(i, w)
                cache[w] = ins
            if ins.is_branch:
                self._branch_target(ins)
            self.ins.append(ins)
        for e in entry_points:
            if not 0 <= e < max(self.n, 1):
                raise ValueError(f"entry point {e} is outside the program (0..{self.n - 1})")
        self.entries = list(dict.fromkeys(entry_points)) if self.n else []
        self.found: Dict[Tuple[str, int], Finding] = {}
        self._texts: Dict[int, str] = {}
        labels = {i: name for name, i in program.labels.items()}
        self._label_of: Callable[[int], Optional[str]] = \
            lambda t: labels.get(t) or (f"L{t}" if 0 <= t < self.n else None)
        # graph
        self.node_ids: Dict[_NodeKey, int] = {}
        self.node_pc: List[int] = []
        self.node_events: List[Tuple[_Event, ...]] = []
        self.succ: List[List[int]] = []
        self.pred: List[List[int]] = []
        self.nodes_of: List[List[int]] = [[] for _ in range(self.n)]
        self.entry_nodes: List[int] = []
        self.unknown_nodes: List[int] = []   # nodes whose state is unknown (calls' return sites...)
        self.context_free: Set[int] = set()  # entry and unknown nodes: register values unknown there

    # --- reporting ----------------------------------------------------------------------------

    def text(self, i: int) -> str:
        t = self._texts.get(i)
        if t is None:
            t = format_instruction(decode(self.program.words[i]), i, self._label_of)
            self._texts[i] = t
        return t

    def ref(self, i: int) -> str:
        return f"index {i}: {self.text(i)}"

    def add(self, rule_id: str, index: int, message: str, level: Optional[Level] = None) -> None:
        key = (rule_id, index)
        if key in self.found:
            return
        r = RULES[rule_id]
        self.found[key] = Finding(rule_id, level or r.level, index, self.text(index), message,
                                  r.citation, self.program.location(index))

    def earlier(self, j: int, i: int, d: int) -> str:
        """How instruction j, executed d instructions before i, relates to i, for messages."""
        if d == 1:
            what = "the previous instruction"
        else:
            what = f"the instruction {d} before it"
        if i - j != d:
            what += " on a path through a branch"
        return f"{what} ({self.ref(j)})"

    # --- branch targets -------------------------------------------------------------------------

    def _branch_target(self, ins: _Ins) -> None:
        if ins.reg is not None or not ins.rel:
            ins.target = None
            return
        if ins.imm % 8:
            ins.target_problem = f"the offset {ins.imm} is not a multiple of 8 bytes"
            ins.target = None
            return
        t = ins.index + 4 + ins.imm // 8  # relative to PC + 4 instructions (guide p.20, p.34)
        if not 0 <= t < self.n:
            ins.target_problem = (f"it lands on instruction {t}, outside the program "
                                  f"(0..{self.n - 1})")
            ins.target = None
            return
        ins.target = t

    # --- graph construction ----------------------------------------------------------------------

    def _node(self, key: _NodeKey, queue: deque) -> int:
        nid = self.node_ids.get(key)
        if nid is None:
            nid = len(self.node_pc)
            self.node_ids[key] = nid
            self.node_pc.append(key[0])
            self.node_events.append(key[1])
            self.succ.append([])
            self.pred.append([])
            self.nodes_of[key[0]].append(nid)
            queue.append(nid)
        return nid

    def build_graph(self) -> None:
        queue: deque = deque()
        for e in self.entries:
            self.entry_nodes.append(self._node((e, ()), queue))
        calls = [ins.index for ins in self.ins if ins.is_branch and ins.writes and ins.index + 4 < self.n]
        returned: Set[int] = set()
        pc = 0
        while True:
            self._explore(queue)
            # Return sites of reached calls (branches that write their link address): the
            # callee comes back there, with whatever state it leaves.
            new = [c for c in calls if c not in returned and self.nodes_of[c]]
            if new:
                for c in new:
                    returned.add(c)
                    self.unknown_nodes.append(self._node((c + 4, ()), queue))
                continue
            # Code no known path reaches (register branches): check it without context.
            while pc < self.n and self.nodes_of[pc]:
                pc += 1
            if pc == self.n:
                break
            self.unknown_nodes.append(self._node((pc, ()), queue))
        for u, ss in enumerate(self.succ):
            for v in ss:
                self.pred[v].append(u)
        self.context_free = set(self.entry_nodes) | set(self.unknown_nodes)

    def _explore(self, queue: deque) -> None:
        while queue:
            u = queue.popleft()
            pc, events = self.node_pc[u], self.node_events[u]
            for key in self._step(pc, events):
                v = self._node(key, queue)
                if v not in self.succ[u]:
                    self.succ[u].append(v)

    def _step(self, pc: int, events: Tuple[_Event, ...]) -> List[_NodeKey]:
        ins = self.ins[pc]
        for k, kind, _t, org in events:
            if ins.is_branch:
                if kind in "bc" and k > 1:
                    between = _BRANCH_SLOTS - k
                    self.add("branch-in-delay-slot", pc,
                             f"this branch follows the branch at index {org} ({self.text(org)}) with only "
                             f"{between} non-branch instruction(s) between them; at least 2 are needed, or no "
                             "branch is taken (or the thread crashes): put nops between them")
                elif kind == "e":
                    self.add("thread-end-delay-slots", pc,
                             f"a branch in the delay slots of the program end at index {org} "
                             f"({self.text(org)}); move it before the program end")
                elif kind == "s":
                    self.add("thread-switch-delay-slots", pc,
                             f"a branch in the delay slots of the thread switch at index {org} "
                             f"({self.text(org)})")
            if ins.ends_thread:
                if kind == "e":
                    self.add("thread-end-delay-slots", pc,
                             f"another program end in the delay slots of the program end at index {org} "
                             f"({self.text(org)})")
                elif kind == "s":
                    self.add("thread-switch-delay-slots", pc,
                             f"a program end in the delay slots of the thread switch at index {org} "
                             f"({self.text(org)})")
        pending: List[_Event] = []
        fired: List[_Event] = []
        for k, kind, t, org in events:
            (fired if k == 1 else pending).append((k - 1, kind, t, org))
        if ins.is_branch:
            kind = "b" if ins.cond_br == BranchCond.ALWAYS else "c"
            pending.append((_BRANCH_SLOTS, kind, -1 if ins.target is None else ins.target, pc))
        if ins.ends_thread:
            pending.append((_END_SLOTS, "e", -1, pc))
        if ins.switches_thread:
            pending.append((_SWITCH_SLOTS, "s", -1, pc))
        if any(kind == "e" for _k, kind, _t, _o in fired):
            return []  # the program ends after this instruction
        nexts: List[int] = []
        jumps = [ev for ev in fired if ev[1] in "bc"]
        if jumps:
            for _k, kind, t, _o in jumps:
                if kind == "c":
                    nexts.append(pc + 1)
                if t >= 0:
                    nexts.append(t)
        else:
            nexts.append(pc + 1)
        rest = tuple(sorted(pending))
        out: List[_NodeKey] = []
        for t in dict.fromkeys(nexts):
            if t < self.n:
                out.append((t, rest))
                continue
            end = [ev for ev in rest if ev[1] == "e"]
            if end:
                org = end[0][3]
                self.add("thread-end-delay-slots", org,
                         f"the program has only {self.n - 1 - org} instruction(s) after this program end; "
                         "two delay-slot instructions must follow it (add nops)")
            else:
                self.add("missing-program-end", pc,
                         f"execution continues after this instruction at index {t}, past the end of the "
                         f"program ({self.n} instructions): end every path with a program end "
                         "(`nop ; thrend` and two more instructions)")
        return out

    # --- rules on one instruction ----------------------------------------------------------------

    def local_rules(self, ins: _Ins) -> None:
        i = ins.index
        if ins.reserved:
            self.add("reserved-encoding", i, f"{ins.reserved}: the hardware's behaviour is undefined")
        if ins.signal is Signal.BREAKPOINT and ins.kind == "alu":
            self.add("breakpoint", i, "software breakpoint signal (bkpt): remove it unless a debugger is attached")
        self._peripherals(ins)
        self._same_destination(ins)
        self._vpm_concurrent(ins)
        for w in ins.writes:
            if (w.addr in _TMU_S_ADDRS or w.addr == _VPM_ADDR) and w.cond in _CONDITIONAL:
                self.add("conditional-peripheral-write", i,
                         f"conditional write (.{Cond(w.cond).name.lower()}) to {w.name}: the FIFO is pushed for "
                         "every element, with undefined data where the condition is false; select the value "
                         "into an accumulator first and write it unconditionally")
        if ins.kind != "branch" and ins.pm and ins.pack in PACK_MUL_MODES:
            mode = PACK_MUL_MODES[ins.pack]
            for w in ins.writes:
                if w.alu == "mul" and 0 <= mode.byte_lane <= 3 and w.addr >= 32 \
                        and w.unit not in (Unit.ACCUMULATOR, Unit.NOP):
                    self.add("mul-pack-io", i,
                             f"mul pack .{mode.text} writes a single byte, which the I/O register {w.name} cannot "
                             "take; pack into an accumulator or regfile register, then move it")
        if ins.kind == "sema":
            for w in ins.writes:
                if w.unit in STALLING_WRITE_UNITS:
                    self.add("semaphore-stalling-write", i,
                             f"a semaphore instruction writes {w.name}, which can stall; write it in another "
                             "instruction")
        if ins.ends_thread:
            for w in ins.writes:
                if w.physical:
                    self.add("thread-end-regfile-write", i,
                             f"the program-end instruction writes r{w.file}{w.addr}: the hardware uses this write "
                             "cycle for the next thread; write an accumulator, or move the write earlier")
        if ins.is_branch:
            self._branch_local(ins)
        coords = [w for w in ins.writes_unit(_TMU_UNITS) if w.addr not in _TMU_S_ADDRS]
        if coords and ins.reads_addr(_UNIF_ADDR):
            self.add("tmu-write-reads-uniform", i,
                     f"writes {coords[0].name} and reads a uniform: a texture lookup reads its own config "
                     "uniform with each coordinate write; read the uniform in another instruction")
        if ins.rotation is not None:
            others = [m for m in ins.mul_srcs if m not in (Mux.R0, Mux.R1, Mux.R2, Mux.R3)]
            if others:
                names = ", ".join(dict.fromkeys(self._mux_name(ins, m) for m in others))
                self.add("rotate-not-accumulators", i,
                         f"the mul output is rotated but its operand(s) {names} are not r0-r3: it is only rotated "
                         "within each quad of 4 elements (by the low two bits of the amount); move the operands "
                         "to r0-r3 for a full rotation")

    def _mux_name(self, ins: _Ins, mux: int) -> str:
        if mux <= Mux.R5:
            return f"r{mux}"
        if mux == Mux.A:
            r = [x for x in ins.reads if x.file == "a"]
            return r[0].name if r else "ra39"
        if ins.small_imm is not None:
            return f"small immediate {SMALL_IMMS[ins.small_imm].text}"
        r = [x for x in ins.reads if x.file == "b"]
        return r[0].name if r else "rb39"

    def _peripherals(self, ins: _Ins) -> None:
        acc: List[str] = []
        for w in ins.writes:
            if w.unit in _TMU_UNITS:
                acc.append(f"TMU write {w.name}")
            elif w.unit is Unit.TLB:
                acc.append(f"TLB write {w.name}")
            elif w.unit is Unit.SFU:
                acc.append(f"SFU write {w.name}")
        peripheral = SIGNALS[ins.signal].peripheral if ins.kind == "alu" else None
        if peripheral == "tmu_read":
            acc.append(f"TMU read {SIGNALS[ins.signal].text}")
        elif peripheral == "tlb_read":
            acc.append(f"TLB read {SIGNALS[ins.signal].text}")
        for r in ins.reads:
            if r.addr == _MUTEX_ADDR:
                acc.append("mutex acquire")
        # A semaphore instruction is itself a peripheral access, but it has no reads and no
        # signal: the only other access it can make is a stalling write, which
        # semaphore-stalling-write reports.
        if len(acc) > 1:
            self.add("two-peripherals", ins.index,
                     f"{len(acc)} closely-coupled peripheral accesses in one instruction ({', '.join(acc)}); "
                     "only one is allowed: split the instruction")

    def _same_destination(self, ins: _Ins) -> None:
        if len(ins.writes) != 2:
            return
        a, b = ins.writes
        if a.physical or b.physical:
            return  # different register files: ws sends the two ALUs to A and B
        same = a.name == b.name or (a.addr == R5_WRITE_ADDR and b.addr == R5_WRITE_ADDR)
        if not same:
            return
        what = "r5" if a.addr == R5_WRITE_ADDR else a.name
        if a.unit is Unit.ACCUMULATOR:
            # The guide calls any double write undefined (p.19), but Broadcom's own GPU_FFT
            # shaders (raspberrypi/userland hello_fft, e.g. `mov.ifz r0, r2; mov.ifnz r0, r1 >> 1`)
            # write one accumulator from both ALUs under opposite conditions and work on
            # hardware: only overlapping conditions are reported for accumulators.
            if a.cond is not None and b.cond is not None and _opposite(a.cond, b.cond):
                return
            self.add("same-destination-both-alus", ins.index,
                     f"both ALUs write {what} and their conditions "
                     f"({_cond_text(a.cond)}, {_cond_text(b.cond)}) can both be true: the result is undefined; "
                     "write one of them elsewhere or use opposite conditions")
            return
        # I/O registers: even opposite conditions write an undefined value (vc4asm addendum,
        # "No conditional write to peripheral registers").
        self.add("same-destination-both-alus", ins.index,
                 f"both ALUs write the I/O register {what}: the result is undefined, even with opposite "
                 "conditions; write it from one ALU")

    def _vpm_concurrent(self, ins: _Ins) -> None:
        acc: List[str] = []
        plain = 0
        for r in ins.reads:
            if r.unit in _VPM_UNITS:
                acc.append(f"read {r.name}")
                plain += r.addr == _VPM_ADDR
        vpm_writes = 0
        for w in ins.writes:
            if w.unit in _VPM_UNITS:
                acc.append(f"write {w.name}")
                vpm_writes += w.addr == _VPM_ADDR
        if not acc:
            return
        ok_pair = len(acc) == 2 and plain == 1 and vpm_writes == 1
        if ins.ldtmu is not None:
            self.add("vpm-concurrent-access", ins.index,
                     f"VPM access ({', '.join(acc)}) together with the {SIGNALS[ins.signal].text} signal is "
                     "unreliable; split the instruction")
        elif len(acc) > 1 and not ok_pair:
            self.add("vpm-concurrent-access", ins.index,
                     f"{len(acc)} VPM accesses in one instruction ({', '.join(acc)}); only a vpm read plus a vpm "
                     "write are reliable together: split the instruction")

    def _branch_local(self, ins: _Ins) -> None:
        i = ins.index
        if ins.setf:
            if ins.reg is not None:
                self.add("branch-implicit-setf", i,
                         f"branching through ra{ins.reg} (an odd register) also sets the flags, because raddr_a "
                         "bit 0 is the set-flags bit; use an even register if the flags are still needed")
            else:
                self.add("branch-implicit-setf", i,
                         "the raddr_a field of this branch is odd, so it also sets the flags (raddr_a bit 0 is "
                         "the set-flags bit)")
        if ins.target_problem:
            self.add("branch-target-outside", i, f"the branch target is not in the program: {ins.target_problem}")
        elif ins.target is None:
            if ins.reg is not None:
                how = f"ra{ins.reg} (element 15)" + (" + PC + 4" if ins.rel else "") + \
                    (f" + {ins.imm}" if ins.imm else "")
            else:
                how = f"the absolute address {ins.imm:#x} (depends on where the program is loaded)"
            self.add("branch-target-unknown", i,
                     f"the target is {how}: the checker does not follow this jump, so rules across it are not "
                     "checked")

    # --- rules on neighbouring instructions ----------------------------------------------------

    def neighbour_rules(self) -> None:
        succ = self.succ
        for u, pc in enumerate(self.node_pc):
            ins = self.ins[pc]
            phys = {(w.file, w.addr): w for w in ins.writes if w.physical}
            sfu = ins.sfu_write
            r5 = ins.r5_write
            accs = {w.addr - 32: w for w in ins.writes if 32 <= w.addr <= 35}
            unif_addr = ins.writes_addr(_UNIF_ADDR_WRITE)
            noswap = ins.writes_addr(_TMU_NOSWAP_ADDR)
            tlb_z = ins.writes_addr(_TLB_Z_ADDR)
            if noswap is not None:
                self._noswap(pc, pc, 0)
            if ins.ends_thread:
                self._thread_end_slot(pc, pc, 0)
            if not (phys or sfu or r5 or accs or unif_addr or noswap or tlb_z or ins.ends_thread):
                continue
            for v in succ[u]:
                vpc = self.node_pc[v]
                nxt = self.ins[vpc]
                if phys:
                    self._raw(pc, nxt, phys)
                if r5 and nxt.rotation == 0:
                    self.add("rotate-after-r5-write", vpc,
                             f"rotates by r5, which {self.earlier(pc, vpc, 1)} writes ({r5}); put an instruction "
                             "between them")
                if accs and nxt.rotation is not None and nxt.mul_srcs and \
                        all(m <= Mux.R3 for m in nxt.mul_srcs):
                    hit = [m for m in dict.fromkeys(nxt.mul_srcs) if m in accs]
                    if hit:
                        names = ", ".join(f"r{m}" for m in hit)
                        self.add("rotate-after-acc-write", vpc,
                                 f"rotates {names}, written by {self.earlier(pc, vpc, 1)}; the rotation reads the "
                                 "old value for elements moving to a lower quad: put an instruction between them")
                for d, w in ((1, v), *((2, x) for x in succ[v])):
                    wpc = self.node_pc[w]
                    far = self.ins[wpc]
                    if sfu is not None:
                        self._after_sfu(pc, sfu, far, d)
                    if unif_addr is not None and far.reads_addr(_UNIF_ADDR):
                        self.add("uniform-after-address-write", wpc,
                                 f"reads a uniform {d} instruction(s) after unif_addr is written, by "
                                 f"{self.earlier(pc, wpc, d)}; at least two instructions without uniform reads "
                                 "must follow that write")
                    if noswap is not None:
                        self._noswap(pc, wpc, d)
                    if tlb_z is not None and far.reads_addr(*_MS_FLAGS_READ):
                        self.add("ms-flags-after-tlb-z", wpc,
                                 f"reads ms_flags {d} instruction(s) after the TLB Z write by "
                                 f"{self.earlier(pc, wpc, d)}; wait two instructions")
                    if ins.ends_thread:
                        self._thread_end_slot(pc, wpc, d)
        # scoreboard wait in the first two instructions of a program
        for u in self.entry_nodes:
            for d, w in ((0, u), *((1, x) for x in succ[u])):
                far = self.ins[self.node_pc[w]]
                tlb = far.writes_unit((Unit.TLB,)) or (far.kind == "alu" and
                                                       SIGNALS[far.signal].peripheral == "tlb_read")
                if far.signal is Signal.WAIT_SCOREBOARD or tlb:
                    what = "sbwait" if far.signal is Signal.WAIT_SCOREBOARD else \
                        "a tile-buffer access (it waits for the scoreboard implicitly)"
                    self.add("scoreboard-wait-too-early", far.index,
                             f"{what} in instruction {d + 1} of the program (entry at index {self.node_pc[u]}); "
                             "it must not come before the third instruction")

    def _raw(self, pc: int, nxt: _Ins, phys: Dict[Tuple[str, int], _Write]) -> None:
        for r in nxt.reads:
            w = phys.get((r.file, r.addr))
            if w is None:
                continue
            note = ""
            if nxt.kind == "alu" and not (nxt.a_used if r.file == "a" else
                                          (Mux.B in nxt.add_muxes + nxt.mul_muxes)):
                note = " (no ALU uses the value, but the read still happens)"
            self.add("regfile-read-after-write", nxt.index,
                     f"reads r{r.file}{r.addr}{note}, written by {self.earlier(pc, nxt.index, 1)}: a regfile read "
                     "gets the old value right after a write; use an accumulator or put an instruction between")

    def _after_sfu(self, pc: int, sfu: _Write, far: _Ins, d: int) -> None:
        if Mux.R4 in far.acc_reads:
            self.add("r4-read-after-sfu", far.index,
                     f"reads r4 {d} instruction(s) after the SFU write to {sfu.name} by "
                     f"{self.earlier(pc, far.index, d)}; the result arrives in r4 for the third instruction: "
                     f"insert {3 - d} instruction(s) before this read")
        what = far.r4_writer()
        if what:
            self.add("r4-write-after-sfu", far.index,
                     f"{what} writes r4 {d} instruction(s) after the SFU write to {sfu.name} by "
                     f"{self.earlier(pc, far.index, d)}; r4 must not be written until the SFU result has arrived")

    def _noswap(self, pc: int, wpc: int, d: int) -> None:
        far = self.ins[wpc]
        tmu = far.writes_unit(_TMU_UNITS)
        if tmu:
            when = "in the same instruction as" if d == 0 else f"{d} instruction(s) after"
            src = "" if d == 0 else f", by {self.earlier(pc, wpc, d)}"
            self.add("tmu-noswap-too-late", wpc,
                     f"writes {tmu[0].name} {when} the tmu_noswap write{src}; tmu_noswap must be written at least "
                     "three instructions before the first TMU write")

    def _thread_end_slot(self, pc: int, wpc: int, d: int) -> None:
        far = self.ins[wpc]
        where = "the program-end instruction" if d == 0 else \
            f"delay slot {d} of the program end at index {pc} ({self.text(pc)})"
        touched = [f"r{r.file}{r.addr}" for r in far.reads if r.addr == _REG14] + \
            [f"r{w.file}{w.addr}" for w in far.writes if w.addr == _REG14]
        if touched:
            self.add("thread-end-reg14", wpc,
                     f"{where} accesses {touched[0]}: regfile location 14 receives the next thread's W/Z values; "
                     "use another register")
        io = [f"reads {r.name}" for r in far.reads if r.unit in _THREAD_END_IO_UNITS] + \
            [f"writes {w.name}" for w in far.writes if w.unit in _THREAD_END_IO_UNITS]
        if io:
            self.add("thread-end-io", wpc,
                     f"{where} {io[0]}: uniforms, varyings, the VPM and its DMA must not be used in the last "
                     "three instructions of a program; move it before the program end")
        if d == 2 and far.writes_addr(_TLB_Z_ADDR) is not None:
            self.add("thread-end-tlb-z", wpc,
                     f"the last instruction of the program ({where}) writes tlb_z; write it earlier")

    # --- setup values -----------------------------------------------------------------------------

    def _reg_key(self, ins: _Ins, mux: int) -> Optional[Tuple[str, int]]:
        """Which register a mov's operand names: ("acc", n), ("a", n) or ("b", n); None if not one."""
        if mux <= Mux.R3:
            return ("acc", mux)
        if mux == Mux.A:
            r = [x for x in ins.reads if x.file == "a"]
            if r and r[0].addr < 32 and not (ins.pm == 0 and ins.unpack):
                return ("a", r[0].addr)
        if mux == Mux.B and ins.small_imm is None:
            r = [x for x in ins.reads if x.file == "b"]
            if r and r[0].addr < 32:
                return ("b", r[0].addr)
        return None

    @staticmethod
    def _writes_key(ins: _Ins, key: Tuple[str, int]) -> Optional[_Write]:
        for w in ins.writes:
            if key[0] == "acc" and 32 <= w.addr <= 35 and w.addr - 32 == key[1]:
                return w
            if key[0] in ("a", "b") and w.physical and w.file == key[0] and w.addr == key[1]:
                return w
        return None

    def _value_written(self, ins: _Ins, w: _Write, node: int, depth: int = 32) -> Optional[int]:
        """Element 0 of the value ``ins`` writes through ``w``, when it is a known constant."""
        if w.cond != Cond.ALWAYS:
            return None
        if ins.pack and ((ins.pm and w.alu == "mul") or (not ins.pm and w.file == "a")):
            return None  # packed: not the plain value
        if ins.kind == "ldi":
            return ins.ldi_value
        if ins.kind != "alu":
            return None
        op, muxes = (ins.add_op, ins.add_muxes) if w.alu == "add" else (ins.mul_op, ins.mul_muxes)
        if op not in (MOV_ADD, MOV_MUL) or len(muxes) != 2 or muxes[0] != muxes[1]:
            return None
        mux = muxes[0]
        if mux == Mux.B and ins.small_imm is not None:
            return SMALL_IMMS[ins.small_imm].bits
        key = self._reg_key(ins, mux)
        if key is None or depth <= 0:
            return None
        return self._reaching_constant(key, node, depth)

    def _reaching_constant(self, key: Tuple[str, int], node: int, depth: int) -> Optional[int]:
        """The constant in register ``key`` before ``node`` executes, if every path agrees."""
        values: Set[int] = set()
        seen: Set[int] = {node}
        frontier = [(p, depth) for p in self.pred[node]]
        if not frontier:
            return None
        while frontier:
            u, d = frontier.pop()
            if u in seen:
                continue
            seen.add(u)
            ins = self.ins[self.node_pc[u]]
            w = self._writes_key(ins, key)
            if w is not None:
                v = self._value_written(ins, w, u, d - 1)
                if v is None:
                    return None
                values.add(v)
                if len(values) > 1:
                    return None
                continue
            if d <= 0 or not self.pred[u] or u in self.context_free:
                return None
            frontier.extend((p, d - 1) for p in self.pred[u])
        return values.pop() if len(values) == 1 else None

    def _setup_kind(self, node: int, ins: _Ins, w: _Write) -> Tuple[str, int]:
        """("read", n) / ("write", 0) / ("dma", 0) / ("unknown", 0) for a setup-register write."""
        value = self._value_written(ins, w, node)
        if value is None:
            return ("unknown", 0)
        fmt = setup_format_of(w.name, value)
        if fmt is SetupFormat.VPM_READ:
            return ("read", decode_setup(fmt, value)["num"])
        if fmt is SetupFormat.VPM_WRITE:
            return ("write", 0)
        if fmt is None:
            return ("unknown", 0)
        return ("dma", 0)

    # --- counting rules (data flow) ----------------------------------------------------------------

    def dataflow(self) -> None:
        n_nodes = len(self.node_pc)
        # Per node, before it executes: outstanding requests on TMU0 and TMU1, VPM reads set
        # up, VPM write set up, and for each TMU whether t/r/b were written since the last s
        # (then the next s write is a texture lookup, not a direct memory lookup, guide p.41).
        state: List[Optional[_State]] = [None] * n_nodes
        setup: Dict[int, List[Tuple[str, str, int]]] = {}
        for u in range(n_nodes):
            ins = self.ins[self.node_pc[u]]
            for w in ins.writes:
                if w.unit is Unit.VPM_SETUP:
                    kind, num = self._setup_kind(u, ins, w)
                    setup.setdefault(u, []).append((w.name, kind, num))
        work: deque = deque()
        on_work = [False] * n_nodes

        def join(u: int, s: _State) -> None:
            old = state[u]
            new = s if old is None else tuple(a | b for a, b in zip(old, s))
            if new != old:
                state[u] = new  # type: ignore[assignment]
                if not on_work[u]:
                    on_work[u] = True
                    work.append(u)

        for u in self.entry_nodes:
            join(u, (1, 1, 1, _VW_NOT_SET, _NO_COORDS, _NO_COORDS))
        for u in self.unknown_nodes:
            join(u, (_TOP,) * 6)
        while work:
            u = work.popleft()
            on_work[u] = False
            s = state[u]
            assert s is not None
            out = self._transfer(u, s, setup.get(u, ()))
            for v in self.succ[u]:
                join(v, out)
        self._report_counts(state, setup)

    def _transfer(self, u: int, s: _State, setups: Iterable[Tuple[str, str, int]]) -> _State:
        ins = self.ins[self.node_pc[u]]
        t = [s[0], s[1]]
        coords = [s[4], s[5]]
        if ins.ldtmu is not None:
            t[ins.ldtmu] = _dec(t[ins.ldtmu])
        for w in ins.writes_unit(_TMU_UNITS):
            k = _TMU_UNITS[w.unit]
            if coords[k] & _TOP:
                continue
            coords[k] = _COORDS if w.addr not in _TMU_S_ADDRS else coords[k]
        for k in ins.tmu_s_writes():
            t[k] = _inc(t[k], 1, _TMU_CAP)
            if not coords[k] & _TOP:
                coords[k] = _NO_COORDS
        vr, vw = s[2], s[3]
        for _ in range(ins.vpm_reads()):
            vr = _dec(vr)
        for name, kind, num in setups:
            if name == "vr_setup":
                if kind == "read":
                    vr = _inc(vr, num, _VPM_CAP)
                elif kind == "unknown":
                    vr = _TOP
            elif kind in ("write", "unknown") and not vw & _TOP:
                vw = _VW_SET
        return (t[0], t[1], vr, vw, coords[0], coords[1])

    def _report_counts(self, state: List[Optional[_State]],
                       setup: Dict[int, List[Tuple[str, str, int]]]) -> None:
        limit = 4 if self.threaded else 8
        for pc in range(self.n):
            ins = self.ins[pc]
            st: Dict[int, _State] = {}
            for u in self.nodes_of[pc]:
                su = state[u]
                if su is not None:
                    st[u] = su
            nodes = list(st)
            if not nodes:
                continue
            if ins.ldtmu is not None:
                k = ins.ldtmu
                self._verdict("ldtmu-without-request", pc, [st[u][k] for u in nodes],
                              lambda c: c == 0,
                              f"{SIGNALS[ins.signal].text} with no TMU{k} request outstanding (no write to "
                              f"tmu{k}_s that an earlier ldtmu{k} has not consumed): the QPU waits forever; "
                              f"write tmu{k}_s first")
            for k in ins.tmu_s_writes():
                if ins.reads_addr(_UNIF_ADDR) and not ins.writes_unit(_TMU_UNITS)[1:]:
                    self._verdict("tmu-write-reads-uniform", pc, [st[u][4 + k] for u in nodes],
                                  lambda c: c == 1,
                                  f"writes tmu{k}_s after tmu{k}_t/r/b, so it starts a texture lookup, which "
                                  "reads its config uniform at the same time as this instruction reads one; "
                                  "read the uniform in another instruction", keep_level=True)
                after = []
                for u in nodes:
                    m = st[u][k]
                    if ins.ldtmu == k:
                        m = _dec(m)
                    after.append(_inc(m, 1, _TMU_CAP))
                over = self._verdict(
                    "tmu-fifo-overflow", pc, after, lambda c: c > limit,
                    f"this write to tmu{k}_s makes more than {limit} TMU{k} requests outstanding"
                    f"{' (a threaded program may use half the FIFO)' if self.threaded else ''}; read results "
                    f"with ldtmu{k} before issuing more", counts=True)
                if not over and not self.threaded:
                    self._verdict("tmu-fifo-unreliable", pc, after, lambda c: c > 4,
                                  f"this write to tmu{k}_s makes more than 4 TMU{k} requests outstanding, which "
                                  "is unreliable on hardware; read results with ldtmu before issuing more",
                                  counts=True, keep_level=True)
            n_reads = ins.vpm_reads()
            if n_reads:
                self._verdict("vpm-read-without-setup", pc, [st[u][2] for u in nodes],
                              functools.partial(operator.gt, n_reads),
                              "reads vpm with no VPM read left that a vr_setup write set up (a read setup "
                              "gives a fixed number of vectors): the read stalls forever or returns undefined "
                              "data; write a VPM read setup to vr_setup first")
            if ins.writes_addr(_VPM_ADDR) is not None:
                self._verdict("vpm-write-without-setup", pc, [st[u][3] for u in nodes],
                              lambda c: c == 0,
                              "writes vpm with no VPM write setup written to vw_setup since the program "
                              "started; write one first")
            queued = [(u, num) for u in nodes for name, kind, num in setup.get(u, ())
                      if name == "vr_setup" and kind == "read"]
            if queued:
                before = []
                for u, _num in queued:
                    m = st[u][2]
                    for _ in range(n_reads):
                        m = _dec(m)
                    before.append(m)
                self._verdict("vpm-read-setup-queue", pc, before, lambda c: c > 1,
                              f"this VPM read setup ({queued[0][1]} vector(s)) is written while an earlier read "
                              "setup still has more than one vector to read: the hardware ignores it (vc4asm "
                              "addendum); read the earlier vectors first")

    def _verdict(self, rule_id: str, pc: int, masks: List[int], bad: Callable[[int], bool], message: str,
                 counts: bool = False, keep_level: bool = False) -> bool:
        """Report when some known path has a bad count: at the rule's level if every path does."""
        known = [m for m in masks if not m & _TOP]
        if not known:
            return False
        per = [[bad(c) for c in _counts(m)] for m in known]
        if not any(any(p) for p in per):
            return False
        every = all(p and all(p) for p in per) and len(known) == len(masks)
        level = None if every or keep_level else Level.WARNING
        if counts:
            worst = max(c for m in known for c in _counts(m))
            shown = f"{worst} or more" if worst >= _TMU_CAP else str(worst)
            message += f" (up to {shown} outstanding)"
        if not every:
            message = "on some paths: " + message
        self.add(rule_id, pc, message, level)
        return True

    # --- driver ---------------------------------------------------------------------------------

    def run(self) -> CheckReport:
        for ins in self.ins:
            self.local_rules(ins)
        if self.n:
            self.build_graph()
            self.neighbour_rules()
            self.dataflow()
        findings = sorted(self.found.values(), key=lambda f: (f.index, _LEVEL_ORDER[f.level], f.rule))
        return CheckReport(findings, self.program)


def _opposite(c1: int, c2: int) -> bool:
    """zs/zc, ns/nc, cs/cc: exactly one of the two holds for each element (Table 2)."""
    return c1 in _CONDITIONAL and c2 in _CONDITIONAL and c1 ^ c2 == 1


def _cond_text(c: Optional[int]) -> str:
    return "taken branch" if c is None else Cond(c).name.lower()


_LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


def check(program: ProgramLike, *, threaded: bool = False, entry_points: Sequence[int] = (0,)) -> CheckReport:
    """Check a program against the hardware's programming rules (``qpu.isa.rules``).

    ``program``: a Program (its labels and source locations make the messages better),
    bytes, or a sequence of 64-bit words.  ``threaded``: the program runs as one of two
    threads on a QPU (halves the TMU FIFO budget).  ``entry_points``: instruction indices
    where the QPU starts the program.

    Returns a CheckReport; ``report.raise_for_errors()`` raises CheckError if any
    error-level rule is violated.
    """
    prog = as_program(program)
    return _Checker(prog, threaded, entry_points).run()
