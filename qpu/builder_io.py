"""VPM, DMA and TMU helpers as Kernel methods (py-videocore's names); ``qpu.macros`` has the
setup-word details and the same operations as plain functions.
"""

from __future__ import annotations

from typing import Optional, Union

from . import macros as _macros
from .builder_base import Issued
from .builder_control import ControlFlow
from .registers import (
    Register,
)


class Peripherals(ControlFlow):
    """VPM/DMA/TMU setup and transfer helpers."""

    # ---------------------------------------------------------------------------------------
    # Macros (qpu.macros has the details)
    # ---------------------------------------------------------------------------------------

    def setup_vpm_read(self, nrows: int, *, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True,
                       laned: bool = False, stride: int = 1, byte: int = 0, half: int = 0) -> None:
        """Program the next ``nrows`` VPM reads (Table 33); see :func:`qpu.macros.vpm_read_setup`."""
        _macros.setup_vpm_read(self, nrows, y=y, x=x, size=size, horizontal=horizontal, laned=laned,
                               stride=stride, byte=byte, half=half)

    def setup_vpm_write(self, *, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True,
                        laned: bool = False, stride: int = 1, byte: int = 0, half: int = 0) -> None:
        """Program where VPM writes go (Table 32); see :func:`qpu.macros.vpm_write_setup`."""
        _macros.setup_vpm_write(self, y=y, x=x, size=size, horizontal=horizontal, laned=laned, stride=stride,
                                byte=byte, half=half)

    def setup_dma_load(self, nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32,
                       offset: int = 0, horizontal: bool = True, vpitch: int = 1, mpitch: int = 3) -> None:
        """Set up a DMA load memory -> VPM (Table 36); see :func:`qpu.macros.dma_load_setup`."""
        _macros.setup_dma_load(self, nrows, ncols, y=y, x=x, size=size, offset=offset, horizontal=horizontal,
                               vpitch=vpitch, mpitch=mpitch)

    def setup_dma_load_stride(self, stride: Union[int, Register], *, tmp: Optional[Register] = None) -> None:
        """Set the DMA load memory pitch in bytes (Table 37); see :func:`qpu.macros.setup_dma_load_stride`."""
        _macros.setup_dma_load_stride(self, stride, tmp=tmp)

    def start_dma_load(self, addr: Register) -> Issued:
        """``mov vr_addr, addr``: start the DMA load."""
        return _macros.start_dma_load(self, addr)

    def wait_dma_load(self) -> Issued:
        """``mov -, vr_wait``: wait for the DMA load."""
        return _macros.wait_dma_load(self)

    def setup_dma_store(self, nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32,
                        offset: int = 0, horizontal: bool = True) -> None:
        """Set up a DMA store VPM -> memory (Table 34); see :func:`qpu.macros.dma_store_setup`."""
        _macros.setup_dma_store(self, nrows, ncols, y=y, x=x, size=size, offset=offset, horizontal=horizontal)

    def setup_dma_store_stride(self, stride: Union[int, Register], blockmode: bool = False, *,
                               tmp: Optional[Register] = None) -> None:
        """Set the DMA store stride and block mode (Table 35); see :func:`qpu.macros.setup_dma_store_stride`."""
        _macros.setup_dma_store_stride(self, stride, blockmode, tmp=tmp)

    def start_dma_store(self, addr: Register) -> Issued:
        """``mov vw_addr, addr``: start the DMA store."""
        return _macros.start_dma_store(self, addr)

    def wait_dma_store(self) -> Issued:
        """``mov -, vw_wait``: wait for the DMA store."""
        return _macros.wait_dma_store(self)

    def tmu_load(self, addr: Register, *, tmu: int = 0, dst: Optional[Register] = None) -> None:
        """Per-element 32-bit load through a TMU; see :func:`qpu.macros.tmu_load`."""
        _macros.tmu_load(self, addr, tmu=tmu, dst=dst)

