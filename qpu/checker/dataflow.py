"""Counting rules as a data-flow analysis over the graph: outstanding TMU requests, VPM reads
set up, VPM write set up; and the constants reaching vr_setup / vw_setup writes."""


from __future__ import annotations

import functools
import operator
from collections import deque
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from ..isa.ops import MOV_ADD, MOV_MUL
from ..isa.registers import Unit
from ..isa.rules import Level
from ..isa.signals import SIGNALS, Cond, Mux
from ..isa.small_imm import SMALL_IMMS
from ..isa.vpm import SetupFormat, decode_setup, setup_format_of
from .facts import _TMU_S_ADDRS, _TMU_UNITS, _UNIF_ADDR, _VPM_ADDR, _Ins, _Write
from .graph import _COORDS, _NO_COORDS, _TMU_CAP, _TOP, _VPM_CAP, _VW_NOT_SET, _VW_SET, _counts, _dec, _inc, _State
from .neighbour_rules import NeighbourRules


class DataflowRules(NeighbourRules):
    """Counting rules over all paths, and constant tracking for setup writes."""

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

