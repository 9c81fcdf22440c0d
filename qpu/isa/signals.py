"""Signals, write conditions, branch conditions and ALU input muxes.

Sources (Reference Guide): Table 4 "ALU Signaling Bits" (p.29), Table 2
"cond_add/cond_mul Conditions" (p.28), Table 11 "Branch Conditions" (p.34-35),
Table 3 "ALU Input Mux Encoding" (p.28).

Text names follow vc4asm (``ldtmu0``, ``thrend``, ``.allz`` ...); the guide's
condition names (``zs``, ``zc`` ...) are the canonical condition suffixes and
vc4asm's ``ifz``/``ifnz`` ... are accepted as aliases.
"""

from __future__ import annotations

import enum
from typing import Dict, NamedTuple, Optional


class Signal(enum.IntEnum):
    """Values of the 4-bit sig field.  13-15 select formats, not signals."""

    BREAKPOINT = 0
    NONE = 1
    THREAD_SWITCH = 2
    PROGRAM_END = 3
    WAIT_SCOREBOARD = 4
    SCOREBOARD_UNLOCK = 5
    LAST_THREAD_SWITCH = 6
    LOAD_COVERAGE = 7
    LOAD_COLOR = 8
    LOAD_COLOR_END = 9
    LOAD_TMU0 = 10
    LOAD_TMU1 = 11
    LOAD_ALPHA_MASK = 12
    SMALL_IMM = 13
    LOAD_IMM = 14
    BRANCH = 15


class SignalInfo(NamedTuple):
    signal: Signal
    text: str              # text syntax (vc4asm's), empty for the format selectors
    writes_r4: bool        # the hardware delivers data into r4 for the next instruction
    ends_thread: bool      # program end: two delay-slot instructions follow
    switches_thread: bool  # thread switch: two delay-slot instructions follow
    peripheral: Optional[str]  # closely-coupled unit accessed (guide p.37 last bullet)
    doc: str


_S = Signal
SIGNALS: Dict[Signal, SignalInfo] = {i.signal: i for i in (
    SignalInfo(_S.BREAKPOINT, "bkpt", False, False, False, None, "software breakpoint"),
    SignalInfo(_S.NONE, "", False, False, False, None, "no signal"),
    SignalInfo(_S.THREAD_SWITCH, "thrsw", False, False, True, None, "thread switch (not last)"),
    SignalInfo(_S.PROGRAM_END, "thrend", False, True, False, None, "program end (thread end)"),
    SignalInfo(_S.WAIT_SCOREBOARD, "sbwait", False, False, False, None, "wait for scoreboard"),
    SignalInfo(_S.SCOREBOARD_UNLOCK, "sbdone", False, False, False, None, "scoreboard unlock"),
    SignalInfo(_S.LAST_THREAD_SWITCH, "lthrsw", False, False, True, None, "last thread switch"),
    SignalInfo(_S.LOAD_COVERAGE, "loadcv", True, False, False, "tlb_read", "coverage load from tile buffer to r4"),
    SignalInfo(_S.LOAD_COLOR, "loadc", True, False, False, "tlb_read", "color load from tile buffer to r4"),
    SignalInfo(_S.LOAD_COLOR_END, "ldcend", True, True, False, "tlb_read", "color load and program end"),
    SignalInfo(_S.LOAD_TMU0, "ldtmu0", True, False, False, "tmu_read", "load data from TMU0 to r4"),
    SignalInfo(_S.LOAD_TMU1, "ldtmu1", True, False, False, "tmu_read", "load data from TMU1 to r4"),
    SignalInfo(_S.LOAD_ALPHA_MASK, "loadam", True, False, False, "tlb_read", "alpha-mask load from tile buffer to r4"),
    SignalInfo(_S.SMALL_IMM, "", False, False, False, None, "ALU instruction with small immediate / rotation"),
    SignalInfo(_S.LOAD_IMM, "", False, False, False, None, "load immediate or semaphore instruction"),
    SignalInfo(_S.BRANCH, "", False, False, False, None, "branch instruction"),
)}

SIGNALS_BY_TEXT: Dict[str, Signal] = {i.text: i.signal for i in SIGNALS.values() if i.text}
# Signals that may accompany an ALU operation (everything but the format selectors and NONE).
ALU_SIGNALS = frozenset(s for s in Signal if s <= Signal.LOAD_ALPHA_MASK and s is not Signal.NONE)


class Cond(enum.IntEnum):
    """Write condition of one ALU (cond_add / cond_mul)."""

    NEVER = 0
    ALWAYS = 1
    ZS = 2  # Z set
    ZC = 3  # Z clear
    NS = 4  # N set
    NC = 5  # N clear
    CS = 6  # C set
    CC = 7  # C clear


COND_TEXT: Dict[Cond, str] = {
    Cond.NEVER: "never", Cond.ALWAYS: "always", Cond.ZS: "zs", Cond.ZC: "zc",
    Cond.NS: "ns", Cond.NC: "nc", Cond.CS: "cs", Cond.CC: "cc",
}
COND_ALIASES: Dict[str, Cond] = {
    # vc4asm's spellings (doc/extensions.html, "Conditional assignment"): nc is N clear there too.
    "ifz": Cond.ZS, "ifzs": Cond.ZS, "ifnz": Cond.ZC, "ifzc": Cond.ZC,
    "ifn": Cond.NS, "ifns": Cond.NS, "ifnn": Cond.NC, "ifnc": Cond.NC,
    "ifc": Cond.CS, "ifcs": Cond.CS, "ifcc": Cond.CC,
}
COND_BY_TEXT: Dict[str, Cond] = {**{v: k for k, v in COND_TEXT.items()}, **COND_ALIASES}


class BranchCond(enum.IntEnum):
    """cond_br of a branch word: all/any of the 16 elements' flags (Table 11)."""

    ALL_ZS = 0
    ALL_ZC = 1
    ANY_ZS = 2
    ANY_ZC = 3
    ALL_NS = 4
    ALL_NC = 5
    ANY_NS = 6
    ANY_NC = 7
    ALL_CS = 8
    ALL_CC = 9
    ANY_CS = 10
    ANY_CC = 11
    # 12-14 reserved
    ALWAYS = 15


BRANCH_COND_TEXT: Dict[BranchCond, str] = {
    BranchCond.ALL_ZS: "allz", BranchCond.ALL_ZC: "allnz",
    BranchCond.ANY_ZS: "anyz", BranchCond.ANY_ZC: "anynz",
    BranchCond.ALL_NS: "alln", BranchCond.ALL_NC: "allnn",
    BranchCond.ANY_NS: "anyn", BranchCond.ANY_NC: "anynn",
    BranchCond.ALL_CS: "allc", BranchCond.ALL_CC: "allnc",
    BranchCond.ANY_CS: "anyc", BranchCond.ANY_CC: "anync",
    BranchCond.ALWAYS: "always",
}
BRANCH_COND_BY_TEXT: Dict[str, BranchCond] = {v: k for k, v in BRANCH_COND_TEXT.items()}
RESERVED_BRANCH_CONDS = frozenset({12, 13, 14})

# (flag, all?, set?) for each condition: flag index 0=Z, 1=N, 2=C.  Used by the emulator.
BRANCH_COND_LOGIC: Dict[BranchCond, tuple[int, bool, bool]] = {
    c: (int(c) >> 2, (int(c) & 2) == 0, (int(c) & 1) == 0)
    for c in BranchCond if c is not BranchCond.ALWAYS
}


class Mux(enum.IntEnum):
    """ALU input mux (add_a, add_b, mul_a, mul_b fields)."""

    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    R5 = 5
    A = 6  # value read from regfile-A space (raddr_a)
    B = 7  # value read from regfile-B space (raddr_b) or the small immediate


MUX_ACCUMULATORS = (Mux.R0, Mux.R1, Mux.R2, Mux.R3, Mux.R4, Mux.R5)
