"""The V3D as the firmware's ``execute_qpu`` drives it: 12 QPUs running jobs from GPU memory.

A job is a control list in GPU memory of ``num_qpus`` pairs of uint32 (uniforms bus
address, code bus address), as the mailbox "execute QPU" call and GPU_FFT's
``gpu_fft_base.c`` lay it out.  Program ``i`` runs on QPU ``i`` (with two threads
per QPU: QPU ``i // 2``, thread ``i % 2``).  The real QPU scheduler may pick other
QPUs; programs only see the difference through ``qpu_num`` and timing.

The job runs until every program has executed its program end (and two delay
slots).  State that outlives a job on the hardware outlives it here too: the 16
semaphores, the mutex and the VPM contents.  Registers, accumulators and flags of
a new job are undefined (whatever earlier programs left).

Usage::

    v3d = V3D(memory)                       # strict: rule violations raise
    v3d.register_program(code_bus, program) # optional: source lines in messages
    report = v3d.execute(num_qpus, control_bus, timeout_ms=10000)
"""

from __future__ import annotations

import hashlib
import time
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from qpu.disassembler import disassemble_word
from qpu.isa.ops import MOV_ADD
from qpu.isa.rules import RULES, Level
from qpu.isa.vpm import LAYOUTS, SetupFormat
from qpu.program import Program

from . import layout as L
from .core import run_loop
from .errors import DeadlockError, EmulatorError, EmulatorWarning, JobTimeoutError, RuleViolation
from .memory import BUS_ALIAS_MASK, PAGE_SHIFT, PAGE_SIZE, GPUMemory
from .predecode import predecode
from .report import ADVICE, Finding, JobReport, describe_event
from .timing import DEFAULT_TIMING, TimingParameters

_RULE_LEVEL = np.array([1 if RULES[r].level is Level.ERROR else 0 for r in L.CORE_RULES], dtype=np.int64)

# Setup-word field and selector tables for the loop, read from qpu/isa/vpm.py.
_SETUP_FIELDS = np.zeros((len(L.SETUP_FIELDS), 3), dtype=np.int64)
for _k, (_fmt, _name) in enumerate(L.SETUP_FIELDS):
    _f = {f.name: f for f in LAYOUTS[SetupFormat(_fmt)].fields}[_name]
    _SETUP_FIELDS[_k] = (_f.lo, (1 << _f.width) - 1, _f.zero_means or 0)
_SETUP_IDS = np.zeros((len(L.SETUP_IDS), 3), dtype=np.int64)
for _k, _fmt in enumerate(L.SETUP_IDS):
    _SETUP_IDS[_k] = LAYOUTS[SetupFormat(_fmt)].id_field

_STEPS_PER_CALL = 1 << 22
# Pre-decoded code pages kept between jobs (about 200 KB each).  Pages that hold data next to
# code change between jobs and would otherwise pile up.
_PAGE_CACHE_SIZE = 64


class _CodeTable:
    """Pre-decoded code pages for one job, fetched on demand and cached across jobs."""

    def __init__(self, memory: GPUMemory, cache: Dict[Tuple[int, bytes], np.ndarray]) -> None:
        self.memory = memory
        self.cache = cache
        self.page_map = np.full(memory.size >> PAGE_SHIFT, -1, dtype=np.int64)
        self.code = np.zeros((0, L.NCODE), dtype=np.int64)
        self.page_of_row: List[int] = []   # page index per 512-row block

    def add_page(self, page: int) -> None:
        if self.page_map[page] >= 0:
            return
        off = page << PAGE_SHIFT
        raw = bytes(self.memory.data[off:off + PAGE_SIZE])
        key = (page, hashlib.blake2b(raw, digest_size=16).digest())
        rows = self.cache.pop(key, None)
        if rows is None:
            rows = predecode(np.frombuffer(raw, dtype="<u8"))
            while len(self.cache) >= _PAGE_CACHE_SIZE:     # least recently used first
                self.cache.pop(next(iter(self.cache)))
        self.cache[key] = rows
        self.page_map[page] = len(self.code)
        block = np.zeros((len(rows), L.NCODE), dtype=np.int64)
        block[:, :L.NCOL] = rows
        self.code = np.ascontiguousarray(np.concatenate([self.code, block]))
        self.page_of_row.append(page)

    def phys_of_row(self, row: int) -> int:
        return self.memory.phys_base + (self.page_of_row[row >> 9] << PAGE_SHIFT) + ((row & 511) << 3)


class V3D:
    """The emulated V3D: 12 QPUs in 3 slices of 4, with their shared units."""

    def __init__(self, memory: GPUMemory, *, strict: bool = True, clock_hz: Optional[int] = None,
                 timing: Optional[TimingParameters] = None, vpm_user_rows: int = 64,
                 max_wall_seconds: Optional[float] = None) -> None:
        if not 1 <= vpm_user_rows <= 64:
            raise ValueError("vpm_user_rows must be 1..64: user programs address the first 64 VPM rows "
                             "(guide p.53, errata HW-2253)")
        self.memory = memory
        self.strict = strict
        self.timing = timing if timing is not None else DEFAULT_TIMING
        self.clock_hz = int(clock_hz if clock_hz is not None else self.timing.clock_hz)
        self.vpm_user_rows = vpm_user_rows
        self.max_wall_seconds = max_wall_seconds
        self._programs: Dict[int, Program] = {}     # physical code address -> Program
        self._page_cache: Dict[Tuple[int, bytes], np.ndarray] = {}   # insertion order = LRU order
        self.reset()

    # -- persistent hardware state ------------------------------------------------------------

    def reset(self) -> None:
        """Reset semaphores, mutex and VPM contents (as after a V3D reset)."""
        self._gs = np.zeros(L.NGS, dtype=np.int64)
        self._gs[L.G_MUTEX] = -1
        self._vpm = np.zeros(L.VPM_WORDS, dtype=np.uint32)
        self._vpmd = np.zeros(L.VPM_WORDS, dtype=np.uint8)

    @property
    def semaphores(self) -> List[int]:
        return [int(v) for v in self._gs[L.G_SEM:L.G_SEM + 16]]

    def register_program(self, code_bus_address: int, program: Program) -> None:
        """Let messages about code at this address show the kernel's source lines and labels."""
        self._programs[int(code_bus_address) & ~BUS_ALIAS_MASK] = program

    # -- running a job -----------------------------------------------------------------------

    def execute(self, num_qpus: int, control_bus_address: int, timeout_ms: int = 10000, *,
                threads_per_qpu: int = 1) -> JobReport:
        """Run ``num_qpus`` programs from the control list; see the module docstring."""
        if threads_per_qpu not in (1, 2):
            raise EmulatorError(f"threads_per_qpu must be 1 or 2, not {threads_per_qpu}")
        max_programs = L.NUM_QPUS * threads_per_qpu
        if not 1 <= num_qpus <= max_programs:
            raise EmulatorError(f"num_qpus must be 1..{max_programs} with {threads_per_qpu} thread(s) per QPU, "
                                f"not {num_qpus}")
        mem = self.memory
        if control_bus_address & 3 or not mem.is_accessible(control_bus_address, 8 * num_qpus):
            raise EmulatorError(
                f"control list at bus address {control_bus_address:#010x} ({num_qpus} entries of 8 bytes) is not "
                "in allocated, locked GPU memory or not 4-byte aligned: lock the buffer and pass its bus address")
        ctl = mem.array(control_bus_address, (num_qpus, 2), np.uint32).copy()
        job = _Job(self, ctl, threads_per_qpu, timeout_ms)
        return job.run()


class _Job:
    """State and driver loop of one execute() call."""

    def __init__(self, v3d: V3D, ctl: np.ndarray, threads: int, timeout_ms: int) -> None:
        self.v3d = v3d
        self.ctl = ctl
        self.threads = threads
        self.timeout_ms = timeout_ms
        mem = v3d.memory
        self.table = _CodeTable(mem, v3d._page_cache)
        # the loop's state arrays (layout.py) and numpy views of their parts
        self.V = np.zeros((L.NV_ROWS, 16), dtype=np.uint32)
        self.D = np.zeros((L.ND_ROWS, 16), dtype=np.uint8)
        self.S = np.zeros(L.NI, dtype=np.int64)
        S = self.S
        self.qs = S[L.I_QS:L.I_QS + L.NUM_QPUS * L.NQS].reshape(L.NUM_QPUS, L.NQS)
        self.cs = S[L.I_CS:L.I_CS + L.NUM_CTX * L.NCS].reshape(L.NUM_CTX, L.NCS)
        self.gs = S[L.I_GS:L.I_GS + L.NGS]
        self.p = S[L.I_P:L.I_P + L.NPS]
        self.ev = S[L.I_EV:L.I_EV + L.MAX_EVENTS * L.EV_W].reshape(L.MAX_EVENTS, L.EV_W)
        self.stalls = S[L.I_STALL:L.I_STALL + L.NUM_QPUS * L.NCAUSES].reshape(L.NUM_QPUS, L.NCAUSES)
        S[L.I_SF:L.I_SF + _SETUP_FIELDS.size] = _SETUP_FIELDS.reshape(-1)
        S[L.I_SID:L.I_SID + _SETUP_IDS.size] = _SETUP_IDS.reshape(-1)
        S[L.I_RLEVEL:L.I_RLEVEL + len(_RULE_LEVEL)] = _RULE_LEVEL
        self.qs[:, L.Q_VDR_SETUP] = -1
        self.qs[:, L.Q_VDW_SETUP] = -1
        for col in (L.C_BR0_DUE, L.C_BR1_DUE, L.C_END_DUE, L.C_TSW_DUE, L.C_SFU_DUE, L.C_PW_AT, L.C_PW0, L.C_PW1,
                    L.C_PACC_AT, L.C_START, L.C_END, L.C_PROG):
            self.cs[:, col] = -1
        self.cs[:, L.C_UNIF_WRITE] = -100
        self.cs[:, L.C_BR_AT] = -100
        # hardware state that outlives jobs: semaphores, mutex, VPM contents
        self.gs[:] = v3d._gs
        self.gs[L.G_MUTEX] = -1    # a finished job holds no mutex
        for col in (L.G_VDR_FREE, L.G_VDW_FREE, L.G_HOSTINT, L.G_NEV, L.G_NEED_PAGE, L.G_RESCHED, L.G_STEPS,
                    L.G_STOP):
            self.gs[col] = 0
        self.gs[L.G_TMU_FREE:L.G_TMU_FREE + 6] = 0
        self.V[L.V_VPM:L.V_VPM + L.VPM_ROWS] = v3d._vpm.reshape(L.VPM_ROWS, 16)
        self.D[L.V_VPM:L.V_VPM + L.VPM_ROWS] = v3d._vpmd.reshape(L.VPM_ROWS, 16)
        self.p[L.P_PHYS_BASE] = mem.phys_base
        self.p[L.P_MEM_SIZE] = mem.size
        self.p[L.P_STRICT] = 1 if v3d.strict else 0
        self.p[L.P_THREADS] = threads
        self.p[L.P_MAX_CYCLES] = max(1, int(timeout_ms) * v3d.clock_hz // 1000)
        self.p[L.P_MAX_STEPS] = _STEPS_PER_CALL
        self.p[L.P_VPM_ROWS] = v3d.vpm_user_rows
        self.p[L.P_OR_OP] = MOV_ADD.code
        self.tp = v3d.timing.as_array()
        self.findings: Dict[Tuple[str, int, int], Finding] = {}
        self.order: List[Tuple[str, int, int]] = []
        # programs
        self.entries: List[Tuple[int, int, int]] = []   # (ctx, uniforms, code)
        for k, (unif, codeaddr) in enumerate(ctl):
            q, t = divmod(k, threads)
            c = 2 * q + t
            self.entries.append((c, int(unif), int(codeaddr)))
            self.cs[c, L.C_PC] = int(codeaddr)
            self.cs[c, L.C_UNIF] = int(unif)
            self.cs[c, L.C_PROG] = k
            self.cs[c, L.C_STATE] = L.CS_ACTIVE if t == 0 else L.CS_SUSPENDED
            if t == 0:
                self.cs[c, L.C_START] = 0
            self.qs[q, L.Q_STATUS] = L.QS_RUN
            off = (int(codeaddr) & ~BUS_ALIAS_MASK) - mem.phys_base
            if 0 <= off < mem.size and mem.page_state[off >> PAGE_SHIFT] == 2:
                self.table.add_page(off >> PAGE_SHIFT)

    def _save_persistent(self) -> None:
        v3d = self.v3d
        v3d._gs[:] = self.gs
        v3d._vpm[:] = self.V[L.V_VPM:L.V_VPM + L.VPM_ROWS].reshape(-1)
        v3d._vpmd[:] = self.D[L.V_VPM:L.V_VPM + L.VPM_ROWS].reshape(-1)

    # -- loop --------------------------------------------------------------------------------

    def run(self) -> JobReport:
        try:
            return self._run()
        finally:
            self._save_persistent()

    def _run(self) -> JobReport:
        v3d = self.v3d
        mem = v3d.memory
        t0 = time.monotonic()
        while True:
            t = self.table
            r = int(run_loop(t.code, t.page_map, self.V, self.D, self.S, self.tp, mem.words, mem.page_state))
            self._drain_events()
            if r == L.RUN_NEED_CODE:
                self.table.add_page(int(self.gs[L.G_NEED_PAGE]))
                continue
            if r in (L.RUN_EVENTS_FULL, L.RUN_STEP_LIMIT):
                if v3d.max_wall_seconds is not None and time.monotonic() - t0 > v3d.max_wall_seconds:
                    return self._finish_failed("timeout", JobTimeoutError,
                                               f"the job did not finish within {v3d.max_wall_seconds} s of "
                                               "wall-clock time")
                continue
            if r == L.RUN_STOP:
                errors = [f for f in self._ordered() if f.level == "error"]
                self._abort()
                raise RuleViolation(errors[0], errors[1:])
            if r == L.RUN_DEADLOCK:
                return self._finish_failed("deadlock", DeadlockError, self._deadlock_text())
            if r == L.RUN_TIMEOUT:
                return self._finish_failed(
                    "timeout", JobTimeoutError,
                    f"the job did not finish within {self.timeout_ms} ms of emulated time "
                    f"({int(self.p[L.P_MAX_CYCLES])} cycles at {v3d.clock_hz / 1e6:.0f} MHz)")
            return self._report(completed=True)

    def _abort(self) -> None:
        # a job stopped half-way leaves semaphores and the mutex in an arbitrary state: reset them
        self.gs[L.G_SEM:L.G_SEM + 16] = 0
        self.gs[L.G_MUTEX] = -1

    def _finish_failed(self, rule: str, exc, text: str) -> JobReport:
        lines = [text, "QPU states:"] + self._qpu_states()
        finding = Finding(rule=rule, level="error", message=self._frame(rule, "\n  ".join(lines), None))
        if self.v3d.strict:
            self._abort()
            raise exc(finding)
        warnings.warn(finding.message, EmulatorWarning, stacklevel=3)
        key = (rule, -1, -1)
        self.findings[key] = finding
        self.order.append(key)
        self._abort()
        return self._report(completed=False)

    # -- findings ----------------------------------------------------------------------------

    def _ordered(self) -> List[Finding]:
        return [self.findings[k] for k in self.order]

    def _drain_events(self) -> None:
        n = int(self.gs[L.G_NEV])
        for k in range(n):
            e = self.ev[k]
            rule = L.CORE_RULES[int(e[L.EV_RULE])]
            idx = int(e[L.EV_IDX])
            key = (rule, int(e[L.EV_Q]), idx)
            if key in self.findings:
                self.findings[key].count += 1
                continue
            f = self._finding(rule, e)
            self.findings[key] = f
            self.order.append(key)
            if f.level == "warning" or not self.v3d.strict:
                warnings.warn(f.message, EmulatorWarning, stacklevel=4)
        self.gs[L.G_NEV] = 0

    def _finding(self, rule: str, e: np.ndarray) -> Finding:
        q = int(e[L.EV_Q])
        c = int(e[L.EV_CTX])
        pc = int(e[L.EV_PC]) & 0xFFFFFFFF
        level = RULES[rule].level.value
        what = describe_event(rule, int(e[L.EV_D0]), int(e[L.EV_D1]), int(e[L.EV_D2]))
        where = self._where(q, c, pc)
        text = f"{what}\n  at {where['text']}, cycle {int(e[L.EV_CLOCK])}"
        if where["disassembly"]:
            text += f"\n  instruction: {where['disassembly']}"
        if where["location"] is not None:
            text += f"\n  source: {where['location']}"
        return Finding(rule=rule, level=level, message=self._frame(rule, text, level), qpu=q, thread=c & 1, pc=pc,
                       index=where["index"], program=where["program"], disassembly=where["disassembly"],
                       location=where["location"], cycle=int(e[L.EV_CLOCK]),
                       details=(int(e[L.EV_D0]), int(e[L.EV_D1]), int(e[L.EV_D2])))

    def _frame(self, rule: str, text: str, level: Optional[str]) -> str:
        r = RULES[rule]
        lv = level or r.level.value
        return f"[{rule}] ({lv}) {text}\n  fix: {ADVICE.get(rule, '')}\n  rule: {r.summary} ({r.citation})"

    def _where(self, q: int, c: int, pc: int) -> dict:
        mem = self.v3d.memory
        phys = pc & ~BUS_ALIAS_MASK
        disasm = ""
        off = phys - mem.phys_base
        if 0 <= off <= mem.size - 8 and not pc & 7:
            word = int(mem.data[off:off + 8].view("<u8")[0])
            disasm = disassemble_word(word)
        program_name = ""
        index = -1
        location = None
        for start, prog in self.v3d._programs.items():
            if start <= phys < start + 8 * len(prog):
                index = (phys - start) // 8
                program_name = prog.name or f"program at {start:#x}"
                location = prog.location(index)
                label = prog.label_at(index)
                if label:
                    program_name += f", label {label}"
                break
        k = int(self.cs[c, L.C_PROG]) if 0 <= c < L.NUM_CTX else -1
        if index < 0 and 0 <= k < len(self.entries):
            start = self.entries[k][2] & ~BUS_ALIAS_MASK
            if phys >= start:
                index = (phys - start) // 8
                program_name = f"program {k} at {self.entries[k][2]:#010x}"
        idx_text = f" (instruction {index} of {program_name})" if index >= 0 else ""
        text = f"QPU {q} thread {c & 1}, PC {pc:#010x}{idx_text}"
        return {"text": text, "disassembly": disasm, "location": location, "index": index,
                "program": program_name}

    def _qpu_states(self) -> List[str]:
        out = []
        waits = {L.W_SEM_ACQ: "acquire of semaphore {a} (count 0)", L.W_SEM_REL: "release of semaphore {a} "
                 "(count 15)", L.W_MUTEX: "the mutex, held by QPU {a}"}
        for q in range(L.NUM_QPUS):
            st = int(self.qs[q, L.Q_STATUS])
            if st == L.QS_IDLE:
                continue
            c = 2 * q + int(self.qs[q, L.Q_CUR])
            pc = int(self.cs[c, L.C_PC])
            where = self._where(q, c, pc)["text"]
            if st == L.QS_DONE:
                out.append(f"QPU {q}: finished")
            elif st == L.QS_BLOCKED:
                kind = int(self.qs[q, L.Q_WAIT_KIND])
                w = waits.get(kind, "?").format(a=int(self.qs[q, L.Q_WAIT_ARG]))
                out.append(f"QPU {q}: waits for {w} at {where}: {self._where(q, c, pc)['disassembly']}")
            else:
                out.append(f"QPU {q}: running at {where}, cycle {int(self.qs[q, L.Q_CLOCK])}")
        return out

    def _deadlock_text(self) -> str:
        return "every unfinished QPU waits on a semaphore or the mutex that no running QPU can release"

    # -- report ------------------------------------------------------------------------------

    def _report(self, completed: bool) -> JobReport:
        v3d = self.v3d
        used = [q for q in range(L.NUM_QPUS) if self.qs[q, L.Q_STATUS] != L.QS_IDLE]
        per_qpu: List[Dict[str, Any]] = []
        total_stalls = {name: 0 for name in L.STALL_CAUSES}
        for q in used:
            stalls = {name: int(self.stalls[q, k]) for k, name in enumerate(L.STALL_CAUSES)}
            for name, v in stalls.items():
                total_stalls[name] += v
            c = 2 * q + int(self.qs[q, L.Q_CUR])
            per_qpu.append({
                "qpu": q,
                "programs": [int(self.cs[2 * q + t, L.C_PROG]) for t in range(2) if self.cs[2 * q + t, L.C_PROG] >= 0],
                "cycles": int(self.qs[q, L.Q_CLOCK]),
                "instructions": int(self.qs[q, L.Q_INSTR]),
                "stalls": stalls,
                "pc_end": int(self.cs[c, L.C_PC]),
            })
        # a program may end while its DMA still runs (guide p.52): the job lasts until it is done
        cycles = max([int(d["cycles"]) for d in per_qpu] + [int(self.gs[L.G_VDR_FREE]), int(self.gs[L.G_VDW_FREE])])
        alias = self.entries[0][2] & BUS_ALIAS_MASK if self.entries else 0
        t = self.table
        profile: Dict[int, Tuple[int, int]] = {}
        prof = t.code[:, L.K_EXEC:L.K_STALL + 1]
        for row in np.flatnonzero(prof[:, 0] | prof[:, 1]):
            profile[alias | t.phys_of_row(int(row))] = (int(prof[row, 0]), int(prof[row, 1]))
        return JobReport(
            instructions=sum(int(d["instructions"]) for d in per_qpu), cycles=cycles, seconds=cycles / v3d.clock_hz,
            clock_hz=v3d.clock_hz, per_qpu=per_qpu, stalls=total_stalls, hazards=self._ordered(),
            host_interrupts=int(self.gs[L.G_HOSTINT]), profile=profile, completed=completed,
            semaphores=[int(v) for v in self.gs[L.G_SEM:L.G_SEM + 16]])
