"""V3D performance counters: the QPU-related count sources, their names, and how to read them.

Guide section 10 ("Performance Counters", pp.97-99): 16 counters V3D_PCTR0..15 at
0xc00680 + 8n, each mapped to a count source by V3D_PCTRSn at 0xc00684 + 8n (5-bit
source id); V3D_PCTRE (0xc00674) enables counters (bit n enables counter n) and
V3D_PCTRC (0xc00670) clears them (write 1 to clear).  The vc4asm addendum (Section 10)
corrects the guide: bit 31 of V3D_PCTRE, marked reserved, must be set as well or no
counter counts.

Sources 13..29 (guide Table 82, "Sources for Performance Counters") are the ones a
QPU user program can affect.  That is 17 sources for 16 counters, so the default set
leaves out source 19 (QPU cycles stalled waiting for varyings): varyings exist only
for fragment shaders, never for the user programs the mailbox launches.

``COUNTER_NAMES`` is the vocabulary shared with the emulator: a run report on either
backend lists counters under these names.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import numpy as np

V3D_PCTRC = 0x670
V3D_PCTRE = 0x674
V3D_PCTR0 = 0x680
V3D_PCTRS0 = 0x684
PCTRE_ENABLE = 1 << 31     # addendum Section 10: required, although the guide marks it reserved
NUM_COUNTERS = 16

# source id -> (name used in run reports, guide Table 82 description)
COUNTER_SOURCES: Dict[int, Tuple[str, str]] = {
    13: ("qpu_idle_cycles", "total idle clock cycles for all QPUs"),
    14: ("qpu_vertex_shading_cycles", "total clock cycles for all QPUs doing vertex/coordinate shading"),
    15: ("qpu_fragment_shading_cycles", "total clock cycles for all QPUs doing fragment shading"),
    16: ("qpu_instruction_cycles", "total clock cycles for all QPUs executing valid instructions"),
    17: ("qpu_tmu_stall_cycles", "total clock cycles for all QPUs stalled waiting for TMUs"),
    18: ("qpu_scoreboard_stall_cycles", "total clock cycles for all QPUs stalled waiting for Scoreboard"),
    19: ("qpu_varyings_stall_cycles", "total clock cycles for all QPUs stalled waiting for Varyings"),
    20: ("icache_hits", "total instruction cache hits for all slices"),
    21: ("icache_misses", "total instruction cache misses for all slices"),
    22: ("uniforms_cache_hits", "total uniforms cache hits for all slices"),
    23: ("uniforms_cache_misses", "total uniforms cache misses for all slices"),
    24: ("tmu_quads", "total texture quads processed"),
    25: ("tmu_cache_misses", "total texture cache misses (number of fetches from memory/L2cache)"),
    26: ("vdw_vpm_stall_cycles", "total clock cycles VDW is stalled waiting for VPM access"),
    27: ("vcd_vpm_stall_cycles", "total clock cycles VCD is stalled waiting for VPM access"),
    28: ("l2_hits", "total Level 2 cache hits"),
    29: ("l2_misses", "total Level 2 cache misses"),
}
COUNTER_NAMES: Dict[int, str] = {k: v[0] for k, v in COUNTER_SOURCES.items()}
DEFAULT_SOURCES: Tuple[int, ...] = tuple(s for s in range(13, 30) if s != 19)


class PerformanceCounters:
    """Program, start, read and stop the V3D counters through a mapped V3D register page.

    ``regs`` is a uint32 array over the V3D registers (index = register offset / 4),
    i.e. the page mapped at the peripheral base + 0xc00000.
    """

    def __init__(self, regs: Any, sources: Sequence[int] = DEFAULT_SOURCES) -> None:
        sources = tuple(int(s) for s in sources)
        if len(sources) > NUM_COUNTERS:
            raise ValueError(f"the V3D has {NUM_COUNTERS} counters; {len(sources)} sources asked for")
        for s in sources:
            if s not in COUNTER_SOURCES:
                raise ValueError(f"counter source {s} is not one of the QPU sources 13..29 (guide Table 82)")
        self.regs = regs
        self.sources = sources

    def _write(self, offset: int, value: int) -> None:
        self.regs[offset // 4] = np.uint32(value & 0xFFFFFFFF)

    def _read(self, offset: int) -> int:
        return int(self.regs[offset // 4])

    def start(self) -> None:
        """Disable, clear, map every counter to its source, then enable (with bit 31)."""
        self._write(V3D_PCTRE, 0)
        self._write(V3D_PCTRC, 0xFFFF)
        for n, source in enumerate(self.sources):
            self._write(V3D_PCTRS0 + 8 * n, source)
        mask = (1 << len(self.sources)) - 1
        self._write(V3D_PCTRE, PCTRE_ENABLE | mask)

    def read(self) -> Dict[str, int]:
        return {COUNTER_NAMES[s]: self._read(V3D_PCTR0 + 8 * n) for n, s in enumerate(self.sources)}

    def stop(self) -> None:
        self._write(V3D_PCTRE, 0)
        self._write(V3D_PCTRC, 0xFFFF)


NUM_QPUS = 12


def counters_from_job(job: Any) -> Dict[str, int]:
    """The emulator's prediction of the counters it models, under the hardware counters' names.

    A job report with a ``counters`` dict is used as it is.  Otherwise three are derived
    from the emulator's per-QPU clocks and stall causes (its timing model, which the
    calibration issue adjusts): ``qpu_tmu_stall_cycles`` (the "tmu" stall cause),
    ``qpu_instruction_cycles`` (QPU cycles not stalled) and ``qpu_idle_cycles`` (the 12
    QPUs' cycles in the job minus their busy cycles).  Caches are not modelled, so
    their counters are absent.
    """
    counters = getattr(job, "counters", None)
    if isinstance(counters, dict):
        return {str(k): int(v) for k, v in counters.items()}
    per_qpu = getattr(job, "per_qpu", None)
    cycles = getattr(job, "cycles", None)
    if not isinstance(per_qpu, list) or cycles is None:
        return {}
    out: Dict[str, int] = {}
    stalls = getattr(job, "stalls", None) or {}
    if "tmu" in stalls:
        out[COUNTER_NAMES[17]] = int(stalls["tmu"])
    busy = [q for q in per_qpu if isinstance(q, dict) and "cycles" in q]
    if busy and len(busy) == len(per_qpu):
        total = sum(int(q["cycles"]) for q in busy)
        stalled = sum(int(v) for q in busy for v in (q.get("stalls") or {}).values())
        out[COUNTER_NAMES[16]] = total - stalled
        out[COUNTER_NAMES[13]] = NUM_QPUS * int(cycles) - total
    return out
