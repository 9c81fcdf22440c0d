"""What a job reports: findings (rule violations with context) and the run report.

``describe_event`` turns one raw event of the compiled loop (rule code + detail
integers, layout.py) into a sentence; ``ADVICE`` says what to do about each rule.
The V3D (v3d.py) adds where it happened: QPU, thread, PC, disassembly and the
kernel source line of a registered Program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from qpu.errors import SourceLocation
from qpu.isa.registers import REGISTERS, Space
from qpu.isa.rules import RULES

from . import layout as L

ADVICE: Dict[str, str] = {
    "regfile-read-after-write": "put one instruction between the write and the read, or pass the value "
                                "through an accumulator (r0-r3), which has no such delay",
    "r4-read-after-sfu": "read r4 no earlier than the third instruction after the SFU write (two instructions "
                         "in between)",
    "r4-write-after-sfu": "leave two instructions after an SFU write before the next SFU write or ldtmu",
    "rotate-after-r5-write": "put one instruction between the write of r5 and the rotation by r5",
    "rotate-after-acc-write": "put one instruction between the write of the accumulator and its rotation, or "
                              "make the rotation conditional so no lane receives data from a higher quad",
    "ldtmu-without-request": "write tmu0_s/tmu1_s (one request per ldtmu) before the ldtmu: on a Pi the QPU "
                             "waits for ever",
    "tmu-fifo-overflow": "read results with ldtmu before issuing more requests (at most 8 per TMU, 4 per thread "
                         "with two threads)",
    "tmu-fifo-unreliable": "keep at most 4 TMU requests outstanding (the addendum found more unreliable)",
    "vpm-read-without-setup": "write a VPM read setup (vr_setup) asking for exactly the vectors you read",
    "vpm-write-without-setup": "write a VPM write setup (vw_setup) before writing vpm",
    "vpm-read-setup-queue": "read the previous setup's vectors until at most one is left before writing the next "
                            "read setup: the hardware ignores it otherwise",
    "vpm-reads-left": "read every vector a VPM read setup asked for before the program ends",
    "dma-load-busy": "read vr_wait before starting the next DMA load if you rely on it having finished",
    "dma-store-busy": "read vw_wait before starting the next DMA store if you rely on it having finished",
    "vpm-used-before-dma-wait": "read vr_wait / vw_wait (the issuing QPU) and synchronise before touching "
                                "VPM rows that a DMA is still transferring",
    "vpm-setup-reserved": "check the setup word's ID bits (Tables 32-37): this value selects no format",
    "thread-end-io": "move uniform, VPM and DMA accesses before the program-end instruction and its two "
                     "delay slots",
    "memory-out-of-bounds": "check the address arithmetic: the access is outside every allocated and locked "
                            "GPU memory block",
    "memory-misaligned": "use addresses that are multiples of 4 (TMU, uniforms, DMA) or 8 (code)",
    "undefined-value": "write the register (or VPM word) before its value is used here; a register's "
                       "initial contents are whatever the last program left",
    "uniform-after-address-write": "leave two instructions that read no uniform after writing unif_addr",
    "host-int-zero": "write a non-zero value to host_int",
    "reserved-encoding": "this word is not a valid instruction: check the assembler, or whether the PC ran "
                         "into data",
    "breakpoint": "remove the bkpt signal, or ignore this warning",
    "unsupported": "general-purpose programs cannot use this 3D-pipeline feature; the emulator does not model it",
    "branch-in-delay-slot": "keep at least two non-branch instructions between two branches",
    "deadlock": "make sure every semaphore acquire has a matching release on another QPU, and release the "
                "mutex before waiting on others",
    "timeout": "check loop exit conditions; or raise the timeout if the job is just long",
}

_UD_WHAT = {
    L.UD_TMU_ADDRESS: "a TMU address (tmu_s lane {d1})",
    L.UD_DMA_ADDRESS: "a DMA address (element 0 of vr_addr/vw_addr)",
    L.UD_SETUP: "a VPM/DMA setup (element 0 of vr_setup/vw_setup, or a DMA started without its setup)",
    L.UD_UNIF_ADDR: "unif_addr (element 0)",
    L.UD_BRANCH_COND: "a branch condition ({d1} lanes have undefined flags)",
    L.UD_BRANCH_TARGET: "a branch target (element 15 of the register)",
    L.UD_VPM_STORE: "memory through a DMA store (VPM word {d1} never written)",
    L.UD_NOSWAP: "tmu_noswap (element 0)",
    L.UD_HOSTINT: "host_int (element 0)",
}

_US_WHAT = {
    L.US_VARYING: "a varyings read (fragment shaders only)",
    L.US_FRAGMENT_IO: "a fragment-shader register (pixel coordinates, multisample/revolution flags, quad_x/y)",
    L.US_TEXTURE: "a texture lookup (tmu t/r/b registers): only direct-address lookups via tmu_s are modelled",
    L.US_TLB: "a tile-buffer write",
    L.US_SIGNAL: "signal {d1} (scoreboard / tile-buffer loads)",
    L.US_DMA_WIDTH: "an 8- or 16-bit VPM DMA (setup {d1:#010x}): only 32-bit DMA is modelled",
}

_WHERE = {-1: "DMA", -2: "instruction fetch", -3: "uniform read"}

_VPM_USE = {0: "a QPU VPM read", 1: "a QPU VPM write", 2: "a DMA load into the VPM", 3: "a DMA store from the VPM"}


def _reg_name(phys: int) -> str:
    space = Space.READ_A if phys < 32 else Space.READ_B
    return REGISTERS[space][phys % 32].text


def describe_event(rule: str, d0: int, d1: int, d2: int) -> str:
    """One sentence on what happened, from the loop's detail integers."""
    if rule == "regfile-read-after-write":
        return f"{_reg_name(d0)} is read right after the previous instruction wrote it ({d1} lanes): " \
               "the read returns the old value"
    if rule == "r4-read-after-sfu":
        return f"r4 is read {d0} instruction(s) before the SFU result arrives"
    if rule == "r4-write-after-sfu":
        what = "an SFU write" if d0 == 1 else "a TMU load (ldtmu)"
        return f"{what} within two instructions of the previous SFU write clobbers r4"
    if rule == "rotate-after-r5-write":
        return "a rotation by r5 right after an instruction that wrote r5 uses the old rotation amount"
    if rule == "rotate-after-acc-write":
        return f"r{d0} is rotated right after being written: element {d2} receives element {d1} from a higher " \
               "quad, which is not yet written"
    if rule == "ldtmu-without-request":
        return f"ldtmu{d0} with no outstanding TMU{d0} request"
    if rule in ("tmu-fifo-overflow", "tmu-fifo-unreliable"):
        return f"{d0} TMU{d2} requests outstanding (limit {d1})"
    if rule == "vpm-read-without-setup":
        return "vpm is read but no VPM read setup has vectors left"
    if rule == "vpm-write-without-setup":
        return "vpm is written but no VPM write setup was made"
    if rule == "vpm-read-setup-queue":
        return f"a VPM read setup is written while {d0} vectors of earlier setups are unread: it is ignored"
    if rule == "vpm-reads-left":
        return f"the program ends with {d0} VPM vector(s) set up but not read"
    if rule == "dma-load-busy":
        return f"a DMA load starts while this QPU's previous one runs (until cycle {d0}): it is queued"
    if rule == "dma-store-busy":
        return f"a DMA store starts while this QPU's previous one runs (until cycle {d0}): it is queued"
    if rule == "vpm-used-before-dma-wait":
        row, col = divmod(d0, 16)
        return f"{_VPM_USE.get(d2, 'a VPM access')} touches VPM word (Y={row}, X={col}) while a DMA is still " \
               f"transferring it (at least until cycle {d1})"
    if rule == "vpm-setup-reserved":
        reg = "vr_setup" if d1 == 0 else "vw_setup"
        return f"{reg} value {d0 & 0xFFFFFFFF:#010x} selects no setup format"
    if rule == "thread-end-io":
        return "uniform, VPM or DMA access in the program-end instruction or its two delay slots"
    if rule == "memory-out-of-bounds":
        where = _WHERE.get(d1, f"TMU lane {d1}")
        return f"{where} at bus address {d0 & 0xFFFFFFFF:#010x} is outside allocated, locked GPU memory" + \
               (f" ({d2} accesses)" if d2 > 1 else "")
    if rule == "memory-misaligned":
        where = _WHERE.get(d1, f"TMU lane {d1}")
        return f"{where} at bus address {d0 & 0xFFFFFFFF:#010x} is not a multiple of {d2}"
    if rule == "undefined-value":
        what = _UD_WHAT.get(d0, "a sensitive register").format(d1=d1, d2=d2)
        return f"an undefined value (never written) reaches {what}"
    if rule == "uniform-after-address-write":
        return f"a uniform is read {d0} instruction(s) after unif_addr was written (needs 2 in between)"
    if rule == "host-int-zero":
        return "host_int is written with 0: no interrupt is raised"
    if rule == "reserved-encoding":
        from .predecode import RESERVED_REASONS
        return f"the word uses a {RESERVED_REASONS.get(d0, 'reserved encoding')}"
    if rule == "breakpoint":
        return "software breakpoint signal"
    if rule == "unsupported":
        return "the program uses " + _US_WHAT.get(d0, "an unsupported feature").format(d1=d1)
    if rule == "branch-in-delay-slot":
        return "a branch in the first two delay slots of another branch: on hardware no branch is taken or " \
               "the thread crashes; the emulator ignores this branch"
    return RULES[rule].summary if rule in RULES else rule


@dataclass
class Finding:
    """One rule violation found while a job ran."""

    rule: str
    level: str                     # "error" or "warning"
    message: str                   # the full, formatted message
    qpu: int = -1
    thread: int = 0
    pc: int = 0                    # bus address of the instruction
    index: int = -1                # instruction index in its program (-1 unknown)
    program: str = ""
    disassembly: str = ""
    location: Optional[SourceLocation] = None
    cycle: int = 0
    count: int = 1                 # how many times it happened at this PC
    details: Tuple[int, int, int] = (0, 0, 0)

    def __str__(self) -> str:
        return self.message


@dataclass
class JobReport:
    """Result of one job (``V3D.execute``)."""

    instructions: int = 0                      # issued instructions, all QPUs
    cycles: int = 0                            # job length in V3D clocks (max over QPUs)
    seconds: float = 0.0                       # cycles / clock_hz
    clock_hz: int = 250_000_000
    per_qpu: List[dict] = field(default_factory=list)
    stalls: Dict[str, int] = field(default_factory=dict)    # cause -> cycles, all QPUs
    hazards: List[Finding] = field(default_factory=list)    # findings (warnings, or everything if lenient)
    host_interrupts: int = 0
    profile: Dict[int, Tuple[int, int]] = field(default_factory=dict)  # bus address -> (executions, stalls)
    completed: bool = True                     # False: deadlock or timeout (lenient mode)
    semaphores: List[int] = field(default_factory=list)   # semaphore counts after the job
    dual_issue_rate: float = 0.0               # ALU instructions with both an add and a mul op / ALU instructions
    # V3D performance counters the model computes, under the names of qpu.runtime.counters
    # (guide Table 82, sources 13-29): the same names a run on a Pi reports
    counters: Dict[str, int] = field(default_factory=dict)
    memory: Dict[str, int] = field(default_factory=dict)   # cache and SDRAM traffic beyond the counters
    trace: Optional[Any] = None                # qpu.emulator.trace.Trace when the job was traced

    @property
    def findings(self) -> List[Finding]:
        return self.hazards

    @property
    def stall_cycles(self) -> int:
        return sum(self.stalls.values())

    def write_trace(self, path: Any) -> None:
        """Write the job's timeline as Chrome Trace Event JSON (run with ``execute(..., trace=True)``)."""
        if self.trace is None:
            raise ValueError("this job was not traced: run it with V3D.execute(..., trace=True)")
        self.trace.write(path)

    def hot_spots(self, n: int = 10) -> List[Tuple[int, int, int]]:
        """The ``n`` instruction addresses with the most cycles (executions x 4 + stalls):
        (bus address, executions, stall cycles), hottest first."""
        rows = sorted(self.profile.items(), key=lambda kv: -(4 * kv[1][0] + kv[1][1]))
        return [(addr, ex, st) for addr, (ex, st) in rows[:n]]

    def summary(self) -> str:
        lines = [f"{self.instructions} instructions, {self.cycles} cycles = {self.seconds * 1e6:.2f} us "
                 f"at {self.clock_hz / 1e6:.0f} MHz, {self.host_interrupts} host interrupt(s)"]
        if self.instructions:
            lines.append(f"dual-issue rate {self.dual_issue_rate:.1%}")
        if any(self.stalls.values()):
            lines.append("stalls: " + ", ".join(f"{k} {v}" for k, v in self.stalls.items() if v))
        if self.counters:
            lines.append("counters: " + ", ".join(f"{k} {v}" for k, v in self.counters.items() if v))
        for f in self.hazards:
            lines.append(f"{f.level}: [{f.rule}] x{f.count} {f.message.splitlines()[0]}")
        return "\n".join(lines)
