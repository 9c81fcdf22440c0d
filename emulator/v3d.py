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
from . import units as U
from .core import run_loop
from .errors import DeadlockError, EmulatorError, EmulatorWarning, JobTimeoutError, RuleViolation
from .memory import BUS_ALIAS_MASK, PAGE_SHIFT, PAGE_SIZE, GPUMemory
from .predecode import predecode
from .report import ADVICE, Finding, JobReport, describe_event
from .timing import DEFAULT_TIMING, TimingParameters
from .trace import Span, build_trace

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
_TRACE_STEPS_PER_CALL = U.TRACE_MAX // 16


def _whole(x: float) -> int:
    """A duration in whole cycles, rounded up like units.cycles."""
    return int(np.ceil(float(x) - 1e-6)) if x > 0 else 0


def _cache_offsets() -> List[int]:
    """S offset of each cache instance's first entry (instances packed at their maximum size)."""
    out = []
    off = U.X_ENTRIES
    for k in range(U.NCACHES):
        out.append(off)
        off += U.CACHE_MAX_LINES[k] * U.EW
    return out
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
                 max_wall_seconds: Optional[float] = None, hazard_checks: bool = True) -> None:
        if not 1 <= vpm_user_rows <= 64:
            raise ValueError("vpm_user_rows must be 1..64: user programs address the first 64 VPM rows "
                             "(guide p.53, errata HW-2253)")
        self.memory = memory
        self.strict = strict
        self.timing = timing if timing is not None else DEFAULT_TIMING
        self.clock_hz = int(clock_hz if clock_hz is not None else self.timing.clock_hz)
        self.vpm_user_rows = vpm_user_rows
        # ``trace`` for the next execute() called without one (see execute)
        self.trace_next: Any = None
        self.max_wall_seconds = max_wall_seconds
        self.hazard_checks = hazard_checks   # False: no instruction-sequence checks (core.py), for speed
        self._programs: Dict[int, Program] = {}     # physical code address -> Program
        self._page_cache: Dict[Tuple[int, bytes], np.ndarray] = {}   # insertion order = LRU order
        self.reset()

    # -- persistent hardware state ------------------------------------------------------------

    def reset(self) -> None:
        """Reset semaphores, mutex, VPM contents and every cache (as after a V3D reset)."""
        self._gs = np.zeros(L.NGS, dtype=np.int64)
        self._gs[L.G_MUTEX] = -1
        self._vpm = np.zeros(L.VPM_WORDS, dtype=np.uint32)
        self._vpmd = np.zeros(L.VPM_WORDS, dtype=np.uint8)
        self._caches = np.zeros(U.NX_ENTRIES, dtype=np.int64)   # cache entries (units.py layout)
        self._cache_geometry: Tuple[Tuple[int, int], ...] = ()
        self._geometry_of: Optional[TimingParameters] = None     # the timing those sizes came from

    def clear_caches(self, *, v3d: bool = True, system_l2: bool = False) -> None:
        """Empty the caches before the next job.

        ``v3d``: the V3D L2 and every slice's instruction, uniforms and TMU caches, which is
        what writing V3D_L2CACTL bit 2 (L2CCLR) and all ones to V3D_SLCACTL does (guide
        Tables 71-72; GPU_FFT's direct launch does both before every batch, gpu_fft_base.c).
        ``system_l2``: the VideoCore's own L2, which those registers do not reach (for a
        run that must not depend on earlier jobs).  Caches otherwise outlive jobs, as on the
        hardware.
        """
        offsets = _cache_offsets()
        for k in range(U.NCACHES):
            if (k == U.CA_SOC and system_l2) or (k != U.CA_SOC and v3d):
                lo = offsets[k] - U.X_ENTRIES
                self._caches[lo:lo + U.CACHE_MAX_LINES[k] * U.EW] = 0

    def system_l2_write(self, bus_address: int, nbytes: int) -> None:
        """Model the ARM writing ``nbytes`` at ``bus_address`` through the VideoCore L2.

        On a Pi 1 the ARM's memory accesses go through the VideoCore L2 (gpu_fft_base.c: only
        from the Pi 2 on "ARM cannot see VC4 L2"), so data the ARM just wrote is in that
        cache when the QPUs read it.  Only the cache contents change (timing only); the
        lines are marked dirty, as a write-back cache holds them.
        """
        self._refresh_geometry()
        sets, ways = self._cache_geometry[U.CA_SOC]
        if sets == 0 or (bus_address >> 30) & 3 == 3:
            return
        base = _cache_offsets()[U.CA_SOC] - U.X_ENTRIES
        first = (bus_address & U.BUS_PHYS_MASK) >> U.LINE_SHIFT
        last = ((bus_address + max(nbytes, 1) - 1) & U.BUS_PHYS_MASK) >> U.LINE_SHIFT
        entries = self._caches[base:base + sets * ways * U.EW].reshape(sets, ways, U.EW)
        stamp = int(entries[..., U.E_LRU].max())
        for line in range(first, last + 1):
            ent = entries[line & (sets - 1)]
            hit = np.flatnonzero(ent[:, U.E_TAG] == line + 1)
            w = int(hit[0]) if len(hit) else int(np.argmin(ent[:, U.E_LRU]))
            stamp += 1
            ent[w] = (line + 1, stamp, 0, 1)

    def _refresh_geometry(self) -> None:
        """Empty any cache whose size the timing parameters changed (its entries would not fit)."""
        if self.timing is self._geometry_of:
            return
        problems = self.timing.problems()
        if problems:
            raise EmulatorError("unusable timing parameters: " + "; ".join(problems))
        geometry = self.timing.cache_geometry()
        if geometry != self._cache_geometry:
            offsets = _cache_offsets()
            for k in range(U.NCACHES):
                if not self._cache_geometry or geometry[k] != self._cache_geometry[k]:
                    lo = offsets[k] - U.X_ENTRIES
                    self._caches[lo:lo + U.CACHE_MAX_LINES[k] * U.EW] = 0
            self._cache_geometry = geometry
        self._geometry_of = self.timing

    @property
    def semaphores(self) -> List[int]:
        return [int(v) for v in self._gs[L.G_SEM:L.G_SEM + 16]]

    def register_program(self, code_bus_address: int, program: Program) -> None:
        """Let messages about code at this address show the kernel's source lines and labels."""
        self._programs[int(code_bus_address) & ~BUS_ALIAS_MASK] = program

    # -- running a job -----------------------------------------------------------------------

    def execute(self, num_qpus: int, control_bus_address: int, timeout_ms: int = 10000, *,
                threads_per_qpu: int = 1, trace: Any = None) -> JobReport:
        """Run ``num_qpus`` programs from the control list; see the module docstring.

        ``trace``: True to record a timeline (``report.trace``; ``report.write_trace(path)``
        writes it as Chrome Trace Event JSON), or a path to write it to at once.
        """
        if trace is None and self.trace_next is not None:
            # set by a caller that reaches execute through the emulated firmware (the runtime's
            # Driver(..., trace=...)), whose message buffer has no room for it; one job only
            trace, self.trace_next = self.trace_next, None
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
        self._refresh_geometry()
        job = _Job(self, ctl, threads_per_qpu, timeout_ms, trace=bool(trace))
        report = job.run()
        if trace is not None and not isinstance(trace, bool):
            report.write_trace(trace)
        return report


class _Job:
    """State and driver loop of one execute() call."""

    def __init__(self, v3d: V3D, ctl: np.ndarray, threads: int, timeout_ms: int, trace: bool = False) -> None:
        self.v3d = v3d
        self.ctl = ctl
        self.threads = threads
        self.timeout_ms = timeout_ms
        mem = v3d.memory
        self.table = _CodeTable(mem, v3d._page_cache)
        # the loop's state arrays (layout.py) and numpy views of their parts
        self.V = np.zeros((L.NV_ROWS, 16), dtype=np.uint32)
        self.D = np.zeros((L.ND_ROWS, 16), dtype=np.uint8)
        # layout.NI words, then the memory model's and (when tracing) the trace buffer (units.py)
        self.S = np.zeros(U.NS_TOTAL if trace else U.NS_UNTRACED, dtype=np.int64)
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
        # the trace buffer is drained between loop calls: a call makes at most a few records per step
        self.p[L.P_MAX_STEPS] = _TRACE_STEPS_PER_CALL if trace else _STEPS_PER_CALL
        self.tracing = trace
        self.trace_records: List[np.ndarray] = []
        self._setup_memory_model()
        self.p[L.P_VPM_ROWS] = v3d.vpm_user_rows
        self.p[L.P_OR_OP] = MOV_ADD.code
        self.p[L.P_NO_HAZARD_CHECKS] = 0 if v3d.hazard_checks else 1
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

    def _setup_memory_model(self) -> None:
        """Cache tables, the memory model's parameters in whole cycles, and the caches' contents."""
        S = self.S
        v3d = self.v3d
        tm = v3d.timing
        for k, (off, (sets, ways)) in enumerate(zip(_cache_offsets(), v3d._cache_geometry)):
            S[U.X_CACHE + 3 * k:U.X_CACHE + 3 * k + 3] = (off, sets, ways)
        g = U.X_G
        S[g + U.XG_TRACE] = 1 if self.tracing else 0
        S[g + U.XT_L2C_LAT] = _whole(tm.l2c_latency)
        S[g + U.XT_L2C_CPL] = _whole(tm.l2c_cycles_per_line)
        S[g + U.XT_SOC_LAT] = _whole(tm.soc_l2_latency)
        S[g + U.XT_SDRAM_LAT] = _whole(tm.sdram_latency)
        S[g + U.XT_BIN_BYTES] = max(1, int(round(tm.sdram_bytes_per_cycle * (1 << U.BIN_SHIFT))))
        S[g + U.XT_TMU_MISS] = _whole(tm.tmu_miss_cycles)
        S[g + U.XT_VPM_CPV] = _whole(U.LANES * 4 / tm.vpm_bytes_per_cycle)   # one 16-word vector
        S[g + U.XT_ROW_MISS_BYTES] = int(round(tm.sdram_row_miss_cycles * tm.sdram_bytes_per_cycle))
        S[g + U.XT_PAGE_SHIFT] = int(tm.sdram_page_bytes).bit_length() - 1
        S[g + U.XT_BANK_MASK] = int(tm.sdram_banks) - 1
        S[g + U.XG_LRU] = int(v3d._caches[U.E_LRU::U.EW].max()) if v3d._caches.size else 0
        S[U.X_ENTRIES:U.X_ENTRIES + U.NX_ENTRIES] = v3d._caches
        S[U.X_ENTRIES + U.E_READY:U.X_ENTRIES + U.NX_ENTRIES:U.EW] = 0   # earlier jobs' fills are complete

    def _drain_trace(self) -> None:
        n = int(self.S[U.X_G + U.XG_NTRACE])
        if n:
            self.trace_records.append(self.S[U.X_TRACE:U.X_TRACE + n * U.TW].reshape(n, U.TW).copy())
            self.S[U.X_G + U.XG_NTRACE] = 0

    def _save_persistent(self) -> None:
        v3d = self.v3d
        v3d._caches[:] = self.S[U.X_ENTRIES:U.X_ENTRIES + U.NX_ENTRIES]
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
            if self.tracing:
                self._drain_trace()
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
        S = self.S
        used = [q for q in range(L.NUM_QPUS) if self.qs[q, L.Q_STATUS] != L.QS_IDLE]
        per_qpu: List[Dict[str, Any]] = []
        causes = tuple(L.STALL_CAUSES) + tuple(U.EXTRA_STALL_CAUSES)
        total_stalls = {name: 0 for name in causes}
        for q in used:
            stalls = {name: int(self.stalls[q, k]) for k, name in enumerate(L.STALL_CAUSES)}
            for k, name in enumerate(U.EXTRA_STALL_CAUSES):
                stalls[name] = int(S[U.X_STALL + q * U.NXS + k])
            for name, v in stalls.items():
                total_stalls[name] += v
            c = 2 * q + int(self.qs[q, L.Q_CUR])
            per_qpu.append({
                "qpu": q,
                "programs": [int(self.cs[2 * q + t, L.C_PROG]) for t in range(2) if self.cs[2 * q + t, L.C_PROG] >= 0],
                "cycles": int(self.qs[q, L.Q_CLOCK]),
                "instructions": int(self.qs[q, L.Q_INSTR]),
                "stalls": stalls,
                "stall_cycles": sum(stalls.values()),
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
        instructions = sum(int(d["instructions"]) for d in per_qpu)
        trace = None
        if self.tracing:
            self._drain_trace()
            programs = []
            for k in range(L.NUM_CTX):
                if self.cs[k, L.C_PROG] < 0 or self.cs[k, L.C_START] < 0:
                    continue
                end = int(self.cs[k, L.C_END]) if self.cs[k, L.C_END] >= 0 else int(self.qs[k // 2, L.Q_CLOCK])
                label = f"program {int(self.cs[k, L.C_PROG])}" + (f" (thread {k & 1})" if self.threads == 2 else "")
                programs.append(Span(f"QPU {k // 2}", label, int(self.cs[k, L.C_START]), end, {}))
            trace = build_trace(self.trace_records, v3d.clock_hz, programs, int(S[U.X_G + U.XG_TDROP]))
        return JobReport(
            instructions=instructions, cycles=cycles, seconds=cycles / v3d.clock_hz,
            clock_hz=v3d.clock_hz, per_qpu=per_qpu, stalls=total_stalls, hazards=self._ordered(),
            host_interrupts=int(self.gs[L.G_HOSTINT]), profile=profile, completed=completed,
            semaphores=[int(v) for v in self.gs[L.G_SEM:L.G_SEM + 16]],
            dual_issue_rate=self._dual_issue_rate(), counters=self._counters(per_qpu, cycles, total_stalls),
            memory=self._memory(), trace=trace)

    def _dual_issue_rate(self) -> float:
        """Executed ALU instructions with both an add and a mul operation, as a fraction of all
        executed ALU instructions (the pre-decoded ops: 0 = nop)."""
        code = self.table.code
        alu = code[:, L.K_KIND] == L.KIND_ALU
        execs = code[:, L.K_EXEC]
        total = int(execs[alu].sum())
        if total == 0:
            return 0.0
        both = alu & (code[:, L.K_OP_ADD] != 0) & (code[:, L.K_OP_MUL] != 0)
        return int(execs[both].sum()) / total

    def _counters(self, per_qpu: List[Dict[str, Any]], cycles: int, stalls: Dict[str, int]) -> Dict[str, int]:
        """The V3D performance counters (guide Table 82, sources 13-29) as the model sees them,
        named as qpu.runtime.counters names them for real hardware."""
        from qpu.runtime.counters import COUNTER_NAMES

        S = self.S
        cnt = S[U.X_CNT:U.X_CNT + U.NXC]
        cpi = _whole(self.v3d.timing.cycles_per_instruction)
        busy = sum(int(d["cycles"]) for d in per_qpu)       # every program starts at cycle 0
        values = {
            13: L.NUM_QPUS * cycles - busy,                   # QPUs not running a program
            14: 0, 15: 0,                                     # user programs: neither vertex nor fragment shading
            16: cpi * sum(int(d["instructions"]) for d in per_qpu),
            17: stalls.get("tmu", 0),
            18: 0, 19: 0,                                     # scoreboard and varyings: fragment shaders only
            20: int(cnt[U.XC_IC_HIT]), 21: int(cnt[U.XC_IC_MISS]),
            22: int(cnt[U.XC_UC_HIT]), 23: int(cnt[U.XC_UC_MISS]),
            24: int(cnt[U.XC_TMU_QUADS]), 25: int(cnt[U.XC_TMU_MISS]),
            26: 0, 27: 0,                                     # VPM port contention of the DMA engines: not modelled
            28: int(cnt[U.XC_L2_HIT]), 29: int(cnt[U.XC_L2_MISS]),
        }
        return {COUNTER_NAMES[k]: int(v) for k, v in values.items()}

    def _memory(self) -> Dict[str, int]:
        cnt = self.S[U.X_CNT:U.X_CNT + U.NXC]
        return {"system_l2_hits": int(cnt[U.XC_SOC_HIT]), "system_l2_misses": int(cnt[U.XC_SOC_MISS]),
                "system_l2_writebacks": int(cnt[U.XC_SOC_WB]), "sdram_bytes_read": int(cnt[U.XC_SDRAM_RD]),
                "sdram_bytes_written": int(cnt[U.XC_SDRAM_WR]), "dma_bytes_loaded": int(cnt[U.XC_DMA_RD]),
                "dma_bytes_stored": int(cnt[U.XC_DMA_WR]), "sdram_row_misses": int(cnt[U.XC_ROW_MISS])}
