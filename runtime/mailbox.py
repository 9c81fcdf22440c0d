"""The firmware's mailbox property interface, from the ARM side: build messages, parse answers.

Every backend talks to the (real or emulated) VideoCore firmware through
``PropertyMailbox``: it packs one tag into a property message (layout in
qpu.emulator.firmware's docstring; raspberrypi/firmware wiki "Mailbox property
interface"), hands the bytes to a *transport* that lets the firmware rewrite them in
place, and unpacks the answer.  Transports differ only in that last call:

* ``VcioTransport``: ``ioctl(fd, IOCTL_MBOX_PROPERTY, buffer)`` on /dev/vcio.
* the emulator backend: ``qpu.emulator.firmware.Firmware.property``.

Packing is fixed-width little-endian (``'<I'``): native ``'L'`` is 8 bytes on 64-bit
ARM, which silently breaks messages built that way.

``IOCTL_MBOX_PROPERTY`` is ``_IOWR(100, 0, char *)`` (GPU_FFT mailbox.h; Linux
drivers/char/broadcom/vcio.c): its size field is the size of a pointer, so the number
is 0xC0046400 for a 32-bit process and 0xC0086400 for a 64-bit one.  Linux's generic
ioctl encoding (asm-generic/ioctl.h, used by arm and arm64): ``dir << 30 | size << 16 |
type << 8 | nr`` with dir = read|write = 3.

The Linux side (drivers/firmware/raspberrypi.c, drivers/char/broadcom/vcio.c) turns a
firmware error status into ``EINVAL`` (the buffer is then not copied back) and gives up
waiting for the firmware after one second (``ETIMEDOUT``); both arrive here as OSError.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import struct
from typing import Callable, Optional, Sequence, Tuple, Union

from .errors import MailboxError

STATUS_REQUEST = 0x00000000
STATUS_SUCCESS = 0x80000000
STATUS_ERROR = 0x80000001
RESPONSE_BIT = 0x80000000

TAG_GET_FIRMWARE_REVISION = 0x00000001
TAG_GET_BOARD_REVISION = 0x00010002
TAG_GET_VC_MEMORY = 0x00010006
TAG_GET_CLOCK_RATE = 0x00030002
TAG_ALLOCATE_MEMORY = 0x0003000C
TAG_LOCK_MEMORY = 0x0003000D
TAG_UNLOCK_MEMORY = 0x0003000E
TAG_RELEASE_MEMORY = 0x0003000F
TAG_EXECUTE_QPU = 0x00030011
TAG_ENABLE_QPU = 0x00030012

CLOCK_V3D = 5
EXECUTE_QPU_TIMEOUT = 0x80000000

VCIO_IOC_MAGIC = 100
_IOC_READ_WRITE = 3

Transport = Callable[[bytearray], None]


def ioctl_mbox_property(pointer_size: Optional[int] = None) -> int:
    """``_IOWR(100, 0, char *)`` for a process whose pointers are ``pointer_size`` bytes."""
    if pointer_size is None:
        pointer_size = ctypes.sizeof(ctypes.c_void_p)
    return (_IOC_READ_WRITE << 30) | (pointer_size << 16) | (VCIO_IOC_MAGIC << 8) | 0


def build_message(tag: int, request: Sequence[int], response_words: int) -> bytearray:
    """One-tag property message; the value buffer holds the longer of request and response."""
    value_words = max(len(request), response_words)
    values = list(request) + [0] * (value_words - len(request))
    words = [0, STATUS_REQUEST, tag, 4 * value_words, 4 * len(request)] + values + [0]
    words[0] = 4 * len(words)
    return bytearray(struct.pack(f"<{len(words)}I", *(w & 0xFFFFFFFF for w in words)))


def parse_message(buf: Union[bytes, bytearray], response_words: int) -> Tuple[int, int, Tuple[int, ...]]:
    """(buffer status, tag response word, value words) of a one-tag message."""
    status, = struct.unpack_from("<I", buf, 4)
    code, = struct.unpack_from("<I", buf, 16)
    values = struct.unpack_from(f"<{response_words}I", buf, 20) if response_words else ()
    return status, code, tuple(values)


class VcioTransport:
    """ioctl on /dev/vcio through a host (qpu.runtime.host.LinuxHost or a test double)."""

    def __init__(self, host: object) -> None:
        self.host = host
        self.request = ioctl_mbox_property(host.pointer_size())  # type: ignore[attr-defined]
        self.fd: Optional[int] = host.open_vcio()  # type: ignore[attr-defined]

    def __call__(self, buf: bytearray) -> None:
        if self.fd is None:
            raise MailboxError("the /dev/vcio mailbox is closed")
        self.host.ioctl(self.fd, self.request, buf)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            self.host.close(fd)  # type: ignore[attr-defined]


class PropertyMailbox:
    """Typed calls of the property tags the runtime uses, over one transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def call(self, tag: int, request: Sequence[int], response_words: int, name: str,
             allow_unanswered: bool = False) -> Optional[Tuple[int, ...]]:
        """Send one tag; its response values, or None if unanswered and ``allow_unanswered``."""
        buf = build_message(tag, request, response_words)
        try:
            self.transport(buf)
        except OSError as exc:
            if exc.errno == errno_codes.EINVAL:
                raise MailboxError(f"the firmware rejected the '{name}' request (tag {tag:#010x}): the kernel "
                                   "reports a firmware error status (EINVAL); check `dmesg` for "
                                   "'raspberrypi-firmware' messages", exc.errno) from exc
            raise MailboxError(f"the '{name}' mailbox call (tag {tag:#010x}) failed: {exc}", exc.errno) from exc
        status, code, values = parse_message(buf, response_words)
        if status != STATUS_SUCCESS:
            raise MailboxError(f"the firmware answered status {status:#010x} to the '{name}' request "
                               f"(tag {tag:#010x}); 0x80000001 means it could not parse the message")
        if not code & RESPONSE_BIT:
            if allow_unanswered:
                return None
            raise MailboxError(f"the firmware did not answer the '{name}' tag ({tag:#010x}): it does not "
                               "know it; update the firmware (`sudo apt full-upgrade` on Raspberry Pi OS)")
        length = code & ~RESPONSE_BIT
        if length < 4 * response_words:
            raise MailboxError(f"the firmware answered the '{name}' tag ({tag:#010x}) with {length} bytes, "
                               f"expected {4 * response_words}")
        return values

    def _call(self, tag: int, request: Sequence[int], response_words: int, name: str) -> Tuple[int, ...]:
        values = self.call(tag, request, response_words, name)
        assert values is not None
        return values

    # -- information -------------------------------------------------------------------------------

    def firmware_revision(self) -> int:
        return self._call(TAG_GET_FIRMWARE_REVISION, [], 1, "get firmware revision")[0]

    def board_revision(self) -> int:
        return self._call(TAG_GET_BOARD_REVISION, [], 1, "get board revision")[0]

    def vc_memory(self) -> Tuple[int, int]:
        """(base, size) of the VideoCore's share of SDRAM (config.txt gpu_mem)."""
        base, size = self._call(TAG_GET_VC_MEMORY, [], 2, "get VC memory")
        return base, size

    def clock_rate(self, clock_id: int = CLOCK_V3D) -> int:
        """Clock rate in Hz (0 if the clock does not exist); id 5 is the V3D."""
        return self._call(TAG_GET_CLOCK_RATE, [clock_id], 2, "get clock rate")[1]

    # -- memory ------------------------------------------------------------------------------------

    def mem_alloc(self, size: int, align: int, flags: int) -> int:
        """A handle, or 0 when the firmware has no room."""
        return self._call(TAG_ALLOCATE_MEMORY, [size, align, flags], 1, "allocate memory")[0]

    def mem_lock(self, handle: int) -> int:
        """Bus address of a handle's memory (0 on failure)."""
        return self._call(TAG_LOCK_MEMORY, [handle], 1, "lock memory")[0]

    def mem_unlock(self, handle: int) -> int:
        return self._call(TAG_UNLOCK_MEMORY, [handle], 1, "unlock memory")[0]

    def mem_release(self, handle: int) -> int:
        return self._call(TAG_RELEASE_MEMORY, [handle], 1, "release memory")[0]

    # -- QPUs --------------------------------------------------------------------------------------

    def enable_qpu(self, enable: bool) -> Optional[int]:
        """0 on success; non-zero, or None (tag unanswered), when the firmware refuses."""
        values = self.call(TAG_ENABLE_QPU, [1 if enable else 0], 1, "enable QPU", allow_unanswered=True)
        return None if values is None else values[0]

    def execute_qpu(self, num_qpus: int, control: int, noflush: int, timeout_ms: int) -> int:
        """0 on success, 0x80000000 on timeout (GPU_FFT gpu_fft_base.c)."""
        return self._call(TAG_EXECUTE_QPU, [num_qpus, control, noflush, timeout_ms], 1, "execute QPU")[0]
