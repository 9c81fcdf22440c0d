"""The checker's control-flow graph over (instruction, pending delay-slot events), and the
shared state and reporting helpers of the rule passes."""


from __future__ import annotations

from collections import deque
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from ..disassembler import format_instruction
from ..encoding import decode
from ..isa.rules import RULES, Level
from ..isa.signals import BranchCond
from ..program import Program
from .facts import _Ins
from .report import Finding

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



class CheckerBase:
    """The decoded program, its control-flow graph, and finding bookkeeping."""

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

