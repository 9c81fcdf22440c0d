"""The hardware's programming rules, each with a stable id, a level and its source.

The static checker (``qpu.check``) and the emulator's run-time checks report
findings under these ids, so a rule found by either means the same thing.  A
rule's ``where`` says who can detect it: ``static`` (from the words alone),
``runtime`` (needs values: addresses, FIFO contents) or ``both``.

Citations: "guide p.N" is the Broadcom VideoCore IV 3D Architecture Reference
Guide (2013-09-16); "addendum" is the vc4asm author's hardware-tested addendum
(maazl/vc4asm doc/VideoCoreIV-addendum.html), which wins where they disagree.
"""

from __future__ import annotations

import enum
from typing import Dict, NamedTuple


class Level(enum.Enum):
    ERROR = "error"      # the hardware misbehaves (wrong data, hang, crash)
    WARNING = "warning"  # legal but almost certainly not what was meant, or unreliable
    INFO = "info"        # not a problem: a note on what a check could not follow


class Rule(NamedTuple):
    id: str
    level: Level
    where: str      # "static", "runtime" or "both"
    summary: str
    citation: str


_E, _W, _I = Level.ERROR, Level.WARNING, Level.INFO

RULES: Dict[str, Rule] = {r.id: r for r in (
    # --- register file and accumulator timing -------------------------------------------
    Rule("regfile-read-after-write", _E, "both",
         "an instruction reads a physical regfile A/B location written by the previous instruction "
         "(no forwarding: it reads the old value)",
         "guide p.18 and p.37 (Summary of Instruction Restrictions)"),
    Rule("r4-read-after-sfu", _E, "both",
         "r4 is read in the two instructions after an SFU write (the result arrives in the third)",
         "guide p.23 and p.37"),
    Rule("r4-write-after-sfu", _E, "both",
         "another r4 write (SFU write, TMU or TLB load signal) in the two instructions after an SFU write",
         "guide p.37"),
    Rule("rotate-after-r5-write", _E, "both",
         "a vector rotation by r5 immediately after an instruction that writes r5",
         "guide p.37"),
    Rule("rotate-after-acc-write", _E, "both",
         "a vector rotation of an accumulator written by the previous instruction",
         "guide p.37; the addendum finds it only bites when data moves to a lower quad"),
    Rule("rotate-not-accumulators", _W, "both",
         "a mul-output rotation with an operand that is not r0-r3: the rotation only happens within each "
         "quad (by the low two bits of the amount)",
         "guide p.20; addendum (Horizontal vector rotation)"),
    # --- one peripheral per instruction ---------------------------------------------------
    Rule("two-peripherals", _E, "static",
         "more than one of: TMU write, TMU read, TLB write, TLB read, SFU write, mutex acquire, semaphore "
         "in one instruction",
         "guide p.25 and p.37"),
    Rule("same-destination-both-alus", _E, "static",
         "both ALUs write the same I/O register, or the same accumulator under conditions that can both "
         "hold (undefined; opposite conditions on an accumulator work, as Broadcom's GPU_FFT shaders do)",
         "guide p.19; addendum (No conditional write to peripheral registers)"),
    Rule("vpm-concurrent-access", _W, "static",
         "VPM access combined with another VPM access (other than one read plus one write) or with a "
         "ldtmu signal in one instruction: unreliable",
         "addendum (Concurrent access to VPM registers)"),
    Rule("conditional-peripheral-write", _W, "static",
         "conditional write to tmu*_s or vpm: the FIFO is pushed even where the condition is false",
         "addendum (No conditional write to peripheral registers)"),
    Rule("mul-pack-io", _E, "static",
         "a mul pack mode writing a single byte cannot target an I/O register",
         "addendum (MUL ALU pack modes and I/O register targets)"),
    Rule("semaphore-stalling-write", _E, "static",
         "a semaphore instruction writes the TLB, a TMU or the SFU",
         "guide p.33"),
    # --- thread end -----------------------------------------------------------------------
    Rule("thread-end-regfile-write", _E, "static",
         "the program-end instruction writes physical regfile A or B",
         "guide p.22 and p.37"),
    Rule("thread-end-reg14", _E, "static",
         "the program-end instruction or its two delay slots read or write regfile location 14",
         "guide p.22 and p.37"),
    Rule("thread-end-io", _E, "both",
         "the program-end instruction or its two delay slots access uniforms, varyings, the VPM or the VCD/VDW",
         "guide p.22 and p.37"),
    Rule("thread-end-tlb-z", _E, "static",
         "the last instruction of a program writes TLB Z",
         "guide p.37"),
    Rule("thread-end-delay-slots", _E, "static",
         "the program ends (runs out of instructions) before the two delay slots after program end, or a "
         "branch / another program end is in them",
         "guide p.21 (two delay-slot instructions follow program end)"),
    Rule("missing-program-end", _E, "static",
         "a path through the program runs past its last instruction without a program end",
         "guide p.21"),
    # --- tile buffer (fragment shaders) -------------------------------------------------------
    Rule("ms-flags-after-tlb-z", _E, "static",
         "the multisample mask (ms_flags) is read in the two instructions after a TLB Z write",
         "guide p.37"),
    Rule("scoreboard-wait-too-early", _E, "static",
         "a scoreboard wait (sbwait, or the implicit one of the first tile-buffer access) in the first two "
         "instructions of a program",
         "guide p.37"),
    # --- branches --------------------------------------------------------------------------
    Rule("branch-in-delay-slot", _E, "static",
         "a branch within two instructions of another branch (fewer than two non-branch instructions "
         "between them): no branch is taken or the thread crashes",
         "addendum (Distance of branch instructions)"),
    Rule("branch-implicit-setf", _W, "static",
         "a branch with an odd raddr_a also sets the flags (raddr_a bit 0 is the sf bit)",
         "addendum (Branch Instruction - implicit set flags)"),
    Rule("branch-target-outside", _W, "static",
         "a relative branch target lies outside the program",
         "guide p.34"),
    Rule("branch-target-unknown", _I, "static",
         "a branch whose target depends on a register or on the program's load address: the static checker "
         "does not follow it",
         "guide p.34 (branch target computation)"),
    Rule("thread-switch-delay-slots", _W, "static",
         "a branch or program end in the two delay slots of a thread switch",
         "guide p.21"),
    # --- uniforms, TMU, SFU ------------------------------------------------------------------
    Rule("uniform-after-address-write", _E, "both",
         "a uniform is read within two instructions of writing unif_addr",
         "guide p.22"),
    Rule("tmu-write-reads-uniform", _W, "static",
         "an instruction writes a TMU texture register and reads a uniform (texture lookups read their "
         "config uniform themselves)",
         "guide p.23"),
    Rule("tmu-noswap-too-late", _E, "static",
         "tmu_noswap is written fewer than three instructions before a TMU write",
         "guide p.23 and p.37"),
    Rule("ldtmu-without-request", _E, "both",
         "a TMU load signal with no outstanding request on that TMU (the QPU hangs)",
         "guide p.39-40 (TFREQ/TFRCV FIFOs)"),
    Rule("tmu-fifo-overflow", _E, "both",
         "more than 8 outstanding direct TMU requests per QPU and TMU (4 per thread when threaded)",
         "guide p.39-40"),
    Rule("tmu-fifo-unreliable", _W, "both",
         "more than 4 outstanding TMU requests: found unreliable on hardware",
         "addendum (Section 4: TMU FIFO)"),
    # --- VPM and DMA ---------------------------------------------------------------------------
    Rule("vpm-read-without-setup", _E, "both",
         "a VPM read with no VPM read set up (extra reads return undefined data)",
         "guide p.56"),
    Rule("vpm-write-without-setup", _E, "both",
         "a VPM write with no VPM write setup since the program started",
         "guide p.55"),
    Rule("vpm-read-setup-queue", _E, "both",
         "a VPM read setup written while a previous read still has more than one vector outstanding "
         "(the new setup is ignored)",
         "addendum (Section 7: QPU Reading and Writing of VPM); guide p.56 says two can queue"),
    Rule("vpm-reads-left", _E, "runtime",
         "the program ends with VPM reads set up but not consumed",
         "guide p.24 and p.56"),
    # The guide says a new DMA "cannot be started until the previous one is complete", but
    # programs tested on hardware start several back to back and rely on the engine queueing
    # them (GPU_FFT's shaders for log2 N > 17 issue 16-32 VDW stores in a row; py-videocore's
    # tests/test_dma.py starts 4 VCD loads before one wait): a warning, not an error.
    Rule("dma-load-busy", _W, "runtime",
         "a DMA load is started while this QPU's previous one still runs, without waiting: it queues",
         "guide p.56; hardware-tested programs rely on queueing (py-videocore tests/test_dma.py)"),
    Rule("dma-store-busy", _W, "runtime",
         "a DMA store is started while this QPU's previous one still runs, without waiting: it queues",
         "guide p.56; hardware-tested programs rely on queueing (GPU_FFT gpu_fft_ex.qinc)"),
    Rule("vpm-used-before-dma-wait", _E, "runtime",
         "VPM rows of a running DMA are read or written before the DMA is waited for",
         "guide p.56"),
    Rule("vpm-setup-reserved", _E, "runtime",
         "a value written to vr_setup/vw_setup matches no setup format",
         "guide p.57-60"),
    # --- memory and values ----------------------------------------------------------------------
    Rule("memory-out-of-bounds", _E, "runtime",
         "a TMU, DMA or uniform access outside allocated GPU memory",
         "guide p.41 (TMU addresses), p.56 (DMA)"),
    Rule("memory-misaligned", _E, "runtime",
         "a memory access whose address is not aligned as the unit requires",
         "guide p.41 (bottom two bits of a TMU address ignored), p.58"),
    Rule("undefined-value", _E, "runtime",
         "a value never written (register, r4, VPM word), or an accumulator or flag not written since a "
         "thread switch, reaches memory, an address, a setup register or a branch decision",
         "guide p.18 (registers are not initialised); p.21 (accumulators and flags are not preserved "
         "across thread switches)"),
    Rule("host-int-zero", _W, "runtime",
         "host_int written with zero: no interrupt is raised",
         "addendum (Host Interrupt)"),
    # --- synchronisation and whole jobs ----------------------------------------------------------
    Rule("deadlock", _E, "runtime",
         "every running QPU waits on a semaphore, the mutex or a FIFO that nobody can release",
         "guide p.22 and p.33"),
    Rule("timeout", _E, "runtime",
         "the job did not finish within its timeout",
         "firmware execute_qpu timeout"),
    Rule("reserved-encoding", _E, "both",
         "the word uses an encoding the guide reserves (opcode, branch condition, pack mode, load-immediate mode)",
         "guide p.29-36"),
    Rule("unsupported", _E, "runtime",
         "the program uses a V3D feature the emulator does not model (texture lookups, tile buffer, "
         "varyings, scoreboard, 8/16-bit VPM DMA): general-purpose programs do not need them",
         "guide p.22-24 and p.39-41 (3D-pipeline interfaces); docs/emulator.md (what is not modelled)"),
    Rule("breakpoint", _W, "both",
         "a software breakpoint signal",
         "guide p.29"),
)}


def rule(rule_id: str) -> Rule:
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule id {rule_id!r}") from None
