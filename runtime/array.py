"""GPU memory as the ARM sees it: firmware allocations mapped into the process, and numpy arrays in them.

A ``GPUBlock`` is one firmware allocation (handle), locked (bus address) and mapped
(a writable buffer: an mmap of /dev/mem on a Pi, a view of the emulator's memory
otherwise).  An ``Area`` hands out pieces of a block, first come first served.
``Array`` is an ``numpy.ndarray`` living in a block, with its bus address:

* ``a.address``: bus address of element 0 (what a QPU program is given);
* ``a.addresses()``: bus address of every element, same shape (uint32).

Slices of an Array are Arrays with their own, correct addresses.  Arrays computed
from Arrays (``a + b``) are new memory on the ARM side: they keep the type but have
no address (``NotInGPUMemoryError`` names the fix: ``drv.copy(...)``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np

from .errors import DriverClosedError, NotInGPUMemoryError, OutOfGPUMemoryError


class GPUBlock:
    """One allocated, locked and mapped piece of GPU memory."""

    def __init__(self, name: str, handle: int, bus: int, size: int, flags: int, buffer: Any,
                 unmap: Callable[[], None]) -> None:
        self.name = name
        self.handle = handle
        self.bus = bus
        self.size = size
        self.flags = flags
        self.buffer = buffer
        self._unmap = unmap
        self.bytes: np.ndarray = (buffer[:size] if isinstance(buffer, np.ndarray)
                                  else np.frombuffer(buffer, dtype=np.uint8, count=size))
        self.ptr = int(self.bytes.__array_interface__["data"][0])
        self.open = True

    def contains_pointer(self, ptr: int) -> bool:
        return self.open and self.ptr <= ptr < self.ptr + self.size

    def unmap(self) -> None:
        self.open = False
        self.bytes = np.zeros(0, dtype=np.uint8)
        self.buffer = None
        self._unmap()

    def __repr__(self) -> str:
        return f"<GPUBlock {self.name} handle={self.handle} bus={self.bus:#010x} size={self.size}>"


class Area:
    """A bump allocator over a range of a block (the data area, the code area)."""

    def __init__(self, block: GPUBlock, name: str, start: int = 0, size: Optional[int] = None) -> None:
        self.block = block
        self.name = name
        self.start = start
        self.size = block.size - start if size is None else size
        self.used = 0

    def take(self, nbytes: int, align: int, what: str) -> int:
        """Byte offset in the block of ``nbytes`` free bytes aligned to ``align``."""
        if not self.block.open:
            raise DriverClosedError("the Driver is closed: its GPU memory was released; create a new Driver")
        if align < 1 or align & (align - 1):
            raise ValueError(f"alignment must be a power of two, got {align}")
        # Align the bus address (the block itself is page aligned, so offsets would do, but be exact).
        pos = self.start + self.used
        pos += (-(self.block.bus + pos)) % align
        end = pos + max(nbytes, 0)
        if end > self.start + self.size:
            free = self.start + self.size - (self.start + self.used)
            raise OutOfGPUMemoryError(
                f"{what} needs {nbytes} bytes but the Driver's {self.name} has {max(free, 0)} of "
                f"{self.size} bytes left: create the Driver with a larger {self.name}_size "
                f"(e.g. Driver({self.name}_size={_suggest(self.used + nbytes)}))")
        self.used = end - self.start
        return pos


def _suggest(nbytes: int) -> str:
    mib = 1 << 20
    return f"{-(-nbytes * 2 // mib)} * 1024 * 1024"


class Array(np.ndarray):
    """A numpy array in GPU memory; ``.address`` / ``.addresses()`` give bus addresses."""

    _gpu: Optional[GPUBlock]

    def __new__(cls, shape: Any, dtype: Any, block: GPUBlock, offset: int) -> Array:
        obj = super().__new__(cls, shape, dtype=dtype, buffer=block.bytes, offset=offset)
        obj._gpu = block
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self._gpu = getattr(obj, "_gpu", None)

    @property
    def address(self) -> int:
        """Bus address of element 0, as the QPUs see it (with the block's cache alias)."""
        ptr = int(self.__array_interface__["data"][0])
        block = self._gpu
        if block is None or not block.contains_pointer(ptr):
            if block is not None and not block.open:
                raise DriverClosedError("this array's Driver is closed: its GPU memory was released")
            raise NotInGPUMemoryError(
                "this array is not in GPU memory (it is the result of a computation on the ARM, or a copy): "
                "put it there with drv.copy(array) and pass that copy's address")
        return block.bus + (ptr - block.ptr)

    def addresses(self) -> np.ndarray:
        """Bus address of every element (uint32, same shape), following the array's strides."""
        base = self.address
        offsets = np.zeros(self.shape, dtype=np.int64)
        for axis, (n, stride) in enumerate(zip(self.shape, self.strides)):
            shape = [1] * self.ndim
            shape[axis] = n
            offsets = offsets + (np.arange(n, dtype=np.int64) * stride).reshape(shape)
        return (base + offsets).astype(np.uint32)

    @property
    def block(self) -> Optional[GPUBlock]:
        return self._gpu


def array_in_block(block: GPUBlock, offset: int, shape: Any, dtype: Any) -> Array:
    return Array(shape, dtype, block, offset)


def normalise_shape(shape: Any) -> Tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)
