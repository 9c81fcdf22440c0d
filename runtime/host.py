"""Everything the mailbox backend needs from the operating system, in one replaceable object.

``LinuxHost`` opens /dev/vcio, issues the ioctl, maps physical memory through
/dev/mem and reads the files that describe the board.  Tests replace it with a fake
(tests/fakepi.py) that answers with the emulated firmware, so the mailbox backend
runs byte for byte as on a Pi without one.  Paths are attributes so a test (or an
unusual system) can point them elsewhere.

/dev/mem is opened with O_SYNC so the ARM maps the GPU's memory uncached (GPU_FFT
mailbox.c mapmem does the same), and mapped at page-aligned physical addresses
``bus & ~0xC0000000`` (GPU_FFT's BUS_TO_PHYS).
"""

from __future__ import annotations

import ctypes
import mmap
import os
from typing import Any, Callable, List, Tuple

PAGE_SIZE = 4096


class LinuxHost:
    """The real thing: a Raspberry Pi running Linux."""

    vcio_path = "/dev/vcio"
    mem_path = "/dev/mem"
    model_path = "/proc/device-tree/model"
    cpuinfo_path = "/proc/cpuinfo"
    ranges_path = "/proc/device-tree/soc/ranges"
    vc4_module_path = "/sys/module/vc4"
    # Raspberry Pi OS Bookworm moved config.txt to /boot/firmware; older releases use /boot.
    config_paths: Tuple[str, ...] = ("/boot/firmware/config.txt", "/boot/config.txt")

    def pointer_size(self) -> int:
        return ctypes.sizeof(ctypes.c_void_p)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def open_vcio(self) -> int:
        # read-only suffices for the ioctl (GPU_FFT's mbox_open and py-videocore open it so)
        return os.open(self.vcio_path, os.O_RDONLY)

    def ioctl(self, fd: int, request: int, buf: bytearray) -> None:
        import fcntl

        fcntl.ioctl(fd, request, buf, True)

    def close(self, fd: int) -> None:
        os.close(fd)

    def open_mem(self) -> int:
        return os.open(self.mem_path, os.O_RDWR | os.O_SYNC)

    def map_physical(self, mem_fd: int, phys: int, size: int) -> Tuple[Any, Callable[[], None]]:
        """A writable buffer over ``size`` bytes of physical memory at page-aligned ``phys``, and its unmapper."""
        if phys % PAGE_SIZE:
            raise ValueError(f"physical address {phys:#x} is not page aligned")
        length = -(-size // PAGE_SIZE) * PAGE_SIZE
        m = mmap.mmap(mem_fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=phys)

        def unmap() -> None:
            try:
                m.close()
            except BufferError:
                # numpy arrays still view the mapping; it goes away with the last of them.
                pass

        return m, unmap

    def read_config_lines(self) -> List[Tuple[str, int, str]]:
        """(path, line number, text) of every line of the first readable config.txt."""
        for path in self.config_paths:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    return [(path, i + 1, line.rstrip("\n")) for i, line in enumerate(f)]
            except OSError:
                continue
        return []
