"""Which Raspberry Pi is this?  Model, SoC and what that means for the QPU runtime.

Sources of the facts used here:

* ``/proc/device-tree/model`` holds the model name (NUL-terminated), e.g.
  "Raspberry Pi 3 Model B Rev 1.2"; ``/proc/cpuinfo`` has ``Revision`` (and on newer
  kernels ``Model``) lines.
* Revision codes (Raspberry Pi documentation, "Raspberry Pi revision codes"):
  new-style codes have bit 23 set and the layout ``NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR``:
  bits 12-15 processor (0 BCM2835, 1 BCM2836, 2 BCM2837, 3 BCM2711, 4 BCM2712), bits
  4-11 type (0x00 A, 0x01 B, 0x02 A+, 0x03 B+, 0x04 2B, 0x06 CM1, 0x08 3B, 0x09 Zero,
  0x0a CM3, 0x0c Zero W, 0x0d 3B+, 0x0e 3A+, 0x10 CM3+, 0x11 4B, 0x12 Zero 2 W, 0x13 400,
  0x14 CM4, 0x15 CM4S, 0x17 5, 0x18 CM5, 0x19 500, 0x1a CM5 Lite).  Old-style codes
  (0x0002..0x0015) are all BCM2835 boards.  The firmware's "get board revision"
  property tag returns the same code.
* Pi 4 and 5 (BCM2711/BCM2712) have a VideoCore VI/VII whose V3D 4.x QPUs use another
  instruction set; the firmware does not run QPU jobs there (raspberrypi/firmware#1205).
* GPU memory flags per SoC (GPU_FFT gpu_fft_base.c): on a BCM2835 (Pi 1, Zero) the ARM
  sees memory through the VideoCore's L2 cache, so data may use the L2-cached alias
  (flags 0xC, bus 0x4xxxxxxx); on BCM2836/7 (Pi 2, 3, Zero 2) "ARM cannot see VC4 L2",
  so data must use the uncached alias (flags 0x4 = MEM_FLAG_DIRECT, bus 0xCxxxxxxx).
* Peripheral base (bcm_host's method): ``/proc/device-tree/soc/ranges`` holds
  (child address, parent address, size) as big-endian words; the parent address is the
  ARM physical base of the peripherals (0x20000000 on BCM2835, 0x3F000000 on BCM2836/7).
"""

from __future__ import annotations

import re
import struct
from typing import Dict, NamedTuple, Optional

from .errors import DriverConfigError

BCM2835, BCM2836, BCM2837, BCM2711, BCM2712 = "BCM2835", "BCM2836", "BCM2837", "BCM2711", "BCM2712"
SUPPORTED_SOCS = (BCM2835, BCM2836, BCM2837)
_SOC_OF_PROCESSOR = {0: BCM2835, 1: BCM2836, 2: BCM2837, 3: BCM2711, 4: BCM2712}
PERIPHERAL_BASE = {BCM2835: 0x20000000, BCM2836: 0x3F000000, BCM2837: 0x3F000000}
PERIPHERAL_SIZE = 0x01000000
V3D_REGISTER_OFFSET = 0xC00000   # V3D registers from the peripheral base (GPU_FFT gpu_fft_base.c V3D_*)

_TYPE_NAMES: Dict[int, str] = {
    0x00: "A", 0x01: "B", 0x02: "A+", 0x03: "B+", 0x04: "2B", 0x05: "Alpha", 0x06: "CM1", 0x08: "3B",
    0x09: "Zero", 0x0A: "CM3", 0x0C: "Zero W", 0x0D: "3B+", 0x0E: "3A+", 0x10: "CM3+", 0x11: "4B",
    0x12: "Zero 2 W", 0x13: "400", 0x14: "CM4", 0x15: "CM4S", 0x17: "5", 0x18: "CM5", 0x19: "500",
    0x1A: "CM5 Lite",
}

# Names accepted for ``pi_model`` -> a representative revision code of that board
# (codes from the revision-code table of the Raspberry Pi documentation).
_MODEL_CODES: Dict[str, int] = {
    "1": 0x0010, "b+": 0x0010, "1b+": 0x0010, "a+": 0x0012, "1a+": 0x0012, "b": 0x000E, "1b": 0x000E,
    "a": 0x0008, "cm1": 0x0014,
    "zero": 0x900092, "zerow": 0x9000C1,
    "2": 0xA01041, "2b": 0xA01041,
    "3": 0xA02082, "3b": 0xA02082, "3b+": 0xA020D3, "3a+": 0x9020E0, "cm3": 0xA020A0,
    "zero2w": 0x902120, "zero2": 0x902120,
    "4": 0xC03111, "4b": 0xC03111, "400": 0xC03130, "cm4": 0xA03140,
    "5": 0xD04170,
}


class PiInfo(NamedTuple):
    """What the runtime needs to know about the board."""

    model: str                 # e.g. "Raspberry Pi 3 Model B Rev 1.2"
    soc: str                   # BCM2835 .. BCM2712
    revision: Optional[int]    # revision code, when known

    @property
    def supported(self) -> bool:
        """True for the VideoCore IV boards (Pi 1, Zero, 2, 3, Zero 2)."""
        return self.soc in SUPPORTED_SOCS

    @property
    def ram_is_l2_coherent(self) -> bool:
        """True on a BCM2835, where the ARM's accesses go through the VideoCore L2."""
        return self.soc == BCM2835

    @property
    def peripheral_base(self) -> Optional[int]:
        return PERIPHERAL_BASE.get(self.soc)

    def __str__(self) -> str:
        rev = f", revision {self.revision:#x}" if self.revision is not None else ""
        return f"{self.model} ({self.soc}{rev})"


def soc_of_revision(code: int) -> str:
    """The SoC of a revision code (new style: processor field; old style: always BCM2835)."""
    if code & (1 << 23):
        processor = (code >> 12) & 0xF
        soc = _SOC_OF_PROCESSOR.get(processor)
        if soc is None:
            return f"unknown processor {processor}"
        return soc
    return BCM2835


def board_type_of_revision(code: int) -> str:
    """The board type name of a revision code ("3B", "Zero W"...); old-style codes are Pi 1 boards."""
    if code & (1 << 23):
        t = (code >> 4) & 0xFF
        return _TYPE_NAMES.get(t, f"type {t:#x}")
    return "1 (old-style revision code)"


def _soc_of_model_name(model: str) -> Optional[str]:
    m = model.lower()
    if "raspberry pi" not in m:
        return None
    if re.search(r"pi 5|pi 500|compute module 5", m):
        return BCM2712
    if re.search(r"pi 4|pi 400|compute module 4", m):
        return BCM2711
    if re.search(r"pi 3|zero 2|compute module 3", m):
        return BCM2837
    if re.search(r"pi 2", m):
        return BCM2836
    return BCM2835   # "Raspberry Pi Model B Rev 2", "Raspberry Pi Zero W", "Compute Module Rev 1.0"


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return None


def _cpuinfo_fields(text: str) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def detect_pi(model_path: str = "/proc/device-tree/model",
              cpuinfo_path: str = "/proc/cpuinfo") -> Optional[PiInfo]:
    """The board this runs on, or None when it is not a Raspberry Pi."""
    model = _read_text(model_path) or ""
    cpuinfo = _cpuinfo_fields(_read_text(cpuinfo_path) or "")
    if "raspberry pi" not in model.lower():
        model = cpuinfo.get("model", "")
    revision: Optional[int] = None
    rev_text = cpuinfo.get("revision")
    if rev_text:
        try:
            revision = int(rev_text, 16)
        except ValueError:
            revision = None
    soc = _soc_of_model_name(model)
    if soc is None:
        return None
    if revision is not None:
        soc = soc_of_revision(revision)
    return PiInfo(model, soc, revision)


def pi_from_revision(code: int, model: str = "") -> PiInfo:
    """PiInfo from a revision code (e.g. the firmware's board-revision answer)."""
    soc = soc_of_revision(code)
    return PiInfo(model or f"Raspberry Pi {board_type_of_revision(code)}", soc, code)


def pi_from_name(name: str) -> PiInfo:
    """PiInfo for a ``pi_model`` argument: "zero", "zerow", "1", "2", "3", "3b+", "zero2w", "4", "5"..."""
    key = re.sub(r"[\s_\-]", "", str(name).lower())
    key = key.replace("raspberrypi", "").replace("pi", "").replace("model", "")
    code = _MODEL_CODES.get(key)
    if code is None:
        names = ", ".join(sorted(_MODEL_CODES))
        raise DriverConfigError(f"unknown pi_model {name!r}: use one of {names}")
    return pi_from_revision(code)


def revision_code_of(pi: PiInfo) -> int:
    """A revision code for a PiInfo (its own, or a representative one of its SoC)."""
    if pi.revision is not None:
        return pi.revision
    return {BCM2835: 0x900092, BCM2836: 0xA01041, BCM2837: 0xA02082,
            BCM2711: 0xC03111, BCM2712: 0xD04170}.get(pi.soc, 0)


def peripheral_base(ranges_path: str = "/proc/device-tree/soc/ranges", soc: Optional[str] = None) -> Optional[int]:
    """ARM physical address of the peripherals, from the device tree, else from the SoC."""
    try:
        with open(ranges_path, "rb") as f:
            data = f.read(16)
    except OSError:
        data = b""
    if len(data) >= 8:
        _child, parent = struct.unpack(">II", data[:8])
        if parent == 0 and len(data) >= 12:       # two address cells (BCM2711): the next word
            parent = struct.unpack(">I", data[8:12])[0]
        if parent:
            return int(parent)
    if soc is not None:
        return PERIPHERAL_BASE.get(soc)
    return None
