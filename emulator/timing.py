"""The timing model's parameters: one table, each number with its source.

The emulator counts time per QPU in V3D clock cycles: every instruction costs
``cycles_per_instruction`` plus the stalls the model predicts (TMU latency, VPM
read latency, DMA engine occupancy, semaphore and mutex waits, thread
switches).  These numbers are a first, uncalibrated model; issue 5 fits them to
GPU_FFT's published run times.  Change them by passing a ``TimingParameters``
to ``V3D(timing=...)``.

=========================  =========  ======================================================
parameter                  default    source
=========================  =========  ======================================================
clock_hz                   250 MHz    V3D clock of the Pi 1 / Zero used for GPU_FFT's
                                      published times (hello_fft gpu_fft.txt); issue 5
cycles_per_instruction     4          guide p.16: "cycle time of four system clocks"
                                      (4-way SIMD multiplexed over 4 cycles)
tmu_latency                48         placeholder (uncalibrated): cycles from a TMU request
                                      to its data in the receive FIFO (cache hit order)
tmu_issue_cycles           4          placeholder: a 16-lane request occupies its TMU for
                                      one instruction slot; the 2 TMUs of a slice are shared
                                      by its 4 QPUs (guide p.39)
vpm_read_latency           12         guide p.56: VPM read data is available "after a
                                      minimum latency of three QPU instructions"
vdr_setup_cycles           61         linear fit of issue 5's published VCD (DMA load)
vdr_bytes_per_cycle        3.30       rates: ~200 MB/s for single 64-byte rows, ~690 MB/s
                                      for 16 rows, at 250 MHz
vdw_setup_cycles           39         linear fit of issue 5's published VDW (DMA store)
vdw_bytes_per_cycle        4.58       rates: ~300 MB/s single rows, ~1.12 GB/s for 128 rows
vpm_bytes_per_cycle        16.0       issue 5: QPU-VPM 4 GB/s at 250 MHz (a 16-word vector
                                      per instruction, so QPU VPM accesses never stall); also
                                      the fastest a DMA can move VPM data, used to decide when
                                      a DMA is *certainly* still running (vpm-used-before-dma-wait)
semaphore_cycles           0          placeholder: arbitration cost of a semaphore access
mutex_cycles               0          placeholder: arbitration cost of a mutex acquire
thread_switch_cycles       0          placeholder: cost of a thread switch
=========================  =========  ======================================================

Not modelled yet (issue 5): memory bandwidth shared between TMUs and DMA, the
L2 and TMU caches, instruction and uniform cache misses, FIFO back-pressure
beyond the engine queues.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict

import numpy as np

from .layout import TIMING_FIELDS


@dataclass(frozen=True)
class TimingParameters:
    """Physical parameters of the timing model (see the module docstring for sources)."""

    clock_hz: int = 250_000_000
    cycles_per_instruction: float = 4.0
    tmu_latency: float = 48.0
    tmu_issue_cycles: float = 4.0
    vpm_read_latency: float = 12.0
    vdr_setup_cycles: float = 61.0
    vdr_bytes_per_cycle: float = 3.30
    vdw_setup_cycles: float = 39.0
    vdw_bytes_per_cycle: float = 4.58
    vpm_bytes_per_cycle: float = 16.0
    semaphore_cycles: float = 0.0
    mutex_cycles: float = 0.0
    thread_switch_cycles: float = 0.0

    def as_array(self) -> np.ndarray:
        """The parameters in the order the compiled loop reads them (layout.TIMING_FIELDS)."""
        return np.array([float(getattr(self, name)) for name in TIMING_FIELDS], dtype=np.float64)

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


# Every loop parameter must be a field here (catches a rename on either side).
assert set(TIMING_FIELDS) <= {f.name for f in fields(TimingParameters)}

DEFAULT_TIMING = TimingParameters()
