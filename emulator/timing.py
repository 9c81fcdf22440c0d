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

Timing files (``save_timing`` / ``load_timing``; written by ``qpu calibrate``, read by
``Driver(timing=path)`` or the ``QPU_TIMING_FILE`` environment variable) are JSON::

    {"format": "qpu-videocore timing parameters", "version": 1,
     "parameters": {"clock_hz": 250000000, "tmu_latency": 61.0, ...},
     "meta": {...}}

``parameters`` holds field names of ``TimingParameters``; a missing one keeps its
default (so files stay loadable when the table grows), an unknown one is an error
(it would be silently ignored otherwise).  ``meta`` is free-form (who wrote the file,
for which board, the calibration residuals) and is not read back into the model.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np

from .errors import EmulatorError
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


# -- timing files --------------------------------------------------------------------------------

TIMING_FILE_FORMAT = "qpu-videocore timing parameters"
TIMING_FILE_VERSION = 1
# Parameters the compiled loop divides by: they must be positive, not just non-negative.
_DIVISORS = ("vdr_bytes_per_cycle", "vdw_bytes_per_cycle", "vpm_bytes_per_cycle")


class TimingFileError(EmulatorError):
    """A timing-parameter file cannot be read, or holds values the model cannot use."""


def timing_from_dict(values: Mapping[str, Any], base: TimingParameters = DEFAULT_TIMING,
                     source: str = "timing parameters") -> TimingParameters:
    """``base`` with the given fields replaced, each checked (finite, in range, known name)."""
    known = {f.name for f in fields(TimingParameters)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TimingFileError(f"{source}: unknown timing parameter(s) {', '.join(unknown)}; this version of the "
                              f"emulator knows {', '.join(sorted(known))} (a newer version may have written it)")
    checked: Dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TimingFileError(f"{source}: {name} must be a finite number, got {value!r}")
        if name == "clock_hz":
            if value <= 0 or int(value) != value:
                raise TimingFileError(f"{source}: clock_hz must be a positive whole number of Hz, got {value!r}")
            checked[name] = int(value)
            continue
        if value < 0 or (name in _DIVISORS and value == 0):
            need = "positive" if name in _DIVISORS else "zero or positive"
            raise TimingFileError(f"{source}: {name} must be {need}, got {value!r}")
        if name == "cycles_per_instruction" and value < 1:
            raise TimingFileError(f"{source}: cycles_per_instruction must be at least 1, got {value!r}")
        checked[name] = float(value)
    return replace(base, **checked)


def load_timing(path: Union[str, os.PathLike[str]]) -> TimingParameters:
    """The parameters of a timing file (format in the module docstring)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise TimingFileError(f"cannot read the timing file {os.fspath(path)!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise TimingFileError(f"the timing file {os.fspath(path)!r} is not valid JSON: {exc}") from None
    where = f"timing file {os.fspath(path)!r}"
    if not isinstance(doc, dict) or doc.get("format") != TIMING_FILE_FORMAT:
        raise TimingFileError(f"{where} is not a timing-parameter file (its \"format\" is not "
                              f"{TIMING_FILE_FORMAT!r}); write one with `qpu calibrate`")
    version = doc.get("version")
    if version != TIMING_FILE_VERSION:
        raise TimingFileError(f"{where} has version {version!r}; this emulator reads version {TIMING_FILE_VERSION}")
    params = doc.get("parameters")
    if not isinstance(params, dict):
        raise TimingFileError(f"{where} has no \"parameters\" object")
    return timing_from_dict(params, source=where)


def save_timing(params: TimingParameters, path: Union[str, os.PathLike[str]],
                meta: Optional[Mapping[str, Any]] = None) -> None:
    """Write ``params`` (and free-form ``meta``) as a timing file that ``load_timing`` reads back."""
    doc = {"format": TIMING_FILE_FORMAT, "version": TIMING_FILE_VERSION,
           "parameters": params.as_dict(), "meta": dict(meta or {})}
    text = json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)    # never leave a half-written file where the emulator looks for one
