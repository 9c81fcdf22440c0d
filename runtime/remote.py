"""The "remote" backend: a Driver on this machine, QPU jobs on a Pi running ``qpu serve``.

    with Driver(backend="remote", remote="tcp://raspberrypi:5555") as drv:   # or serial:///dev/ttyUSB0?baud=115200
        ...                                                                  # exactly as with any backend

Arrays stay numpy arrays here: every block of GPU memory the Driver maps has a local
*mirror* (the arrays' memory) and a *shadow* (what the server is known to hold).
Before a job the client sends the 64-byte pieces where mirror and shadow differ;
after it, the server sends back what the job changed, and both copies are updated.
Bus addresses are the Pi's, so ``.address`` means the same as on the Pi.

What comes back after a job is a trade-off (``sync``):

* ``"changed"`` (default): the server compares the memory in scope with its shadow
  and sends only what differs.  Little data on the line, at the price of a scan of
  that memory on the Pi after every job (fast on the emulator; about as fast as
  reading it through /dev/mem on a Pi).
* ``"all"``: the whole scope is sent back after each job, no comparison.  Simple and
  predictable, but slow over a serial line (115200 baud moves ~11 KB/s).

The scope is all mapped memory, unless ``backend.set_outputs(*arrays)`` (or the
``outputs(...)`` context manager) limits it to the arrays a job may write: then
nothing else is scanned or sent.  Memory a job writes outside the declared outputs
is not brought back (``backend.refresh()`` fetches everything that differs).

The link: one request at a time, each answered once; a damaged or lost answer is
asked for again with the same request id (the server replays its stored answer
rather than rerunning a job).  A timeout or a lost connection makes the backend
unusable: create a new Driver (the server releases the old session's memory).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .errors import (
    CorruptFrameError,
    DriverConfigError,
    RemoteConnectionError,
    RemoteError,
    RemoteProtocolError,
    RemoteTimeoutError,
)
from .pi import PiInfo
from .remote_protocol import (
    KIND_ERROR,
    KIND_REQUEST,
    PROTOCOL_VERSION,
    SYNC_CHUNK,
    FrameReader,
    Message,
    MirroredBlock,
    changed_ranges,
    encode_frame,
    error_from_wire,
    program_to_wire,
    ranges_payload,
    report_from_wire,
)
from .remote_transport import open_transport
from .report import RunReport

log = logging.getLogger("qpu.runtime")

SYNC_MODES = ("changed", "all")


class _RemoteMailbox:
    """The four memory calls the Driver makes through ``backend.mailbox``, sent to the server."""

    def __init__(self, backend: RemoteBackend) -> None:
        self.backend = backend

    def mem_alloc(self, size: int, align: int, flags: int) -> int:
        return int(self.backend.request("alloc", {"size": size, "align": align, "flags": flags})[0]["handle"])

    def mem_lock(self, handle: int) -> int:
        return int(self.backend.request("lock", {"handle": handle})[0]["bus"])

    def mem_unlock(self, handle: int) -> int:
        if self.backend.broken:
            return 0      # the server releases a lost session's memory itself
        return int(self.backend.request("unlock", {"handle": handle}, timeout=self.backend.cleanup_timeout)[0]
                   ["status"])

    def mem_release(self, handle: int) -> int:
        if self.backend.broken:
            return 0
        return int(self.backend.request("release", {"handle": handle}, timeout=self.backend.cleanup_timeout)[0]
                   ["status"])


class RemoteBackend:
    """A backend whose firmware and QPUs are on another machine, reached through ``qpu serve``.

    ``url``: "tcp://HOST:PORT" or "serial:///dev/DEVICE?baud=N".  ``timeout``: seconds to
    wait for an answer (an execute adds its own timeout).  ``sync``: "changed" or
    "all" (module docstring).  ``retries``: retransmissions of a damaged exchange.
    ``compress``: zlib payloads (default: on serial lines).  ``transport``: an open
    transport to use instead of opening ``url`` (tests).
    """

    name = "remote"

    def __init__(self, url: str, *, timeout: float = 30.0, sync: str = "changed", retries: int = 3,
                 compress: Optional[bool] = None, connect_timeout: float = 10.0, idle_timeout: float = 5.0,
                 transport: Any = None) -> None:
        if sync not in SYNC_MODES:
            raise DriverConfigError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        self.url = url
        self.timeout = float(timeout)
        self.idle_timeout = float(idle_timeout)
        self.sync = sync
        self.retries = int(retries)
        self._transport = transport if transport is not None else open_transport(url, connect_timeout)
        self.compress = bool(self._transport.serial if compress is None else compress)
        self._reader = FrameReader(self._transport)
        self._lock = threading.RLock()
        self._next_id = 1
        self._mirrors: Dict[int, MirroredBlock] = {}
        self._programs: Dict[int, Any] = {}
        self._outputs: Optional[List[Tuple[int, int]]] = None
        self.broken = ""            # why the link is unusable, once it is
        self.stats = {"requests": 0, "retransmissions": 0, "bytes_sent": 0, "bytes_received": 0}
        self.mailbox = _RemoteMailbox(self)
        try:
            self._transport.discard_input()      # stale bytes of an earlier session on a serial line
            info = self.request("hello", {"protocol": PROTOCOL_VERSION, "client": _client_name(),
                                          "nonce": os.urandom(8).hex()})[0]
        except BaseException:
            self._close_transport()
            raise
        if info.get("protocol") != PROTOCOL_VERSION:
            self._close_transport()
            raise RemoteProtocolError(f"{url} speaks protocol version {info.get('protocol')}, this client "
                                      f"{PROTOCOL_VERSION}: install the same qpu-videocore version on both")
        self.server_info = info
        self.server_backend = str(info["backend"])
        pi = info.get("pi") or {}
        self.pi = PiInfo(str(pi.get("model", "?")), str(pi.get("soc", "BCM2837")), pi.get("revision"))
        self.clock_hz = int(info["clock_hz"])
        self.vc_base = int(info.get("vc_base", 0))
        self.vc_size = int(info.get("vc_size", 0))
        self._wants_programs = bool(info.get("wants_programs"))

    @property
    def cleanup_timeout(self) -> float:
        """Shorter waits while releasing (also at interpreter exit): the server cleans up a lost
        session by itself, so there is no point in waiting long for it."""
        return min(self.timeout, 5.0)

    def describe(self) -> str:
        return (f"{self.server_backend} on {self.pi.model} at {self.url}, V3D {self.clock_hz / 1e6:g} MHz "
                f"({self.server_info.get('server', '?')})")

    # -- the link ---------------------------------------------------------------------------------

    def request(self, op: str, body: Optional[Dict[str, Any]] = None, blobs: Sequence[bytes] = (),
                timeout: Optional[float] = None) -> Tuple[Dict[str, Any], List[bytes]]:
        """Send one request and return the answer's (body, blobs); a server error is raised here."""
        msg = self._exchange(op, body, blobs, timeout)
        if msg.kind == KIND_ERROR:
            raise error_from_wire(msg.body, self.url)
        return msg.body, msg.blobs

    def _exchange(self, op: str, body: Optional[Dict[str, Any]], blobs: Sequence[bytes],
                  timeout: Optional[float]) -> Message:
        with self._lock:
            if self.broken:
                raise RemoteConnectionError(f"the link to the qpu server at {self.url} is unusable ({self.broken}): "
                                            "create a new Driver")
            rid = self._next_id
            self._next_id += 1
            frame = encode_frame(KIND_REQUEST, rid, dict(body or {}, op=op), blobs, compress=self.compress)
            wait = self.timeout if timeout is None else timeout
            self.stats["requests"] += 1
            attempts = 0
            try:
                self._send(frame)
                while True:
                    try:
                        msg = self._reader.read_frame(wait, self.idle_timeout)
                    except CorruptFrameError as exc:
                        damaged = exc
                    else:
                        if msg.version != PROTOCOL_VERSION:
                            raise RemoteProtocolError(
                                f"{self.url} answered with protocol version {msg.version}, this client speaks "
                                f"{PROTOCOL_VERSION}: install the same qpu-videocore version on both machines")
                        if msg.kind == KIND_ERROR and msg.body.get("class", "").endswith(".CorruptFrameError") \
                                and msg.request_id in (rid, 0):
                            damaged = CorruptFrameError(str(msg.body.get("message", "")))
                        elif msg.request_id != rid:
                            continue          # an answer to an earlier, retransmitted request
                        else:
                            return msg
                    attempts += 1
                    if attempts > self.retries:
                        raise CorruptFrameError(
                            f"the '{op}' exchange with {self.url} was damaged {attempts} times ({damaged}). "
                            "The line corrupts data: check the cable and ground, use a lower baud rate "
                            "(qpu serve --baud and ?baud= must match), or use TCP") from None
                    self.stats["retransmissions"] += 1
                    log.info("qpu.runtime: damaged exchange with %s (%s); sending request %d again", self.url,
                             damaged, rid)
                    self._send(frame)       # same id: the server answers again without redoing it
            except RemoteTimeoutError as exc:
                self.broken = f"no answer to '{op}' within {wait:g} s"
                raise RemoteTimeoutError(
                    f"the qpu server at {self.url} did not answer the '{op}' request within {wait:g} s ({exc}). "
                    "Is it running and reachable? For long jobs give a larger execute timeout. This Driver "
                    "can no longer be used: create a new one") from None
            except RemoteConnectionError as exc:
                self.broken = str(exc)
                raise
            except RemoteProtocolError as exc:
                if not isinstance(exc, CorruptFrameError):
                    self.broken = str(exc)
                raise
            finally:
                self.stats["bytes_received"] = self._reader.bytes_read

    def _send(self, frame: bytes) -> None:
        self._transport.send(frame)
        self.stats["bytes_sent"] += len(frame)

    # -- backend interface ------------------------------------------------------------------------

    def describe_memory(self) -> str:
        return str(self.server_info.get("describe_memory", "")) + f" (on the server at {self.url})"

    def gpu_mem_hint(self) -> str:
        return str(self.server_info.get("gpu_mem_hint", ""))

    def map(self, bus: int, size: int) -> Tuple[Any, Callable[[], None]]:
        self.request("map", {"bus": bus, "size": size})
        mirror = MirroredBlock(bus, size, np.zeros(size, dtype=np.uint8))
        self._mirrors[mirror.phys] = mirror

        def unmap() -> None:
            self._mirrors.pop(mirror.phys, None)
            if not self.broken:
                self.request("unmap", {"bus": bus}, timeout=self.cleanup_timeout)

        return mirror.data, unmap

    def register_program(self, bus: int, program: Any) -> None:
        if not self._wants_programs or self._programs.get(bus) is program:
            return
        body, code = program_to_wire(program)
        body["bus"] = bus
        self.request("program", body, [code])
        self._programs[bus] = program

    def _uploads(self) -> Tuple[List[List[int]], List[bytes]]:
        ranges: List[Tuple[int, int]] = []
        blobs: List[bytes] = []
        for m in self._mirrors.values():
            for off, n in changed_ranges(m.data, m.shadow, SYNC_CHUNK):
                data = m.data[off:off + n]
                blobs.append(data.tobytes())
                m.shadow[off:off + n] = data
                ranges.append((m.bus + off, n))
        return ranges_payload(ranges), blobs

    def _apply(self, ranges: Any, blobs: List[bytes]) -> None:
        if not isinstance(ranges, list) or len(ranges) != len(blobs):
            raise RemoteProtocolError("the server's answer has a different number of ranges and data blobs")
        for (bus, n), blob in zip(ranges, blobs):
            for m in self._mirrors.values():
                off = m.offset(int(bus), int(n))
                if off is not None and len(blob) == n:
                    data = np.frombuffer(blob, dtype=np.uint8)
                    m.data[off:off + n] = data
                    m.shadow[off:off + n] = data
                    break
            else:
                raise RemoteProtocolError(f"the server sent {n} bytes for {bus:#010x}, outside the mapped memory")

    def flush(self) -> int:
        """Send local changes now (execute does this itself); returns the number of bytes sent."""
        ranges, blobs = self._uploads()
        if ranges:
            self.request("write", {"writes": ranges}, blobs)
        return sum(len(b) for b in blobs)

    def refresh(self, mode: str = "changed") -> int:
        """Fetch what differs between the server's memory and this side (or everything: mode="all")."""
        self.flush()
        body, blobs = self.request("read", {"mode": mode, "limit": None})
        self._apply(body.get("reads", []), blobs)
        return sum(len(b) for b in blobs)

    def set_outputs(self, *arrays: Any) -> None:
        """Bring back only these arrays (anything with ``.address`` and ``.nbytes``, or (bus, nbytes))
        after each job; no argument: everything mapped again."""
        if not arrays:
            self._outputs = None
            return
        out: List[Tuple[int, int]] = []
        for a in arrays:
            if isinstance(a, tuple):
                out.append((int(a[0]), int(a[1])))
            else:
                lo = int(np.min(a.addresses())) if a.size else int(a.address)
                hi = int(np.max(a.addresses())) + a.itemsize if a.size else lo
                out.append((lo, hi - lo))
        self._outputs = out

    @contextlib.contextmanager
    def outputs(self, *arrays: Any) -> Iterator[None]:
        """``with drv.backend.outputs(out): drv.execute(...)``: download only ``out`` in the block."""
        saved = self._outputs
        self.set_outputs(*arrays)
        try:
            yield
        finally:
            self._outputs = saved

    def execute(self, num_qpus: int, control_bus: int, timeout_ms: int) -> RunReport:
        ranges, blobs = self._uploads()
        body = {"num_qpus": num_qpus, "control": control_bus, "timeout_ms": timeout_ms, "writes": ranges,
                "download": self.sync, "limit": None if self._outputs is None else ranges_payload(self._outputs)}
        msg = self._exchange("execute", body, blobs, self.timeout + timeout_ms / 1000.0)
        self._apply(msg.body.get("reads", []), msg.blobs)
        if msg.kind == KIND_ERROR:
            raise error_from_wire(msg.body, self.url)
        report = report_from_wire(msg.body["report"])
        if report.hazards and not report.measured:
            # the local emulator warns as it runs; the server's warnings arrive here with the report
            from qpu.emulator.errors import EmulatorWarning

            for finding in report.hazards:
                warnings.warn(str(finding.message), EmulatorWarning, stacklevel=3)
        return report

    def close(self) -> None:
        if self._transport is None:
            return
        if not self.broken:
            try:
                self.request("bye", timeout=self.cleanup_timeout)
            except RemoteError as exc:
                log.info("qpu.runtime: %s did not acknowledge the end of the session: %s", self.url, exc)
        self._close_transport()

    def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        if not self.broken:
            self.broken = "closed"
        self._mirrors.clear()


def _client_name() -> str:
    from qpu import __version__

    return f"qpu-videocore {__version__}"
