"""The two ends a Driver can talk to: a real Pi's firmware (mailbox) or the emulator.

Both offer the same small interface to the Driver, and both speak to a firmware
through ``PropertyMailbox``, so allocation, locking, enabling and executing go through
the same code and the same bytes; only the transport (ioctl on /dev/vcio, or
``Firmware.property``) and the ARM-side mapping of GPU memory (/dev/mem, or a view of
the emulator's buffer) differ.

Backend interface used by the Driver:
``name``, ``pi`` (PiInfo), ``clock_hz``, ``mailbox``, ``map(bus, size) -> (buffer,
unmap)``, ``register_program(bus, program)``, ``execute(num_qpus, control_bus,
timeout_ms) -> RunReport``, ``describe_memory() -> str``, ``close()``.
"""

from __future__ import annotations

import errno as errno_codes
import logging
import os
import re
import time
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from .counters import PerformanceCounters, counters_from_job
from .errors import (
    BackendUnavailableError,
    ExecuteTimeoutError,
    GPUMemTooSmallError,
    MailboxError,
    MailboxPermissionError,
    NoMailboxError,
    QPUEnableError,
    UnsupportedPiError,
    V3DOwnedByKMSError,
)
from .host import PAGE_SIZE, LinuxHost
from .mailbox import CLOCK_V3D, EXECUTE_QPU_TIMEOUT, PropertyMailbox, VcioTransport
from .pi import V3D_REGISTER_OFFSET, PiInfo, detect_pi, peripheral_base, pi_from_name, pi_from_revision
from .report import RunReport

log = logging.getLogger("qpu.runtime")

BUS_ALIAS_MASK = 0xC0000000
DEFAULT_CLOCK_HZ = 250_000_000
KERNEL_MAILBOX_LIMIT_S = 1.0       # Linux drivers/firmware/raspberrypi.c waits HZ (1 s) for the firmware
CUT_DOWN_GPU_MEM = 16 << 20        # gpu_mem=16 selects the cut-down firmware (no 3D)
_KMS_LINE = re.compile(r"^\s*dtoverlay\s*=\s*(vc4-f?kms-v3d)\b")
_GPU_MEM_LINE = re.compile(r"^\s*gpu_mem(_\d+)?\s*=")


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):g} MiB"


def unsupported_pi_message(pi: PiInfo) -> str:
    return (f"this is a {pi}: its GPU is a VideoCore VI/VII whose V3D 4.x QPUs use a different instruction "
            "set, and its firmware does not run QPU jobs through the mailbox (raspberrypi/firmware#1205). "
            "This package's mailbox backend supports the Pi Zero, 1, 2, 3 and Zero 2 (BCM2835/6/7); "
            "use Driver(backend='emulator') here")


def _timeout_message(num_qpus: int, timeout_ms: int, kernel_limit: bool, detail: str = "",
                     emulated: bool = False) -> str:
    qpus = f"{num_qpus} QPU program" + ("s" if num_qpus != 1 else "")
    if emulated:
        text = (f"the QPU job ({qpus}) did not finish within its {timeout_ms} ms timeout of emulated time (the "
                "firmware answers 0x80000000). The program may be stuck (a loop that never exits, a semaphore or "
                "DMA wait that never completes) or simply long: then raise timeout=, and on a Pi split it, "
                "because the kernel caps a mailbox call at about 1 s")
    elif kernel_limit:
        text = (f"the QPU job ({qpus}) was still running when Linux stopped waiting for the firmware: the "
                "kernel caps every mailbox call at about 1 s (ETIMEDOUT), whatever the timeout "
                f"({timeout_ms} ms) says. Split long jobs into executes of well under a second")
    else:
        text = (f"the QPU job ({qpus}) did not finish within its {timeout_ms} ms timeout (execute QPU answered "
                "0x80000000). The program may be stuck (a semaphore or DMA wait that never completes, a "
                "missing thread end) or simply too long: run it on the emulator to see each QPU's PC; "
                "note the kernel also caps a mailbox call at about 1 s, so split long jobs")
    if detail:
        text += f"\n{detail}"
    return text


TIMING_FILE_ENV = "QPU_TIMING_FILE"


def resolve_timing(timing: Any) -> Any:
    """The emulator's TimingParameters from ``Driver(timing=...)``: a TimingParameters, a path to a
    timing file (``qpu calibrate`` writes one), or None: the file named by $QPU_TIMING_FILE if set,
    else the defaults of qpu.emulator.timing."""
    from qpu.emulator.timing import DEFAULT_TIMING, TimingParameters, load_timing

    if isinstance(timing, TimingParameters):
        return timing
    if timing is None:
        path = os.environ.get(TIMING_FILE_ENV, "")
        if not path:
            return DEFAULT_TIMING
        log.info("qpu.runtime: emulator timing parameters from $%s = %s", TIMING_FILE_ENV, path)
        return load_timing(path)
    return load_timing(timing)


class EmulatorBackend:
    """The Driver on the emulator: emulated firmware + V3D over one numpy buffer."""

    name = "emulator"

    def __init__(self, pi_model: Optional[str] = None, *, clock_hz: Optional[int] = None, strict: bool = True,
                 gpu_mem: int = 256 << 20, v3d: Any = None, memory: Any = None,
                 firmware_options: Optional[dict] = None, timing: Any = None) -> None:
        from qpu.emulator.firmware import Firmware
        from qpu.emulator.memory import GPUMemory

        from .pi import revision_code_of

        pi = pi_from_name(pi_model) if pi_model else pi_from_name("3")
        if not pi.supported:
            raise UnsupportedPiError(unsupported_pi_message(pi))
        self.pi = pi._replace(model=f"emulated {pi.model}")
        self.memory = memory if memory is not None else GPUMemory(gpu_mem)
        if v3d is None:
            try:
                from qpu.emulator.v3d import V3D
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"the emulator core (qpu.emulator.v3d) cannot be imported: {exc}; reinstall the package "
                    "(`pip install -e .` in the repository)") from exc
            params = resolve_timing(timing)
            # A timing file written by `qpu calibrate` carries its board's V3D clock.
            v3d = V3D(self.memory, strict=strict, clock_hz=clock_hz or params.clock_hz, timing=params)
        self.v3d = v3d
        options = dict(firmware_options or {})
        self.firmware = Firmware(self.memory, v3d, board_revision=revision_code_of(self.pi),
                                 clock_hz=clock_hz or getattr(v3d, "clock_hz", DEFAULT_CLOCK_HZ), **options)
        self.mailbox = PropertyMailbox(self.firmware.property)
        # Same calls as on a Pi, through the same bytes.
        self.clock_hz = self.mailbox.clock_rate(CLOCK_V3D) or DEFAULT_CLOCK_HZ
        self.vc_base, self.vc_size = self.mailbox.vc_memory()
        rc = self.mailbox.enable_qpu(True)
        if rc != 0:
            raise QPUEnableError("the emulated firmware refused to enable the QPUs (it was created with "
                                 f"firmware_options={options!r})")
        self._enabled = True

    def describe_memory(self) -> str:
        return f"the emulated GPU memory (gpu_mem) is {_mib(self.vc_size)}"

    def gpu_mem_hint(self) -> str:
        return "create the Driver with a larger emulated memory: Driver(backend='emulator', gpu_mem=...)"

    def map(self, bus: int, size: int) -> Tuple[Any, Callable[[], None]]:
        return self.memory.view(bus, size), (lambda: None)

    def register_program(self, bus: int, program: Any) -> None:
        register = getattr(self.v3d, "register_program", None)
        if register is not None:
            register(bus, program)

    def execute(self, num_qpus: int, control_bus: int, timeout_ms: int) -> RunReport:
        status = self.mailbox.execute_qpu(num_qpus, control_bus, 0, timeout_ms)
        if status == EXECUTE_QPU_TIMEOUT:
            err = self.firmware.last_error
            raise ExecuteTimeoutError(_timeout_message(num_qpus, timeout_ms, False, str(err) if err else "",
                                                       emulated=True), num_qpus, timeout_ms)
        if status != 0:
            raise MailboxError(f"execute QPU answered {status:#010x} (expected 0 or 0x80000000)")
        job = self.firmware.last_report
        warnings: List[str] = []
        report = RunReport.from_job(job, num_qpus, self.clock_hz, counters=counters_from_job(job), warnings=warnings)
        if report.seconds > KERNEL_MAILBOX_LIMIT_S:
            warnings.append(f"this job takes {report.seconds:.2f} s at {self.clock_hz / 1e6:g} MHz: on a Pi the "
                            "kernel stops waiting for a mailbox call after about 1 s; split it")
            report.warnings = warnings
        return report

    def close(self) -> None:
        if self._enabled:
            self._enabled = False
            self.mailbox.enable_qpu(False)


class MailboxBackend:
    """The Driver on a real Pi: /dev/vcio for the firmware, /dev/mem for memory and V3D registers."""

    name = "mailbox"

    def __init__(self, pi_model: Optional[str] = None, *, host: Optional[LinuxHost] = None,
                 counters: bool = True) -> None:
        self.host = host if host is not None else LinuxHost()
        self._transport: Optional[VcioTransport] = None
        self._mem_fd: Optional[int] = None
        self._enabled = False
        self._regs_unmap: Optional[Callable[[], None]] = None
        self.counters: Optional[PerformanceCounters] = None
        self.counter_note = ""
        try:
            self._open(pi_model, counters)
        except BaseException:
            self.close()
            raise

    # -- opening -----------------------------------------------------------------------------------

    def _open(self, pi_model: Optional[str], want_counters: bool) -> None:
        host = self.host
        pi = pi_from_name(pi_model) if pi_model else detect_pi(host.model_path, host.cpuinfo_path)
        if pi is not None and not pi.supported:
            raise UnsupportedPiError(unsupported_pi_message(pi))
        self._transport = self._open_vcio(pi)
        self.mailbox = PropertyMailbox(self._transport)
        revision = self.mailbox.board_revision()
        if pi is None:
            pi = pi_from_revision(revision)
            if not pi.supported:
                raise UnsupportedPiError(unsupported_pi_message(pi))
        self.pi = pi
        self.board_revision = revision
        self.firmware_revision = self.mailbox.firmware_revision()
        self.clock_hz = self.mailbox.clock_rate(CLOCK_V3D)
        self.vc_base, self.vc_size = self.mailbox.vc_memory()
        self._mem_fd = self._open_mem()
        rc = self.mailbox.enable_qpu(True)
        if rc != 0:
            raise self.diagnose_enable_refusal(rc)
        self._enabled = True
        if not self.clock_hz:
            self.clock_hz = DEFAULT_CLOCK_HZ
        if want_counters:
            self._map_counters()

    def _open_vcio(self, pi: Optional[PiInfo]) -> VcioTransport:
        host = self.host
        try:
            return VcioTransport(host)
        except FileNotFoundError:
            if pi is None:
                raise NoMailboxError(f"{host.vcio_path} does not exist: this does not look like a Raspberry Pi "
                                     f"({host.model_path} names no Raspberry Pi). Use Driver(backend='emulator')"
                                     ) from None
            raise NoMailboxError(
                f"{host.vcio_path} does not exist on this {pi.model}: the kernel's vcio driver (the firmware "
                "mailbox character device, CONFIG_BCM2835_VCIO) is not loaded. Load it with "
                "`sudo modprobe vcio`, or on old kernels create the node with `sudo mknod /dev/vcio c 100 0` "
                "(as GPU_FFT's mailbox.c suggests); Raspberry Pi OS kernels provide it") from None
        except PermissionError:
            raise MailboxPermissionError(
                f"permission denied opening {host.vcio_path}: it belongs to group 'video'. Add yourself with "
                "`sudo usermod -aG video $USER` and log in again (the QPU path also needs /dev/mem, which "
                "needs root: simplest is to run the program with sudo)") from None
        except OSError as exc:
            raise NoMailboxError(f"cannot open {host.vcio_path}: {exc}") from exc

    def _open_mem(self) -> int:
        host = self.host
        try:
            return host.open_mem()
        except PermissionError:
            raise MailboxPermissionError(
                f"permission denied opening {host.mem_path}: mapping GPU memory and the V3D registers into "
                "this process goes through /dev/mem, which only root (CAP_SYS_RAWIO) may open, because it "
                "reaches all physical memory; the 'video' group is not enough. Run the program with sudo "
                "(e.g. `sudo -E python3 your_script.py`)") from None
        except FileNotFoundError:
            raise NoMailboxError(f"{host.mem_path} does not exist: the kernel was built without /dev/mem "
                                 "(CONFIG_DEVMEM); the mailbox backend needs it") from None

    def diagnose_enable_refusal(self, rc: Optional[int]) -> QPUEnableError:
        """The most specific explanation of an enable-QPU refusal, with the config.txt lines to change."""
        host = self.host
        lines = host.read_config_lines()
        answer = "left the tag unanswered" if rc is None else f"answered {rc:#x}"
        if self.vc_size <= CUT_DOWN_GPU_MEM:
            found = [f"{p}:{n}: {t.strip()}" for p, n, t in lines if _GPU_MEM_LINE.match(t)]
            where = (" (" + "; ".join(found) + ")") if found else ""
            return GPUMemTooSmallError(
                f"the firmware refused to enable the QPUs ({answer}): the GPU has only {_mib(self.vc_size)} of "
                f"memory{where}, so the cut-down firmware without 3D support is running. Set gpu_mem=64 (or "
                "more) in config.txt, reboot, and run `qpu selftest`")
        kms = [f"{p}:{n}: {t.strip()}" for p, n, t in lines if _KMS_LINE.match(t)]
        vc4_loaded = host.exists(host.vc4_module_path)
        if kms or vc4_loaded:
            if kms:
                where = "; ".join(kms)
                todo = (f"comment out that line ({where}) by putting # in front of it, reboot, and run "
                        "`qpu selftest`")
            else:
                where = f"the vc4 kernel module is loaded ({host.vc4_module_path})"
                todo = ("remove the dtoverlay=vc4-kms-v3d or dtoverlay=vc4-fkms-v3d line from config.txt "
                        "(or blacklist the vc4 module), reboot, and run `qpu selftest`")
            return V3DOwnedByKMSError(
                f"the firmware refused to enable the QPUs ({answer}) because the Linux vc4 KMS driver owns the "
                f"V3D ({where}); the firmware then disables its QPU calls (raspberrypi/firmware#669). To use "
                f"the QPUs through the mailbox, {todo}. This gives up Mesa's 3D acceleration of the desktop")
        return QPUEnableError(
            f"the firmware refused to enable the QPUs ({answer}). Known causes: a dtoverlay=vc4-kms-v3d or "
            "vc4-fkms-v3d line in config.txt (the vc4 driver then owns the V3D), gpu_mem=16 (cut-down "
            "firmware), or an outdated firmware (`sudo apt full-upgrade`); reboot after a change")

    def _map_counters(self) -> None:
        base = peripheral_base(self.host.ranges_path, self.pi.soc)
        if base is None or self._mem_fd is None:
            self.counter_note = "performance counters unavailable: unknown peripheral base"
            return
        try:
            buf, unmap = self.host.map_physical(self._mem_fd, base + V3D_REGISTER_OFFSET, PAGE_SIZE)
        except (OSError, ValueError) as exc:
            self.counter_note = f"performance counters unavailable: cannot map the V3D registers ({exc})"
            return
        self._regs_unmap = unmap
        regs = buf if isinstance(buf, np.ndarray) and buf.dtype == np.uint32 else np.frombuffer(buf, dtype=np.uint32)
        self.counters = PerformanceCounters(regs)

    # -- backend interface -------------------------------------------------------------------------

    def describe_memory(self) -> str:
        return f"the GPU's memory (gpu_mem) is {_mib(self.vc_size)}"

    def gpu_mem_hint(self) -> str:
        lines = [f"{p}:{n}: {t.strip()}" for p, n, t in self.host.read_config_lines() if _GPU_MEM_LINE.match(t)]
        current = f" (now {'; '.join(lines)})" if lines else ""
        return (f"raise gpu_mem in config.txt{current}, e.g. gpu_mem=128, and reboot; or ask for less "
                "(Driver(data_area_size=..., code_area_size=...))")

    def map(self, bus: int, size: int) -> Tuple[Any, Callable[[], None]]:
        if self._mem_fd is None:
            raise MailboxError("/dev/mem is closed")
        phys = bus & ~BUS_ALIAS_MASK          # GPU_FFT BUS_TO_PHYS
        return self.host.map_physical(self._mem_fd, phys, size)

    def register_program(self, bus: int, program: Any) -> None:
        pass   # the hardware has no use for source information

    def execute(self, num_qpus: int, control_bus: int, timeout_ms: int) -> RunReport:
        counters = self.counters
        if counters is not None:
            counters.start()
        t0 = time.perf_counter()
        try:
            status = self.mailbox.execute_qpu(num_qpus, control_bus, 0, timeout_ms)
        except MailboxError as exc:
            if exc.errno == errno_codes.ETIMEDOUT:
                raise ExecuteTimeoutError(_timeout_message(num_qpus, timeout_ms, True), num_qpus, timeout_ms,
                                          kernel_limit=True) from exc
            raise
        finally:
            seconds = time.perf_counter() - t0
            values = counters.read() if counters is not None else {}
            if counters is not None:
                counters.stop()
        if status == EXECUTE_QPU_TIMEOUT:
            raise ExecuteTimeoutError(_timeout_message(num_qpus, timeout_ms, False), num_qpus, timeout_ms)
        if status != 0:
            raise MailboxError(f"execute QPU answered {status:#010x} (expected 0 or 0x80000000)")
        notes = [self.counter_note] if self.counter_note else []
        # The one stall cause both the hardware counters and the emulator name the same way.
        stalls = {"tmu": values["qpu_tmu_stall_cycles"]} if "qpu_tmu_stall_cycles" in values else {}
        return RunReport("mailbox", num_qpus, seconds, self.clock_hz, measured=True, counters=values,
                         stalls=stalls, warnings=notes)

    def close(self) -> None:
        errors: List[BaseException] = []
        if self._enabled:
            self._enabled = False
            try:
                self.mailbox.enable_qpu(False)
            except Exception as exc:  # keep releasing the rest
                errors.append(exc)
        if self._regs_unmap is not None:
            unmap, self._regs_unmap = self._regs_unmap, None
            self.counters = None
            unmap()
        if self._mem_fd is not None:
            fd, self._mem_fd = self._mem_fd, None
            self.host.close(fd)
        if self._transport is not None:
            transport, self._transport = self._transport, None
            transport.close()
        for error in errors:
            log.warning("qpu.runtime: while closing the mailbox backend: %s", error)
