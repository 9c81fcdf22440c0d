"""The VideoCore firmware's mailbox property interface, emulated byte for byte.

On a Pi the runtime talks to the firmware with ``ioctl(IOCTL_MBOX_PROPERTY)`` on
/dev/vcio, handing it a *property message buffer*; the firmware rewrites that buffer
in place.  ``Firmware.property(buffer)`` does the same to the same bytes, so the
runtime's emulator backend differs from its mailbox backend only in the last call.

Message layout (raspberrypi/firmware wiki, "Mailbox property interface"; the same
layout GPU_FFT's mailbox.c builds, userland hello_fft), all words little-endian u32:

====================  =====================================================================
offset                content
====================  =====================================================================
0                     buffer size in bytes (header, tags, end tag, padding)
4                     request code 0; the firmware writes 0x80000000 (success) or
                      0x80000001 (error parsing the request buffer: partial response)
8...                  tags: id, value-buffer size, request/response word, value buffer
                      padded to 32 bits; the response word gets bit 31 set and the
                      response length in bits 30..0
...                   end tag 0
====================  =====================================================================

Rules followed from the same wiki page: the response overwrites the request; unknown
tags are ignored, their response bit stays clear; a response longer than the value
buffer is truncated to it while the length field still gives the full length; tags
are processed in order.  The request/response word is not read on submit (Linux
include/soc/bcm2835/raspberrypi-firmware.h: "doesn't appear to be currently used by
the firmware"), only the value-buffer size is.

Tags answered (ids from the wiki and the Linux header above; QPU tags from GPU_FFT):

* 0x00000001 firmware revision, 0x00010001 board model, 0x00010002 board revision,
  0x00010005 ARM memory, 0x00010006 VC memory (base, size of the GPU's share)
* 0x00030002 / 0x00030004 / 0x00030007 clock rate / max / min (clock id 5 = V3D,
  4 = CORE; any other id answers rate 0, "the clock does not exist", as the wiki says)
* 0x0003000c allocate (size, align, flags -> handle, 0 on failure), 0x0003000d lock
  (-> bus address, 0 for a bad handle), 0x0003000e unlock and 0x0003000f release
  (-> status, 0 = success)
* 0x00030011 execute QPU (num_qpus, control-list bus address, noflush, timeout_ms ->
  0 on success, 0x80000000 on timeout: GPU_FFT gpu_fft_base.c)
* 0x00030012 enable QPU (0 disables, anything else enables -> 0 on success)

Refusals a real firmware makes and that the runtime must explain (both emulated by
flags so its error handling can be tested):

* ``kms_owns_v3d``: with ``dtoverlay=vc4-kms-v3d`` (or ``vc4-fkms-v3d``) Linux drives
  the V3D and the firmware disables its QPU tags (raspberrypi/firmware#669, #981).
  hello_fft then prints "Unable to enable V3D" without an ioctl failure, so the tag is
  answered with a non-zero value; the exact value is undocumented: this emulation
  answers 1 to enable and 0x80000000 to execute.
* ``cut_down``: ``gpu_mem=16`` boots the cut-down firmware, which has no 3D support
  (raspberrypi/firmware#981, raspberrypi/linux#4030): same answers.

Where this emulation differs from the hardware, on purpose:

* Errors the emulated V3D finds (rule violations, deadlocks, bad addresses) propagate
  out of ``property()`` as Python exceptions (``EmulatorError`` subclasses) instead of
  a silent hang or garbage, so the runtime can show them.  Only a job that exceeds its
  timeout is turned into the hardware's answer, 0x80000000; the exception is kept in
  ``last_error`` for its details (each QPU's PC).  In the V3D's lenient mode a job
  that did not complete (timeout or deadlock, ``report.completed`` False) gets the
  same answer.
* Misuse that a real firmware would hang on or answer with undocumented values raises
  ``FirmwareError``: executing before enabling the QPUs, a QPU count outside 1..12, a
  control list outside locked GPU memory.
* A malformed buffer (size not a multiple of 4, larger than the buffer, request code
  not 0, a tag running past the end, no end tag) is answered 0x80000001 and the tags
  already processed keep their answers.  A tag whose value buffer is smaller than its
  request is left unanswered.  Real firmware behaviour in these cases is undocumented.
* ``noflush`` is accepted and does not change what a job computes (the emulator's caches
  model timing only and hold no data).  Which caches the real firmware flushes when it is 0
  is undocumented, so the timing model's caches are left as the previous job left them;
  ``V3D.clear_caches()`` models an explicit clear (GPU_FFT's direct launch writes
  V3D_L2CACTL / V3D_SLCACTL itself).
* A job is complete when every started program has ended (the V3D's job end).  What
  the real firmware waits for is undocumented: GPU_FFT's shaders (qasm/gpu_fft.qinc
  ``exit``) and py-videocore's ``exit()`` raise a host interrupt before ``thrend``,
  which suggests it counts host interrupts; programs should do the same (the DSL's
  ``exit()`` does), and the job report counts them (``host_interrupts``).
* The Linux driver between the ioctl and the firmware is not part of this class: it
  rebuilds the header, turns a 0x80000001 answer into EINVAL and gives up after 1 s
  (ETIMEDOUT).  The runtime's tests model that layer separately (tests/fakepi.py).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from qpu.errors import QPUError

from .memory import GPUMemory

# --- buffer and tag codes (raspberrypi/firmware wiki; Linux raspberrypi-firmware.h) ----------
STATUS_REQUEST = 0x00000000
STATUS_SUCCESS = 0x80000000
STATUS_ERROR = 0x80000001
RESPONSE_BIT = 0x80000000
END_TAG = 0x00000000

TAG_GET_FIRMWARE_REVISION = 0x00000001
TAG_GET_BOARD_MODEL = 0x00010001
TAG_GET_BOARD_REVISION = 0x00010002
TAG_GET_ARM_MEMORY = 0x00010005
TAG_GET_VC_MEMORY = 0x00010006
TAG_GET_CLOCK_RATE = 0x00030002
TAG_GET_MAX_CLOCK_RATE = 0x00030004
TAG_GET_MIN_CLOCK_RATE = 0x00030007
TAG_ALLOCATE_MEMORY = 0x0003000C
TAG_LOCK_MEMORY = 0x0003000D
TAG_UNLOCK_MEMORY = 0x0003000E
TAG_RELEASE_MEMORY = 0x0003000F
TAG_EXECUTE_QPU = 0x00030011
TAG_ENABLE_QPU = 0x00030012

# clock ids (wiki, "Clocks")
CLOCK_ARM = 3
CLOCK_CORE = 4
CLOCK_V3D = 5

EXECUTE_QPU_TIMEOUT = 0x80000000   # execute QPU's answer when the job timed out (GPU_FFT)
ENABLE_QPU_REFUSED = 1             # see the module docstring: non-zero, exact value undocumented
MAX_QPUS = 12                      # 3 slices of 4 QPUs (guide p.13; the control list holds 12 pairs)

DEFAULT_CLOCK_HZ = 250_000_000     # V3D and core clock of a Pi 1 / Zero / 2 at default settings
DEFAULT_BOARD_REVISION = 0xA02082  # Raspberry Pi 3 Model B rev 1.2 (new-style revision code)
# An emulator build, not a real firmware's build time (real revisions are Unix times).
EMULATOR_FIRMWARE_REVISION = 0x00000001

_WORD = struct.Struct("<I")


class FirmwareError(QPUError):
    """A property request the emulated firmware refuses where a real one would hang or misbehave."""


class TagCall(NamedTuple):
    """One processed tag, kept in ``Firmware.log`` for tests and debugging."""

    tag: int
    request: Tuple[int, ...]
    response: Optional[Tuple[int, ...]]   # None: left unanswered


def _is_timeout(exc: BaseException) -> bool:
    """True for the emulated V3D's 'job exceeded its timeout' error (rule id ``timeout``)."""
    for attr in ("rule_id", "rule"):
        value = getattr(exc, attr, None)
        if value == "timeout" or getattr(value, "id", None) == "timeout":
            return True
    return False


class Firmware:
    """The mailbox property interface of the VideoCore firmware over emulated GPU memory.

    ``v3d`` is anything with ``execute(num_qpus, control_bus_address, timeout_ms)``
    returning a job report (qpu.emulator.v3d.V3D); it may be None if no job is run.
    """

    def __init__(self, memory: GPUMemory, v3d: Any = None, *,
                 board_revision: int = DEFAULT_BOARD_REVISION,
                 firmware_revision: int = EMULATOR_FIRMWARE_REVISION,
                 clock_hz: Optional[int] = None,
                 core_clock_hz: int = DEFAULT_CLOCK_HZ,
                 kms_owns_v3d: bool = False,
                 cut_down: bool = False) -> None:
        self.memory = memory
        self.v3d = v3d
        self.board_revision = board_revision & 0xFFFFFFFF
        self.firmware_revision = firmware_revision & 0xFFFFFFFF
        if clock_hz is None:
            clock_hz = int(getattr(v3d, "clock_hz", DEFAULT_CLOCK_HZ))
        self.clock_hz = int(clock_hz)
        self.core_clock_hz = int(core_clock_hz)
        self.kms_owns_v3d = kms_owns_v3d
        self.cut_down = cut_down
        self.qpu_enabled = False
        self.last_report: Any = None
        self.last_error: Optional[BaseException] = None
        self.last_control_list: List[Tuple[int, int]] = []
        self.log: List[TagCall] = []
        # tag id -> (number of request words, handler returning the response words)
        self._handlers: Dict[int, Tuple[int, Callable[..., Sequence[int]]]] = {
            TAG_GET_FIRMWARE_REVISION: (0, lambda: [self.firmware_revision]),
            TAG_GET_BOARD_MODEL: (0, lambda: [0]),
            TAG_GET_BOARD_REVISION: (0, lambda: [self.board_revision]),
            TAG_GET_ARM_MEMORY: (0, lambda: [0, self.memory.phys_base]),
            TAG_GET_VC_MEMORY: (0, lambda: [self.memory.phys_base, self.memory.size]),
            TAG_GET_CLOCK_RATE: (1, self._clock_rate),
            TAG_GET_MAX_CLOCK_RATE: (1, self._clock_rate),
            TAG_GET_MIN_CLOCK_RATE: (1, self._clock_rate),
            TAG_ALLOCATE_MEMORY: (3, lambda size, align, flags: [self.memory.alloc(size, align, flags)]),
            TAG_LOCK_MEMORY: (1, lambda handle: [self.memory.lock(handle)]),
            TAG_UNLOCK_MEMORY: (1, lambda handle: [self.memory.unlock(handle)]),
            TAG_RELEASE_MEMORY: (1, lambda handle: [self.memory.release(handle)]),
            TAG_EXECUTE_QPU: (4, self._execute_qpu),
            TAG_ENABLE_QPU: (1, self._enable_qpu),
        }

    # -- the property interface ------------------------------------------------------------------

    def property(self, buffer: Any) -> None:
        """Process one property message in place (bytearray, memoryview or numpy array)."""
        view = memoryview(buffer)
        if view.readonly:
            raise FirmwareError("the property buffer must be writable: the firmware answers in place")
        buf = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        if len(buf) < 12:
            raise FirmwareError(f"a property buffer needs at least 12 bytes (size, code, end tag), got {len(buf)}")
        size = _WORD.unpack_from(buf, 0)[0]
        code = _WORD.unpack_from(buf, 4)[0]
        if size < 12 or size % 4 or size > len(buf) or code != STATUS_REQUEST:
            _WORD.pack_into(buf, 4, STATUS_ERROR)
            return
        offset = 8
        while True:
            if offset + 4 > size:
                _WORD.pack_into(buf, 4, STATUS_ERROR)     # no end tag inside the buffer
                return
            tag = _WORD.unpack_from(buf, offset)[0]
            if tag == END_TAG:
                break
            if offset + 12 > size:
                _WORD.pack_into(buf, 4, STATUS_ERROR)
                return
            value_size = _WORD.unpack_from(buf, offset + 4)[0]
            value_at = offset + 12
            if value_at + value_size > size:
                _WORD.pack_into(buf, 4, STATUS_ERROR)     # tag runs past the end: partial response
                return
            self._process_tag(buf, tag, value_at, value_size, offset + 8)
            offset = value_at + (value_size + 3) // 4 * 4
        _WORD.pack_into(buf, 4, STATUS_SUCCESS)

    def _process_tag(self, buf: memoryview, tag: int, value_at: int, value_size: int, code_at: int) -> None:
        entry = self._handlers.get(tag)
        if entry is None:
            self.log.append(TagCall(tag, (), None))          # unknown tag: ignored, response bit clear
            return
        n_request, handler = entry
        if value_size < 4 * n_request:
            self.log.append(TagCall(tag, (), None))
            return
        request = tuple(_WORD.unpack_from(buf, value_at + 4 * i)[0] for i in range(n_request))
        response = tuple(int(v) & 0xFFFFFFFF for v in handler(*request))
        self.log.append(TagCall(tag, request, response))
        data = b"".join(_WORD.pack(v) for v in response)
        n = min(len(data), value_size)
        buf[value_at:value_at + n] = data[:n]
        _WORD.pack_into(buf, code_at, RESPONSE_BIT | len(data))

    # -- tag handlers ------------------------------------------------------------------------------

    def _clock_rate(self, clock_id: int) -> List[int]:
        rates = {CLOCK_V3D: self.clock_hz, CLOCK_CORE: self.core_clock_hz}
        return [clock_id, rates.get(clock_id, 0)]

    def _v3d_unavailable(self) -> bool:
        return self.kms_owns_v3d or self.cut_down

    def _enable_qpu(self, enable: int) -> List[int]:
        if not enable:
            self.qpu_enabled = False
            return [0]
        if self._v3d_unavailable():
            return [ENABLE_QPU_REFUSED]
        self.qpu_enabled = True
        return [0]

    def _execute_qpu(self, num_qpus: int, control: int, noflush: int, timeout_ms: int) -> List[int]:
        if self._v3d_unavailable():
            return [EXECUTE_QPU_TIMEOUT]
        if not self.qpu_enabled:
            raise FirmwareError("execute QPU (tag 0x30011) before enable QPU (tag 0x30012): a real V3D is "
                                "powered down then and the call times out; enable the QPUs first")
        if not 1 <= num_qpus <= MAX_QPUS:
            raise FirmwareError(f"execute QPU asks for {num_qpus} QPU programs: the V3D has {MAX_QPUS} QPUs "
                                f"and the control list holds 1..{MAX_QPUS} (uniforms, code) pairs")
        if control % 4 or not self.memory.is_accessible(control, 8 * num_qpus):
            raise FirmwareError(f"execute QPU: the control list at bus address {control:#010x} "
                                f"({num_qpus} pairs, {8 * num_qpus} bytes) is not in allocated, locked GPU "
                                "memory (or not 4-byte aligned): the firmware would read garbage; pass the "
                                "bus address of a locked allocation")
        off = self.memory.offset_of_bus(control)
        words = self.memory.data[off:off + 8 * num_qpus].view("<u4")
        self.last_control_list = [(int(words[2 * i]), int(words[2 * i + 1])) for i in range(num_qpus)]
        if self.v3d is None:
            raise FirmwareError("this emulated firmware has no V3D attached: create Firmware(memory, v3d)")
        self.last_report = None
        self.last_error = None
        try:
            report = self.v3d.execute(num_qpus, control, timeout_ms)
        except Exception as exc:
            if _is_timeout(exc):
                self.last_error = exc
                self.last_report = getattr(exc, "report", None)
                return [EXECUTE_QPU_TIMEOUT]
            raise
        self.last_report = report
        if getattr(report, "completed", True) is False:
            # lenient mode: a timeout or deadlock the V3D reported instead of raising; a Pi would
            # still be waiting when the firmware's timeout expires
            return [EXECUTE_QPU_TIMEOUT]
        return [0]
