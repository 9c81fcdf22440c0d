"""``qpu info``: what this machine offers - which backend works, the board, V3D clock and GPU memory.

``probe()`` returns the facts as a dict; ``info()`` the text ``qpu info`` prints.
On a Pi the probe reads the firmware through /dev/vcio (board and firmware
revision, V3D clock, GPU memory) and then tries the full mailbox backend, which
enables the QPUs and disables them again, to say whether QPU jobs can run and, if
not, why.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional

from .errors import RuntimeQPUError
from .host import LinuxHost
from .mailbox import PropertyMailbox, VcioTransport
from .pi import detect_pi, pi_from_revision


def probe(host: Optional[LinuxHost] = None) -> Dict[str, Any]:
    """Facts about this machine for ``qpu info`` (keys documented in ``info``)."""
    from .backends import MailboxBackend, unsupported_pi_message

    host = host if host is not None else LinuxHost()
    facts: Dict[str, Any] = {
        "pi": detect_pi(host.model_path, host.cpuinfo_path),
        "mailbox": False, "mailbox_reason": "", "board_revision": None, "firmware_revision": None,
        "clock_hz": None, "gpu_mem": None, "gpu_mem_base": None,
    }
    pi = facts["pi"]
    if pi is not None and not pi.supported:
        facts["mailbox_reason"] = unsupported_pi_message(pi)
    elif not host.exists(host.vcio_path):
        facts["mailbox_reason"] = (f"no {host.vcio_path}: not a Raspberry Pi" if pi is None else
                                   f"no {host.vcio_path}: the vcio driver is not loaded (`sudo modprobe vcio`)")
    else:
        try:
            transport = VcioTransport(host)
        except OSError as exc:
            transport = None
            facts["mailbox_reason"] = f"cannot open {host.vcio_path}: {exc}"
        if transport is not None:
            try:
                mbox = PropertyMailbox(transport)
                facts["board_revision"] = mbox.board_revision()
                facts["firmware_revision"] = mbox.firmware_revision()
                facts["clock_hz"] = mbox.clock_rate()
                facts["gpu_mem_base"], facts["gpu_mem"] = mbox.vc_memory()
                if pi is None:
                    facts["pi"] = pi_from_revision(facts["board_revision"])
            except RuntimeQPUError as exc:
                facts["mailbox_reason"] = str(exc)
            finally:
                transport.close()
            if not facts["mailbox_reason"]:
                try:
                    MailboxBackend(host=host, counters=False).close()
                    facts["mailbox"] = True
                except RuntimeQPUError as exc:
                    facts["mailbox_reason"] = str(exc)
    try:
        importlib.import_module("qpu.emulator.v3d")
        facts["emulator"] = True
        facts["emulator_reason"] = ""
    except ImportError as exc:
        facts["emulator"] = False
        facts["emulator_reason"] = str(exc)
    try:
        from qpu.emulator.jit import HAVE_NUMBA
    except ImportError:
        HAVE_NUMBA = False
    facts["numba"] = HAVE_NUMBA
    return facts


def info(host: Optional[LinuxHost] = None) -> str:
    """The text of ``qpu info``."""
    f = probe(host)
    lines: List[str] = []
    if f["mailbox"]:
        lines.append("backend: mailbox (Driver() runs on this Pi's QPUs)")
    else:
        lines.append("backend: emulator (Driver() runs on the emulator)")
        lines.append(f"mailbox: unavailable - {f['mailbox_reason']}")
    pi = f["pi"]
    lines.append(f"board: {pi}" if pi is not None else "board: not a Raspberry Pi")
    if f["board_revision"] is not None:
        lines.append(f"firmware: revision {f['firmware_revision']:#x}, board revision {f['board_revision']:#x}")
    if f["clock_hz"]:
        lines.append(f"V3D clock: {f['clock_hz'] / 1e6:g} MHz")
    if f["gpu_mem"] is not None:
        lines.append(f"GPU memory (gpu_mem): {f['gpu_mem'] / (1 << 20):g} MiB at {f['gpu_mem_base']:#010x}")
    if f["emulator"]:
        lines.append("emulator: available, hot loop " + ("compiled with numba" if f["numba"] else
                                                          "in plain Python (numba not installed: slow)"))
    else:
        lines.append(f"emulator: unavailable - {f['emulator_reason']}")
    return "\n".join(lines)
