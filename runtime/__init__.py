"""qpu.runtime: the Driver that runs QPU programs on a Raspberry Pi (mailbox) or on the emulator.

    from qpu.runtime import Driver
    with Driver() as drv:          # the firmware mailbox on a Pi Zero/1/2/3, else the emulator
        ...

Modules: driver (Driver, LoadedProgram), array (Array: numpy arrays in GPU memory),
backends (MailboxBackend, EmulatorBackend), mailbox (property messages, ioctl number),
host (OS access, replaceable in tests), pi (board detection), counters (V3D performance
counters), report (RunReport), errors, info (``qpu info``), selftest (``qpu selftest``),
remote (RemoteBackend: a Pi driven over TCP or a serial line), remote_protocol (its
frames), remote_transport (sockets, serial ports), remote_server (``qpu serve``),
calibrate and calibrate_kernels (``qpu calibrate``).
"""

from __future__ import annotations

from .array import Array
from .driver import Driver, LoadedProgram
from .errors import (
    BackendUnavailableError,
    CorruptFrameError,
    DriverClosedError,
    DriverConfigError,
    ExecuteTimeoutError,
    GPUAllocationError,
    GPUMemTooSmallError,
    MailboxError,
    MailboxPermissionError,
    NoMailboxError,
    NotInGPUMemoryError,
    OutOfGPUMemoryError,
    QPUEnableError,
    RemoteConnectionError,
    RemoteError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteTimeoutError,
    RuntimeQPUError,
    UnsupportedPiError,
    V3DOwnedByKMSError,
)
from .info import info, probe
from .pi import PiInfo, detect_pi
from .report import RunReport

__all__ = [
    "Array", "Driver", "LoadedProgram", "RunReport", "PiInfo", "detect_pi", "info", "probe",
    "BackendUnavailableError", "DriverClosedError", "DriverConfigError", "ExecuteTimeoutError",
    "GPUAllocationError", "GPUMemTooSmallError", "MailboxError", "MailboxPermissionError", "NoMailboxError",
    "NotInGPUMemoryError", "OutOfGPUMemoryError", "QPUEnableError", "RuntimeQPUError", "UnsupportedPiError",
    "V3DOwnedByKMSError", "RemoteError", "RemoteConnectionError", "RemoteTimeoutError", "RemoteProtocolError",
    "CorruptFrameError", "RemoteServerError",
]
