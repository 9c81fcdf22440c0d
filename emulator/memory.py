"""GPU memory as the VideoCore firmware hands it out: one numpy buffer, bus-address aliases.

On a Pi, ``gpu_mem`` reserves the top of SDRAM for the VideoCore.  The mailbox
allocator hands out blocks of it by handle; locking a handle returns its *bus*
address, whose top two bits select a cache alias (Linux vcio / userland
mailbox documentation, the MEM_FLAG_* values used by GPU_FFT's gpu_fft_base.c):

===========================  =====  ==========================================
flags bits 3:2               alias  meaning
===========================  =====  ==========================================
0 (MEM_FLAG_NORMAL)          0x0    L1 and L2 cached ("don't use from ARM")
1 (MEM_FLAG_DIRECT)          0xC    uncached (Pi 2/3 default for GPU code)
2 (MEM_FLAG_COHERENT)        0x8    L2 non-allocating, coherent
3 (MEM_FLAG_L1_NONALLOCATING) 0x4   L2 cached (Pi 1 / Zero with the V3D L2)
===========================  =====  ==========================================

The physical address is ``bus & ~0xC0000000`` (GPU_FFT's BUS_TO_PHYS).  Memory is
initialised to all ones unless MEM_FLAG_ZERO (zeros) or MEM_FLAG_NO_INIT (left as
is) is given (same documentation).

The emulator keeps the whole GPU share in one ``numpy.uint8`` buffer created with
``numpy.zeros`` (the OS maps pages lazily, so a 256 MB share costs only what is
touched) and never copies it; the ARM side gets numpy views into it.  A per-page
state array (4 KiB pages) lets the emulator's hot loop reject accesses outside
allocated memory without calling back into Python.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from qpu.errors import QPUError

PAGE_SIZE = 4096
PAGE_SHIFT = 12
BUS_ALIAS_MASK = 0xC0000000

MEM_FLAG_DISCARDABLE = 1 << 0
MEM_FLAG_NORMAL = 0 << 2
MEM_FLAG_DIRECT = 1 << 2
MEM_FLAG_COHERENT = 2 << 2
MEM_FLAG_L1_NONALLOCATING = MEM_FLAG_DIRECT | MEM_FLAG_COHERENT
MEM_FLAG_ZERO = 1 << 4
MEM_FLAG_NO_INIT = 1 << 5
MEM_FLAG_HINT_PERMALOCK = 1 << 6

# flags bits 3:2 -> top bits of the bus address
ALIAS_OF_CACHE_MODE = {0: 0x00000000, 1: 0xC0000000, 2: 0x80000000, 3: 0x40000000}

# page_state values
PAGE_FREE = 0
PAGE_ALLOCATED = 1   # allocated but not locked: the GPU must not use it
PAGE_LOCKED = 2      # allocated and locked: valid for GPU access


class GPUMemoryError(QPUError):
    """A bus address outside GPU memory, or a bad handle."""


class Allocation(NamedTuple):
    handle: int
    offset: int      # byte offset in the buffer
    size: int        # bytes as requested
    pages: int       # 4 KiB pages reserved
    align: int
    flags: int


class GPUMemory:
    """The VideoCore's share of SDRAM with a first-fit page allocator.

    ``phys_base`` is the physical address of byte 0 of the buffer.  The default puts a
    256 MB share at the top of the first GiB, where a Pi with gpu_mem=256 has it.
    """

    def __init__(self, size: int = 256 << 20, phys_base: Optional[int] = None) -> None:
        if size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"GPU memory size must be a positive multiple of {PAGE_SIZE}")
        if phys_base is None:
            phys_base = 0x40000000 - size
        if phys_base % PAGE_SIZE or phys_base < 0 or phys_base + size > 0x40000000:
            raise ValueError("GPU memory must be page aligned and below 1 GiB physical")
        self.size = size
        self.phys_base = phys_base
        self.data = np.zeros(size, dtype=np.uint8)
        self.words = self.data.view(np.uint32)
        self.page_state = np.zeros(size // PAGE_SIZE, dtype=np.uint8)
        self._allocations: Dict[int, Allocation] = {}
        self._locked: Dict[int, int] = {}   # handle -> lock count
        self._next_handle = 1

    # -- firmware allocator ------------------------------------------------------------------

    def alloc(self, size: int, align: int, flags: int) -> int:
        """Allocate ``size`` bytes; returns a handle, or 0 when there is no room (as the firmware)."""
        if size <= 0:
            return 0
        align = max(int(align), PAGE_SIZE)
        if align & (align - 1):
            return 0
        pages = -(-size // PAGE_SIZE)
        step = align // PAGE_SIZE
        free = self.page_state == PAGE_FREE
        n = len(free)
        start = (-(self.phys_base // PAGE_SIZE)) % step
        while start + pages <= n:
            window = free[start:start + pages]
            if window.all():
                break
            # skip past the last used page of the window, then realign
            last_used = start + int(np.flatnonzero(~window)[-1])
            start = last_used + 1
            start += (-(start + self.phys_base // PAGE_SIZE)) % step
        else:
            return 0
        handle = self._next_handle
        self._next_handle += 1
        offset = start * PAGE_SIZE
        self.page_state[start:start + pages] = PAGE_ALLOCATED
        if flags & MEM_FLAG_ZERO:
            self.data[offset:offset + pages * PAGE_SIZE] = 0
        elif not flags & MEM_FLAG_NO_INIT:
            self.data[offset:offset + pages * PAGE_SIZE] = 0xFF
        self._allocations[handle] = Allocation(handle, offset, size, pages, align, flags)
        return handle

    def lock(self, handle: int) -> int:
        """Bus address of an allocation (0 for an unknown handle), in the alias its flags ask for."""
        a = self._allocations.get(handle)
        if a is None:
            return 0
        self._locked[handle] = self._locked.get(handle, 0) + 1
        first = a.offset // PAGE_SIZE
        self.page_state[first:first + a.pages] = PAGE_LOCKED
        return self.bus_address(a.offset, a.flags)

    def unlock(self, handle: int) -> int:
        """0 on success, 1 for an unknown or unlocked handle."""
        a = self._allocations.get(handle)
        if a is None or not self._locked.get(handle):
            return 1
        self._locked[handle] -= 1
        if not self._locked[handle]:
            first = a.offset // PAGE_SIZE
            self.page_state[first:first + a.pages] = PAGE_ALLOCATED
        return 0

    def release(self, handle: int) -> int:
        """0 on success, 1 for an unknown handle."""
        a = self._allocations.pop(handle, None)
        if a is None:
            return 1
        self._locked.pop(handle, None)
        first = a.offset // PAGE_SIZE
        self.page_state[first:first + a.pages] = PAGE_FREE
        return 0

    def allocations(self) -> Tuple[Allocation, ...]:
        return tuple(self._allocations.values())

    def is_locked(self, handle: int) -> bool:
        return bool(self._locked.get(handle))

    # -- addresses --------------------------------------------------------------------------

    def bus_address(self, offset: int, flags: int = MEM_FLAG_DIRECT) -> int:
        return ALIAS_OF_CACHE_MODE[(flags >> 2) & 3] | (self.phys_base + offset)

    def offset_of_bus(self, bus: int) -> int:
        """Byte offset in the buffer of a bus address; GPUMemoryError if outside GPU memory."""
        phys = (bus & 0xFFFFFFFF) & ~BUS_ALIAS_MASK
        off = phys - self.phys_base
        if not 0 <= off < self.size:
            raise GPUMemoryError(
                f"bus address {bus:#010x} (physical {phys:#010x}) is outside GPU memory "
                f"{self.phys_base:#010x}..{self.phys_base + self.size:#010x}")
        return off

    def is_accessible(self, bus: int, nbytes: int = 4) -> bool:
        """True if every byte of [bus, bus+nbytes) lies in locked (GPU-usable) memory."""
        try:
            off = self.offset_of_bus(bus)
        except GPUMemoryError:
            return False
        end = off + nbytes
        if end > self.size:
            return False
        first, last = off >> PAGE_SHIFT, (end - 1) >> PAGE_SHIFT
        return bool((self.page_state[first:last + 1] == PAGE_LOCKED).all())

    def view(self, bus: int, nbytes: int) -> np.ndarray:
        """A uint8 view (no copy) of ``nbytes`` at a bus address."""
        off = self.offset_of_bus(bus)
        if off + nbytes > self.size:
            raise GPUMemoryError(f"{nbytes} bytes at {bus:#010x} run past the end of GPU memory")
        return self.data[off:off + nbytes]

    def array(self, bus: int, shape, dtype) -> np.ndarray:
        """A typed numpy view (no copy) at a bus address."""
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if shape != () else 1
        raw = self.view(bus, count * dt.itemsize)
        return raw.view(dt).reshape(shape)
