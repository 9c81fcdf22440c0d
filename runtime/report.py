"""The run report a Driver returns from every execute (and keeps as ``drv.last_report``).

On the emulator it carries the emulator's prediction (instructions, cycles, stalls,
hazards, per-QPU detail; ``seconds`` = cycles / clock_hz); on a Pi the measured wall
time of the mailbox call, the V3D clock read from the firmware, and the V3D
performance counters (qpu.runtime.counters names).  ``str(report)`` is a one-line
summary for people.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional


def _si_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.2f} us"


class RunReport:
    """What one QPU job did.  Fields the backend cannot know are None (or empty)."""

    def __init__(self, backend: str, num_qpus: int, seconds: float, clock_hz: int, *,
                 measured: bool,
                 instructions: Optional[int] = None,
                 cycles: Optional[int] = None,
                 per_qpu: Optional[List[Dict[str, Any]]] = None,
                 stalls: Optional[Dict[str, int]] = None,
                 hazards: Optional[List[Any]] = None,
                 counters: Optional[Dict[str, int]] = None,
                 warnings: Optional[List[str]] = None,
                 job: Any = None) -> None:
        self.backend = backend
        self.num_qpus = num_qpus
        self.seconds = float(seconds)
        self.clock_hz = int(clock_hz)
        self.measured = measured
        self.instructions = instructions
        self.cycles = cycles
        self.per_qpu = per_qpu or []
        self.stalls = dict(stalls or {})
        self.hazards = list(hazards or [])
        self.counters = dict(counters or {})
        self.warnings = list(warnings or [])
        self.job = job   # the emulator's JobReport, when there is one

    @classmethod
    def from_job(cls, job: Any, num_qpus: int, clock_hz: int, counters: Optional[Dict[str, int]] = None,
                 warnings: Optional[List[str]] = None) -> RunReport:
        """A report from the emulator's JobReport; seconds predicted at ``clock_hz``."""
        cycles = getattr(job, "cycles", None)
        seconds = cycles / clock_hz if cycles is not None and clock_hz else float(getattr(job, "seconds", 0.0))
        return cls("emulator", num_qpus, seconds, clock_hz, measured=False,
                   instructions=getattr(job, "instructions", None), cycles=cycles,
                   per_qpu=list(getattr(job, "per_qpu", None) or []),
                   stalls=dict(getattr(job, "stalls", None) or {}),
                   hazards=list(getattr(job, "hazards", None) or []),
                   counters=counters, warnings=warnings, job=job)

    def __str__(self) -> str:
        qpus = f"{self.num_qpus} QPU" + ("s" if self.num_qpus != 1 else "")
        mhz = f"{self.clock_hz / 1e6:g} MHz"
        if self.measured:
            text = f"{self.backend}: {qpus}, {_si_time(self.seconds)} measured (V3D at {mhz})"
        else:
            parts = [f"{self.backend}: {qpus}"]
            if self.instructions is not None:
                parts.append(f"{self.instructions} instructions")
            if self.cycles is not None:
                parts.append(f"{self.cycles} cycles")
            text = ", ".join(parts) + f" = {_si_time(self.seconds)} predicted at {mhz}"
        stalls = {k: v for k, v in self.stalls.items() if v}
        if stalls:
            top = sorted(stalls.items(), key=lambda kv: -kv[1])[:3]
            text += "; stalls " + ", ".join(f"{k} {v}" for k, v in top)
        if self.hazards:
            text += f"; {len(self.hazards)} hazard warning(s)"
        if self.warnings:
            text += f"; {len(self.warnings)} note(s): " + " / ".join(self.warnings)
        return text

    def __repr__(self) -> str:
        return f"<RunReport {self}>"
