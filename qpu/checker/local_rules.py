"""Rules about one instruction at a time (peripherals, destinations, branches, thread end...)."""


from __future__ import annotations

from typing import List

from ..isa.packing import PACK_MUL_MODES
from ..isa.registers import R5_WRITE_ADDR, STALLING_WRITE_UNITS, Unit
from ..isa.signals import SIGNALS, Cond, Mux, Signal
from ..isa.small_imm import SMALL_IMMS
from .facts import (
    _CONDITIONAL,
    _MUTEX_ADDR,
    _TMU_S_ADDRS,
    _TMU_UNITS,
    _UNIF_ADDR,
    _VPM_ADDR,
    _VPM_UNITS,
    _cond_text,
    _Ins,
    _opposite,
)
from .graph import CheckerBase


class LocalRules(CheckerBase):
    """Rules checked on each instruction alone."""

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

