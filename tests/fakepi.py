"""Test doubles for the runtime: a Raspberry Pi without a Raspberry Pi.

* ``StubV3D``: stands in for qpu.emulator.v3d.V3D (same ``execute`` signature).  It
  does not run QPU code; each started program copies ``count`` words from ``src`` to
  ``dst`` adding its QPU index, where (src, dst, count) are its first three uniforms.
  That is enough to check that addresses, uniforms and memory mapping are right.
* ``FakePiHost``: replaces qpu.runtime.host.LinuxHost.  /dev/vcio ioctls are answered
  by the emulated firmware (qpu.emulator.firmware.Firmware) through a model of the
  Linux layer in between (drivers/char/broadcom/vcio.c + drivers/firmware/raspberrypi.c):
  the kernel copies ``size`` bytes, rebuilds the header, returns EINVAL when the
  firmware answers an error status (buffer not copied back), ETIMEDOUT when the
  firmware takes more than 1 s, and sets the status word to 0x80000000 otherwise.
  /dev/mem maps onto the emulated GPU memory; the V3D register page is a numpy
  array whose performance counters count when enabled.  Every ioctl is recorded.
"""

from __future__ import annotations

import errno
import struct
from types import SimpleNamespace
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from qpu.emulator.firmware import Firmware
from qpu.emulator.memory import GPUMemory
from qpu.errors import QPUError
from qpu.runtime.host import LinuxHost

# _IOWR(100, 0, char *) worked out by hand from asm-generic/ioctl.h:
# dir (read|write = 3) << 30 | sizeof(char *) << 16 | 100 << 8 | 0
IOCTL_32BIT = 0xC0046400
IOCTL_64BIT = 0xC0086400
V3D_PAGE_PHYS = {"BCM2835": 0x20C00000, "BCM2836": 0x3FC00000, "BCM2837": 0x3FC00000}


class StubTimeout(QPUError):
    """What the emulator core raises when a job exceeds its timeout (rule id 'timeout')."""

    rule_id = "timeout"


class StubFault(QPUError):
    """Any other emulator error (a rule violation)."""

    rule_id = "memory-out-of-bounds"


TIMEOUT_MARK = 0x7100_0001     # a program whose count uniform is this never ends
FAULT_MARK = 0x7100_0002       # a program whose count uniform is this violates a rule
LONG_MARK = 0x7100_0003        # a program that runs for 2 s


class StubV3D:
    def __init__(self, memory: GPUMemory, clock_hz: int = 250_000_000) -> None:
        self.memory = memory
        self.clock_hz = clock_hz
        self.calls: List[Dict[str, Any]] = []
        self.registered: Dict[int, Any] = {}

    def register_program(self, code_bus_address: int, program: Any) -> None:
        self.registered[code_bus_address] = program

    def _words(self, bus: int, n: int) -> np.ndarray:
        if not self.memory.is_accessible(bus, 4 * n):
            raise StubFault(f"access to {bus:#010x} outside locked GPU memory")
        off = self.memory.offset_of_bus(bus)
        return self.memory.data[off:off + 4 * n].view("<u4")

    def execute(self, num_qpus: int, control_bus_address: int, timeout_ms: int = 10000,
                *, threads_per_qpu: int = 1) -> Any:
        pairs = self._words(control_bus_address, 2 * num_qpus).reshape(num_qpus, 2)
        call = {"num_qpus": num_qpus, "control": control_bus_address, "timeout_ms": timeout_ms,
                "pairs": [(int(u), int(c)) for u, c in pairs]}
        self.calls.append(call)
        cycles = 100
        for q, (unif, code) in enumerate(call["pairs"]):
            self._words(code, 2)                        # the code must be readable
            src, dst, count = (int(v) for v in self._words(unif, 3))
            if count == TIMEOUT_MARK:
                raise StubTimeout(f"job exceeded {timeout_ms} ms; QPU {q} at PC 0x18")
            if count == FAULT_MARK:
                raise StubFault(f"QPU {q}: TMU read at 0x00000000 outside GPU memory")
            if count == LONG_MARK:
                cycles = 2 * self.clock_hz
                continue
            self._words(dst, count)[:] = self._words(src, count) + np.uint32(q)
        return SimpleNamespace(instructions=10 * num_qpus, cycles=cycles, seconds=cycles / self.clock_hz,
                               clock_hz=self.clock_hz, per_qpu=[{"qpu": q} for q in range(num_qpus)],
                               stalls={"tmu": 8}, hazards=[], host_interrupts=num_qpus)


class IoctlCall(NamedTuple):
    fd: int
    request: int
    sent: bytes       # the user buffer before the call
    received: bytes   # after (unchanged when the call failed)
    error: Optional[int]


def tags_of(message: bytes) -> List[int]:
    """Tag ids of a property message, in order (parsed independently of the runtime)."""
    size = struct.unpack_from("<I", message, 0)[0]
    out, off = [], 8
    while off + 4 <= size:
        tag = struct.unpack_from("<I", message, off)[0]
        if tag == 0:
            break
        vsize = struct.unpack_from("<I", message, off + 4)[0]
        out.append(tag)
        off += 12 + (vsize + 3) // 4 * 4
    return out


def value_words(message: bytes, n: int) -> Tuple[int, ...]:
    return struct.unpack_from(f"<{n}I", message, 20)


MODEL_PI3 = "Raspberry Pi 3 Model B Rev 1.2"
MODEL_ZERO = "Raspberry Pi Zero W Rev 1.1"
CPUINFO = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nHardware\t: BCM2835\nRevision\t: {rev}\n"


class FakePiHost(LinuxHost):
    """A Raspberry Pi as the mailbox backend sees it, backed by the emulated firmware."""

    def __init__(self, tmp_path: Any, *, model: Optional[str] = MODEL_PI3, revision: Optional[int] = 0xA02082,
                 firmware: Optional[Firmware] = None, gpu_mem: int = 64 << 20, pointer_size: int = 4,
                 config_txt: str = "gpu_mem=64\n", vcio: bool = True, vcio_error: Optional[OSError] = None,
                 mem_error: Optional[OSError] = None, vc4_loaded: bool = False,
                 ranges: Optional[bytes] = None, kernel_einval_tags: Tuple[int, ...] = (),
                 v3d: Any = None, **firmware_options: Any) -> None:
        self.tmp = tmp_path
        self.model_path = str(tmp_path / "model")
        self.cpuinfo_path = str(tmp_path / "cpuinfo")
        self.ranges_path = str(tmp_path / "ranges")
        self.vcio_path = "/fake/dev/vcio"
        self.mem_path = "/fake/dev/mem"
        self.vc4_module_path = "/fake/sys/module/vc4"
        self.config_paths = (str(tmp_path / "config.txt"),)
        if model is not None:
            (tmp_path / "model").write_bytes(model.encode() + b"\x00")
        (tmp_path / "cpuinfo").write_text(CPUINFO.format(rev=f"{revision:06x}") if revision is not None else
                                          "processor\t: 0\n")
        (tmp_path / "config.txt").write_text(config_txt)
        soc = _soc_of(revision)
        if ranges is None:
            base = {"BCM2835": 0x20000000}.get(soc, 0x3F000000)
            ranges = struct.pack(">III", 0x7E000000, base, 0x01000000)
        (tmp_path / "ranges").write_bytes(ranges)
        if firmware is None:
            memory = GPUMemory(gpu_mem)
            firmware = Firmware(memory, v3d if v3d is not None else StubV3D(memory),
                                board_revision=revision if revision is not None else 0xA02082,
                                **firmware_options)
        self.firmware = firmware
        self.memory = firmware.memory
        self._pointer_size = pointer_size
        self._vcio = vcio
        self._vcio_error = vcio_error
        self._mem_error = mem_error
        self._vc4_loaded = vc4_loaded
        self.kernel_einval_tags = kernel_einval_tags
        self.calls: List[IoctlCall] = []
        self.open_fds: Dict[int, str] = {}
        self.closed_fds: List[int] = []
        self.maps: List[Tuple[int, int]] = []
        self.unmapped: List[Tuple[int, int]] = []
        self.v3d_regs = np.zeros(1024, dtype=np.uint32)
        self.v3d_page = V3D_PAGE_PHYS.get(soc, 0x3FC00000)
        self._next_fd = 3

    # -- LinuxHost interface -------------------------------------------------------------------

    def pointer_size(self) -> int:
        return self._pointer_size

    def exists(self, path: str) -> bool:
        if path == self.vcio_path:
            return self._vcio
        if path == self.vc4_module_path:
            return self._vc4_loaded
        return super().exists(path)

    def _new_fd(self, what: str) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.open_fds[fd] = what
        return fd

    def open_vcio(self) -> int:
        if not self._vcio:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", self.vcio_path)
        if self._vcio_error is not None:
            raise self._vcio_error
        return self._new_fd("vcio")

    def open_mem(self) -> int:
        if self._mem_error is not None:
            raise self._mem_error
        return self._new_fd("mem")

    def close(self, fd: int) -> None:
        assert fd in self.open_fds, f"closing fd {fd} that is not open"
        del self.open_fds[fd]
        self.closed_fds.append(fd)

    def ioctl(self, fd: int, request: int, buf: bytearray) -> None:
        sent = bytes(buf)
        try:
            self._kernel_property(fd, request, buf)
        except OSError as exc:
            self.calls.append(IoctlCall(fd, request, sent, bytes(buf), exc.errno))
            raise
        self.calls.append(IoctlCall(fd, request, sent, bytes(buf), None))

    def _kernel_property(self, fd: int, request: int, buf: bytearray) -> None:
        if self.open_fds.get(fd) != "vcio":
            raise OSError(errno.EBADF, "Bad file descriptor")
        expected = IOCTL_64BIT if self._pointer_size == 8 else IOCTL_32BIT
        if request != expected:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        size = struct.unpack_from("<I", buf, 0)[0]
        if size > len(buf) or size < 12 or size % 4:
            raise OSError(errno.EFAULT, "Bad address")
        # rpi_firmware_property_list: its own buffer, header rebuilt, end tag forced.
        kbuf = bytearray(buf[:size])
        struct.pack_into("<II", kbuf, 0, size, 0)
        struct.pack_into("<I", kbuf, size - 4, 0)
        if set(tags_of(bytes(kbuf))) & set(self.kernel_einval_tags):
            struct.pack_into("<I", kbuf, 4, 0x80000001)
        else:
            before = self.firmware.last_report
            self.firmware.property(kbuf)
            report = self.firmware.last_report
            if report is not None and report is not before and getattr(report, "seconds", 0) > 1.0:
                raise OSError(errno.ETIMEDOUT, "Connection timed out")
            self._count(report if report is not before else None)
        if struct.unpack_from("<I", kbuf, 4)[0] != 0x80000000:
            raise OSError(errno.EINVAL, "Invalid argument")
        struct.pack_into("<I", kbuf, 4, 0x80000000)
        buf[:size] = kbuf

    def _count(self, report: Any) -> None:
        """Enabled performance counters count: counter n gets 1000 * (n + 1) + its source id per job."""
        if report is None:
            return
        enable = int(self.v3d_regs[0x674 // 4])
        if not enable & (1 << 31):
            return
        for n in range(16):
            if enable & (1 << n):
                source = int(self.v3d_regs[(0x684 + 8 * n) // 4]) & 0x1F
                self.v3d_regs[(0x680 + 8 * n) // 4] += 1000 * (n + 1) + source

    def map_physical(self, mem_fd: int, phys: int, size: int) -> Tuple[Any, Any]:
        assert self.open_fds.get(mem_fd) == "mem"
        assert phys % 4096 == 0, "mmap offsets must be page aligned"
        self.maps.append((phys, size))
        if phys == self.v3d_page:
            return self.v3d_regs, (lambda: self.unmapped.append((phys, size)))
        off = phys - self.memory.phys_base
        if not 0 <= off and off + size <= self.memory.size:
            raise OSError(errno.EINVAL, f"fake /dev/mem: {phys:#x} is not GPU memory")
        return self.memory.data[off:off + size], (lambda: self.unmapped.append((phys, size)))

    # -- helpers for tests ---------------------------------------------------------------------

    def tag_sequence(self) -> List[int]:
        return [t for c in self.calls for t in tags_of(c.sent)]


def _soc_of(revision: Optional[int]) -> str:
    if revision is None:
        return "BCM2837"
    if revision & (1 << 23):
        return {0: "BCM2835", 1: "BCM2836", 2: "BCM2837", 3: "BCM2711", 4: "BCM2712"}[(revision >> 12) & 0xF]
    return "BCM2835"


def stub_emulator_backend(gpu_mem: int = 64 << 20, **firmware_options: Any) -> Any:
    """The runtime's emulator backend over the stub V3D (until/unless the real core is wanted)."""
    from qpu.runtime.backends import EmulatorBackend

    memory = GPUMemory(gpu_mem)
    return EmulatorBackend(v3d=StubV3D(memory), memory=memory, firmware_options=firmware_options or None)
