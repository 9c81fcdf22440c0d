"""The timing model's parameters: one table, each number with its source.

The emulator counts time per QPU in V3D clock cycles: every instruction costs
``cycles_per_instruction`` plus the stalls the model predicts (units.py, core.py):
instruction and uniform cache misses, TMU cache misses and latency, the V3D L2, the
VideoCore L2 and SDRAM bandwidth shared by everything, the shared VPM port, VPM read
latency, DMA engine occupancy, semaphore and mutex waits, thread switches.  Change
them by passing a ``TimingParameters`` to ``V3D(timing=...)``, or a timing file.

Sources: "guide" is the VideoCore IV 3D Architecture Reference Guide; "addendum" the
vc4asm author's hardware-tested addendum; "fitted" means fitted by
benchmarks/calibrate_gpu_fft.py on GPU_FFT 3.0's published times, batch 1, log2 N
8..12 only (docs/gpu_fft_calibration.md: the held-out error on batch 10 and log2 N
13..17 is reported separately); "assumed" means no published number exists and the
value is an engineering estimate the GPU_FFT data is insensitive to.

=========================  =========  ======================================================
parameter                  default    source
=========================  =========  ======================================================
clock_hz                   250 MHz    V3D clock of the Pi 1 used for GPU_FFT's published
                                      times (gpu_fft.txt); other boards: ``for_pi``
cycles_per_instruction     4          guide p.16: "cycle time of four system clocks"
                                      (4-way SIMD multiplexed over 4 cycles)
tmu_latency                183        fitted on GPU_FFT batch 1, log2 N 8..12: cycles from the
                                      TMU finishing a request's lookups (cache hits) to its
                                      data in the receive FIFO.  Long, as Mesa's vc4 scheduler
                                      also assumes ("some huge latency", 100 instructions, in
                                      vc4_qpu_schedule.c waddr_latency: a heuristic, not a
                                      measurement); ``qpu calibrate`` measures it on a Pi
tmu_issue_cycles           16         assumed: a TMU looks up one lane per cycle (16 per
                                      request; the guide counts TMU work in quads, Table 82)
tmu_miss_cycles            4          assumed: cycles a TMU's fill path is busy per missed
                                      64-byte line (16 bytes per cycle)
l2c_latency                62         fitted (as tmu_latency): V3D L2 hit latency seen by a
                                      TMU, instruction or uniforms cache miss
l2c_cycles_per_line        4          assumed: the V3D L2 serves one 64-byte line per 4 cycles
                                      to all slices together
soc_l2_latency             4.2        fitted (as tmu_latency): extra latency of the VideoCore
                                      L2 (after a V3D L2 miss, cached bus aliases only)
sdram_latency              40         assumed (160 ns): read latency once every cache missed;
                                      the fitted set never reaches SDRAM, and the held-out
                                      sizes that do are bandwidth-bound (insensitive to it)
sdram_bytes_per_cycle      12.8       SDRAM peak data rate: LPDDR2 at the Pi 1's default
                                      sdram_freq of 400 MHz (Raspberry Pi config.txt defaults),
                                      double data rate on a 32-bit bus (bus width assumed):
                                      3.2 GB/s = 12.8 bytes per 250 MHz cycle; shared by cache
                                      misses, write-backs and both DMA directions
sdram_row_miss_cycles      9          a row (page) change in a bank: precharge + activate,
                                      tRP + tRCD of ~18 ns each for LPDDR2 (JEDEC JESD209-2
                                      speed bins), ~36 ns = 9 cycles of the shared bus
sdram_page_bytes           2048       LPDDR2-S4 x32 row size (1-4 KiB by density, JESD209-2)
sdram_banks                8          LPDDR2-S4 banks (JESD209-2); consecutive pages go to
                                      consecutive banks, each keeps one row open
icache_bytes / _ways       4096 / 4   addendum "Cache details": instruction cache 4 KiB,
                                      4-way, 64-byte lines, one per slice (guide p.14)
ucache_bytes / _ways       1024 / 4   assumed (the guide and addendum give no size): one
                                      uniforms cache per slice (guide p.14)
tmu_cache_bytes / _ways    4096 / 1   addendum: TMU cache 4 KiB, 64-byte lines, no
                                      associativity given; direct-mapped per its "sequence
                                      counts" note (a line 4 KiB away evicts); one per TMU
                                      (guide p.14; V3D_SLCACTL clears TMU0/TMU1 separately)
l2c_bytes / _ways          32768 / 4  addendum: V3D L2C "32 kiB ?", 4-way, 64-byte lines
soc_l2_bytes / _ways       131072 / 4 the VideoCore's L2 between the V3D and SDRAM: "128K 4
                                      way set associative" (Raspberry Pi engineer quoted in
                                      hermanhermitage/videocoreiv wiki, BCM2835 overview);
                                      used for the 0x0/0x4 (allocating) and 0x8 (lookup only)
                                      bus aliases, never for 0xC (memory.py; mailbox flags)
vpm_read_latency           12         guide p.56: VPM read data is available "after a
                                      minimum latency of three QPU instructions"
vdr_setup_cycles           61         linear fit of the published VCD (DMA load) rates
vdr_bytes_per_cycle        3.30       (Raspberry Pi 2 at 250 MHz, quoted in issue 5): ~200
                                      MB/s for single 64-byte rows, ~690 MB/s for 16 rows
vdw_setup_cycles           39         linear fit of the published VDW (DMA store) rates
vdw_bytes_per_cycle        4.58       (issue 5): ~300 MB/s single rows, ~1.12 GB/s 128 rows
vpm_bytes_per_cycle        16.0       issue 5: QPU-VPM 4 GB/s at 250 MHz, taken as the VPM's
                                      one QPU port shared by all QPUs (one 16-word vector per
                                      4 cycles); also the fastest a DMA can move VPM data (the
                                      vpm-used-before-dma-wait check)
semaphore_cycles           6.7        fitted (as tmu_latency): extra cycles of a semaphore
                                      instruction (access to the shared semaphore unit)
mutex_cycles               0          assumed: arbitration cost of a mutex acquire
thread_switch_cycles       0          assumed: cost of a thread switch
=========================  =========  ======================================================

The ARM-side cost of launching a job (100 us per mailbox call, published in gpu_fft.txt;
about 3 us for GPU_FFT's direct register launch, estimated) is not part of the V3D's
time: benchmarks/gpu_fft_host.py ``HostCosts`` adds it where hello_fft's timer saw it.

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
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .errors import EmulatorError
from .layout import TIMING_FIELDS
from .units import CA_IC, CA_L2C, CA_SOC, CA_TMU, CA_UC, CACHE_MAX_LINES, LINE_BYTES, MAX_BANKS


@dataclass(frozen=True)
class TimingParameters:
    """Physical parameters of the timing model (see the module docstring for sources)."""

    clock_hz: int = 250_000_000
    cycles_per_instruction: float = 4.0
    tmu_latency: float = 183.0
    tmu_issue_cycles: float = 16.0
    vpm_read_latency: float = 12.0
    vdr_setup_cycles: float = 61.0
    vdr_bytes_per_cycle: float = 3.30
    vdw_setup_cycles: float = 39.0
    vdw_bytes_per_cycle: float = 4.58
    vpm_bytes_per_cycle: float = 16.0
    semaphore_cycles: float = 6.7
    mutex_cycles: float = 0.0
    thread_switch_cycles: float = 0.0
    # memory hierarchy (units.py): caches, the V3D L2, the VideoCore L2, SDRAM
    tmu_miss_cycles: float = 4.0
    l2c_latency: float = 62.0
    l2c_cycles_per_line: float = 4.0
    soc_l2_latency: float = 4.2
    sdram_latency: float = 40.0
    sdram_bytes_per_cycle: float = 12.8
    sdram_row_miss_cycles: float = 9.0
    sdram_page_bytes: float = 2048.0
    sdram_banks: float = 8.0
    icache_bytes: float = 4096.0
    icache_ways: float = 4.0
    ucache_bytes: float = 1024.0
    ucache_ways: float = 4.0
    tmu_cache_bytes: float = 4096.0
    tmu_cache_ways: float = 1.0
    l2c_bytes: float = 32768.0
    l2c_ways: float = 4.0
    soc_l2_bytes: float = 131072.0
    soc_l2_ways: float = 4.0

    def as_array(self) -> np.ndarray:
        """The parameters in the order the compiled loop reads them (layout.TIMING_FIELDS)."""
        return np.array([float(getattr(self, name)) for name in TIMING_FIELDS], dtype=np.float64)

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)

    def cache_geometry(self) -> Tuple[Tuple[int, int], ...]:
        """(sets, ways) of each cache instance, in units.py's CA_* order (0 sets: no cache)."""
        per_kind = {}
        for kind in CACHE_KINDS:
            size = int(getattr(self, f"{kind}_bytes"))
            ways = int(getattr(self, f"{kind}_ways"))
            lines = size // CACHE_LINE_BYTES
            per_kind[kind] = (lines // ways if ways > 0 else 0, ways)
        return (per_kind["icache"],) * 3 + (per_kind["ucache"],) * 3 + (per_kind["tmu_cache"],) * 6 + \
            (per_kind["l2c"], per_kind["soc_l2"])

    def problems(self) -> List[str]:
        """What makes these parameters unusable (empty when they are fine)."""
        out: List[str] = []
        for kind, max_lines in zip(CACHE_KINDS, _CACHE_MAX_LINES):
            size = getattr(self, f"{kind}_bytes")
            ways = getattr(self, f"{kind}_ways")
            if size == 0:
                continue
            lines = size / CACHE_LINE_BYTES
            if ways < 1 or ways > 16 or ways != int(ways):
                out.append(f"{kind}_ways must be a whole number 1..16, got {ways!r}")
                continue
            sets = lines / ways
            if sets != int(sets) or sets < 1 or int(sets) & (int(sets) - 1):
                out.append(f"{kind}_bytes must be {CACHE_LINE_BYTES} x {int(ways)} ways x a power of two "
                           f"(or 0: no cache), got {size!r}")
            elif lines > max_lines:
                out.append(f"{kind}_bytes is at most {max_lines * CACHE_LINE_BYTES} in this emulator, got {size!r}")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                out.append(f"{name} must be positive, got {getattr(self, name)!r}")
        for name, lo, hi in (("sdram_page_bytes", 64, 1 << 16), ("sdram_banks", 1, MAX_BANKS)):
            v = getattr(self, name)
            if v != int(v) or not lo <= v <= hi or int(v) & (int(v) - 1):
                out.append(f"{name} must be a power of two {lo}..{hi}, got {v!r}")
        return out

    @classmethod
    def for_pi(cls, model: str, **changes: Any) -> TimingParameters:
        """The default parameters with the V3D clock of a Pi model (``PI_V3D_CLOCK_HZ``)."""
        key = str(model).lower().replace("raspberry pi", "").replace(" ", "").replace("model", "")
        if key not in PI_V3D_CLOCK_HZ:
            raise ValueError(f"unknown Pi model {model!r}; known: {', '.join(PI_V3D_CLOCK_HZ)}")
        return replace(cls(), clock_hz=PI_V3D_CLOCK_HZ[key], **changes)


CACHE_KINDS = ("icache", "ucache", "tmu_cache", "l2c", "soc_l2")
CACHE_LINE_BYTES = LINE_BYTES
_CACHE_MAX_LINES = (CACHE_MAX_LINES[CA_IC], CACHE_MAX_LINES[CA_UC], CACHE_MAX_LINES[CA_TMU],
                    CACHE_MAX_LINES[CA_L2C], CACHE_MAX_LINES[CA_SOC])
_POSITIVE = ("cycles_per_instruction", "vdr_bytes_per_cycle", "vdw_bytes_per_cycle", "vpm_bytes_per_cycle",
             "sdram_bytes_per_cycle")

# The V3D clock by Pi model, for TimingParameters.for_pi (default config.txt, no overclock).
# Raspberry Pi documentation, config.txt "Overclocking options", table of defaults: v3d_freq
# 250 MHz on the Pi 1 and Pi 2, 300 MHz on the Pi Zero / Zero W, Pi 3 (A+, B, B+) and the
# Zero 2 W (raspberrypi/documentation PR #1469: "on Pi 3/Pi Zero/Pi Zero W ... v3d_freq
# default to 300"; PR #2436 for the Zero 2 W).  The firmware may lower the clock while the
# V3D idles (raspberrypi/firmware#664); GPU_FFT's published times are at 250 MHz (Pi 1).
PI_V3D_CLOCK_HZ: Dict[str, int] = {
    "1": 250_000_000, "1a": 250_000_000, "1b": 250_000_000, "1a+": 250_000_000, "1b+": 250_000_000,
    "zero": 300_000_000, "zerow": 300_000_000, "0": 300_000_000, "0w": 300_000_000,
    "2": 250_000_000, "2b": 250_000_000,
    "3": 300_000_000, "3b": 300_000_000, "3a+": 300_000_000, "3b+": 300_000_000,
    "zero2w": 300_000_000, "02w": 300_000_000,
}


# Every loop parameter must be a field here (catches a rename on either side).
assert set(TIMING_FIELDS) <= {f.name for f in fields(TimingParameters)}

DEFAULT_TIMING = TimingParameters()


# -- timing files ---------------------------------------------------------------------------------

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
    result = replace(base, **checked)
    problems = result.problems()
    if problems:
        raise TimingFileError(f"{source}: " + "; ".join(problems))
    return result


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
