"""Errors of the runtime (qpu.runtime): each says what went wrong and what to do about it.

All derive from ``RuntimeQPUError`` (itself a ``qpu.errors.QPUError``), so
``except QPUError`` catches everything the package raises.  The messages are
built by the code that detects the problem (it knows the paths, sizes and
config.txt lines involved); the classes only sort them.
"""

from __future__ import annotations

from typing import Optional

from qpu.errors import QPUError


class RuntimeQPUError(QPUError):
    """Base class of the runtime's errors."""


class BackendUnavailableError(RuntimeQPUError):
    """The requested backend cannot be used here (e.g. the emulator core is missing)."""


class NoMailboxError(BackendUnavailableError):
    """/dev/vcio is missing: not a Raspberry Pi, or the kernel's vcio driver is not loaded."""


class MailboxPermissionError(BackendUnavailableError, PermissionError):
    """/dev/vcio or /dev/mem cannot be opened by this user."""


class UnsupportedPiError(BackendUnavailableError):
    """A Raspberry Pi 4 or 5: its GPU (VideoCore VI/VII, V3D 4.x) has a different QPU ISA."""


class QPUEnableError(BackendUnavailableError):
    """The firmware refused to enable the QPUs."""


class V3DOwnedByKMSError(QPUEnableError):
    """The Linux vc4 KMS driver owns the V3D (dtoverlay=vc4-kms-v3d or vc4-fkms-v3d)."""


class GPUMemTooSmallError(QPUEnableError):
    """gpu_mem is so small (16 MB) that the cut-down firmware without 3D support runs."""


class MailboxError(RuntimeQPUError):
    """The firmware rejected a property request, or did not answer a tag."""

    def __init__(self, message: str, errno: Optional[int] = None) -> None:
        super().__init__(message)
        self.errno = errno


class GPUAllocationError(RuntimeQPUError):
    """The firmware could not allocate (or lock) the GPU memory asked for."""


class OutOfGPUMemoryError(RuntimeQPUError):
    """An array or program does not fit in what is left of the Driver's data or code area."""


class ExecuteTimeoutError(RuntimeQPUError):
    """A QPU job did not finish in time (firmware timeout, or the kernel's 1 s mailbox limit)."""

    def __init__(self, message: str, num_qpus: int, timeout_ms: int, kernel_limit: bool = False) -> None:
        super().__init__(message)
        self.num_qpus = num_qpus
        self.timeout_ms = timeout_ms
        self.kernel_limit = kernel_limit


class DriverConfigError(RuntimeQPUError, ValueError):
    """A Driver argument is out of range or does not fit this board (cache mode, thread count...)."""


class DriverClosedError(RuntimeQPUError):
    """The Driver was used after close(): its GPU memory is gone."""


class NotInGPUMemoryError(RuntimeQPUError):
    """An array without a bus address (not allocated by the Driver, or a computed copy) was used."""


class RemoteError(RuntimeQPUError):
    """The remote backend's link to its ``qpu serve`` server failed (not the Pi or the program)."""


class RemoteConnectionError(RemoteError, BackendUnavailableError, ConnectionError):
    """The server cannot be reached, the connection was lost, or pyserial is missing."""


class RemoteTimeoutError(RemoteError, TimeoutError):
    """The server did not answer in time (the connection is then unusable: create a new Driver)."""


class RemoteProtocolError(RemoteError):
    """The two ends do not understand each other: another protocol version, or a malformed message."""


class CorruptFrameError(RemoteProtocolError):
    """A frame failed its checksum (a noisy serial line) and retransmissions did not help."""


class RemoteServerError(RemoteError):
    """The server failed with an error that is not one of this package's (a bug, or an OS error)."""
