"""Rules along control-flow edges: read after write, r4 after SFU, rotations, delay slots,
uniforms after unif_addr, tmu_noswap distance."""


from __future__ import annotations

from typing import Dict, Optional, Tuple

from ..isa.registers import Unit
from ..isa.signals import SIGNALS, Mux, Signal
from .facts import (
    _MS_FLAGS_READ,
    _REG14,
    _THREAD_END_IO_UNITS,
    _TLB_Z_ADDR,
    _TMU_NOSWAP_ADDR,
    _TMU_UNITS,
    _UNIF_ADDR,
    _UNIF_ADDR_WRITE,
    _Ins,
    _Write,
)
from .local_rules import LocalRules


class NeighbourRules(LocalRules):
    """Rules checked along the graph's edges (what runs 1-3 instructions before)."""

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

