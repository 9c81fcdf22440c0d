"""``qpu serve``: run QPU jobs on this Pi for a Driver on another machine (the "remote" backend).

    qpu serve --tcp 0.0.0.0:5555                      # a Pi on the network
    qpu serve --serial /dev/ttyAMA0 --baud 115200     # a Pi on a serial line
    qpu serve --tcp 127.0.0.1:5555 --backend emulator # the emulator (tests, demos)

The server owns one local backend (the firmware mailbox on a Pi, or the emulator)
for its lifetime and executes the requests of docs/remote.md with it.  A *session*
is one client: a TCP connection, or on a serial line everything from one ``hello``
to the next.  Everything a session allocated is unmapped, unlocked and released
when it says ``bye``, when its connection drops, when a new session starts on the
same serial line, and when the server shuts down; the server also disables the
QPUs when it stops.  Requests of all sessions go to the backend one at a time.

Each session keeps a *shadow* copy of the GPU memory it mapped: what its client is
known to hold.  After a job, the server compares memory with the shadow and sends
back only what changed (or everything in scope, in "all" mode).  Blocks start
zero-filled on both sides, so the two ends agree from the first byte.

Security: a client can run arbitrary QPU code, and the QPUs' DMA reaches all of the
Pi's memory.  Anyone who can connect can therefore do anything root can: listen on
a trusted network only (127.0.0.1 with an SSH tunnel is the safe choice).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from qpu.errors import QPUError

from .backends import BUS_ALIAS_MASK
from .errors import CorruptFrameError, RemoteConnectionError, RemoteProtocolError, RemoteTimeoutError
from .remote_protocol import (
    KIND_ERROR,
    KIND_REQUEST,
    KIND_RESPONSE,
    PROTOCOL_VERSION,
    SYNC_CHUNK,
    FrameReader,
    Message,
    MirroredBlock,
    changed_ranges,
    encode_frame,
    error_to_wire,
    program_from_wire,
    report_to_wire,
)
from .remote_transport import SerialTransport, SocketTransport

log = logging.getLogger("qpu.runtime.server")

IDLE_TIMEOUT = 5.0          # longest silence inside a frame before it counts as damaged


def make_backend(kind: str = "mailbox", **options: Any) -> Any:
    """The local backend a server drives: "mailbox" (a Pi) or "emulator" (options: pi_model,
    clock_hz, strict, gpu_mem, timing)."""
    from .backends import EmulatorBackend, MailboxBackend

    if kind == "mailbox":
        return MailboxBackend(options.get("pi_model"), counters=options.get("counters", True))
    if kind == "emulator":
        return EmulatorBackend(options.get("pi_model"), clock_hz=options.get("clock_hz"),
                               strict=options.get("strict", True), gpu_mem=options.get("gpu_mem", 256 << 20),
                               timing=options.get("timing"))
    raise RemoteProtocolError(f"unknown server backend {kind!r}: use 'mailbox' or 'emulator'")


class _Mapped(MirroredBlock):
    """A block a session mapped: the backend's view of it, the client's last known contents
    (MirroredBlock) and how to unmap it."""

    def __init__(self, bus: int, size: int, data: np.ndarray, unmap: Callable[[], None]) -> None:
        super().__init__(bus, size, data)
        self.unmap = unmap


class _Allocation:
    def __init__(self, size: int) -> None:
        self.size = -(-size // 4096) * 4096      # the firmware allocates whole pages
        self.locks = 0
        self.bus = 0


class Session:
    """One client's state: its allocations, mappings and the last answer (for retransmissions)."""

    def __init__(self, server: RemoteServer, link: str, nonce: str = "") -> None:
        self.server = server
        self.link = link
        self.nonce = nonce
        self.handles: Dict[int, _Allocation] = {}
        self.mapped: Dict[int, _Mapped] = {}      # physical address -> mapping
        self.last_id = 0
        self.last_answer = b""
        self.closed = False

    # -- memory -----------------------------------------------------------------------------------

    def find(self, bus: int, nbytes: int) -> Tuple[_Mapped, int]:
        for m in self.mapped.values():
            off = m.offset(bus, nbytes)
            if off is not None:
                return m, off
        raise RemoteProtocolError(f"{nbytes} bytes at bus address {bus:#010x} are not in memory this session "
                                  "mapped")

    def release(self) -> None:
        """Unmap, unlock and release everything this session still holds."""
        if self.closed:
            return
        self.closed = True
        backend = self.server.backend
        mailbox = backend.mailbox
        with self.server.lock:
            for m in list(self.mapped.values()):
                _quietly(m.unmap, "unmap", m.bus)
            self.mapped.clear()
            for handle, alloc in list(self.handles.items()):
                for _ in range(alloc.locks):
                    _quietly(lambda h=handle: mailbox.mem_unlock(h), "unlock", handle)
                _quietly(lambda h=handle: mailbox.mem_release(h), "release", handle)
            if self.handles:
                log.info("qpu serve: released %d allocation(s) of %s", len(self.handles), self.link)
            self.handles.clear()


def _quietly(fn: Callable[[], Any], what: str, key: int) -> None:
    try:
        fn()
    except Exception as exc:   # keep releasing: what is not released is lost until reboot
        log.warning("qpu serve: could not %s %#x: %s", what, key, exc)


class RemoteServer:
    """Serves one local backend to remote Drivers (``serve_tcp``, ``serve_serial``, ``shutdown``)."""

    def __init__(self, backend: Any, *, compress: Optional[bool] = None, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.backend = backend
        self.compress = compress
        self.idle_timeout = idle_timeout
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._sessions: List[Session] = []
        self._threads: List[threading.Thread] = []
        self._listener: Any = None
        self._closed = False
        self.address: Optional[Tuple[str, int]] = None

    # -- lifetime ---------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop serving, release every session's memory, disable the QPUs (close the backend)."""
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(timeout=10)
        for s in list(self._sessions):
            s.release()
        self._sessions.clear()
        with self.lock:
            if not self._closed:
                self._closed = True
                try:
                    self.backend.close()
                except Exception as exc:
                    log.warning("qpu serve: closing the %s backend: %s", getattr(self.backend, "name", "?"), exc)

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # -- links ------------------------------------------------------------------------------------

    def listen_tcp(self, host: str, port: int) -> Tuple[str, int]:
        """Bind and listen; returns the bound (host, port) (port 0 picks a free one)."""
        import socket

        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise RemoteConnectionError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        sock.listen(4)
        sock.settimeout(0.25)
        self._listener = sock
        self.address = sock.getsockname()[:2]
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("qpu serve: listening on %s:%d: whoever can connect can run QPU code, which reaches all "
                        "of this machine's memory; use a trusted network (or 127.0.0.1 and an SSH tunnel)",
                        host, self.address[1])
        return self.address

    def serve_tcp(self, host: str = "0.0.0.0", port: int = 5555) -> None:
        """Accept connections until ``shutdown()``: one thread and one session per connection."""
        import socket

        if self._listener is None:
            self.listen_tcp(host, port)
        log.info("qpu serve: %s backend on tcp://%s:%d", self.backend.name, *self.address)  # type: ignore[misc]
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            transport = SocketTransport(conn, f"tcp://{peer[0]}:{peer[1]}")
            t = threading.Thread(target=self.serve_transport, args=(transport,), name=f"qpu-serve {peer}",
                                 daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> Tuple[str, int]:
        """Listen and serve in a background thread; returns the bound address (tests, embedding)."""
        address = self.listen_tcp(host, port)
        t = threading.Thread(target=self.serve_tcp, name="qpu-serve accept", daemon=True)
        self._threads.append(t)
        t.start()
        return address

    def serve_serial(self, device: str, baud: int = 115200) -> None:
        """Serve one serial line until ``shutdown()``."""
        transport = SerialTransport.open(device, baud)
        log.info("qpu serve: %s backend on %s", self.backend.name, transport.description)
        self.serve_transport(transport)

    def start_serial(self, device: str, baud: int = 115200) -> None:
        transport = SerialTransport.open(device, baud)
        t = threading.Thread(target=self.serve_transport, args=(transport,), name="qpu-serve serial", daemon=True)
        self._threads.append(t)
        t.start()

    def serve_transport(self, transport: Any) -> None:
        """Answer requests from one link until it closes or the server stops."""
        reader = FrameReader(transport)
        compress = transport.serial if self.compress is None else self.compress
        session: Optional[Session] = None
        try:
            while not self._stop.is_set():
                try:
                    msg = reader.read_frame(None, self.idle_timeout, stop=self._stop)
                except CorruptFrameError as exc:
                    rid = getattr(exc, "request_id", None)
                    log.warning("qpu serve: damaged request from %s: %s", transport.description, exc)
                    # not executed and not remembered: the client sends the same request again
                    transport.send(encode_frame(KIND_ERROR, rid or 0, error_to_wire(exc), compress=compress))
                    continue
                except RemoteProtocolError as exc:
                    transport.send(encode_frame(KIND_ERROR, 0, error_to_wire(exc), compress=compress))
                    continue
                if msg.kind != KIND_REQUEST:
                    continue
                if msg.version != PROTOCOL_VERSION:
                    err = RemoteProtocolError(
                        f"the client speaks protocol version {msg.version}, this server {PROTOCOL_VERSION}: "
                        "install the same qpu-videocore version on both machines")
                    transport.send(encode_frame(KIND_ERROR, msg.request_id, error_to_wire(err)))
                    continue
                if msg.body.get("op") == "hello":
                    nonce = str(msg.body.get("nonce", ""))
                    if session is None or session.nonce != nonce or msg.request_id != session.last_id:
                        if session is not None:
                            self._end(session)
                        session = Session(self, transport.description, nonce)
                        with self.lock:
                            self._sessions.append(session)
                if session is None:
                    err = RemoteProtocolError("the first request of a session must be 'hello'")
                    transport.send(encode_frame(KIND_ERROR, msg.request_id, error_to_wire(err)))
                    continue
                if msg.request_id == session.last_id and session.last_answer:
                    transport.send(session.last_answer)      # a retransmission: answer again, do not redo
                    continue
                if msg.request_id < session.last_id:
                    continue                                  # a stale duplicate
                answer = self._answer(session, msg, compress)
                session.last_id = msg.request_id
                session.last_answer = answer
                transport.send(answer)
                if msg.body.get("op") == "bye":
                    self._end(session)
                    session = None
        except (RemoteConnectionError, EOFError, RemoteTimeoutError) as exc:
            log.info("qpu serve: %s: %s", transport.description, exc)
        finally:
            if session is not None:
                self._end(session)
            transport.close()

    def _end(self, session: Session) -> None:
        session.release()
        with self.lock:
            if session in self._sessions:
                self._sessions.remove(session)

    # -- requests ---------------------------------------------------------------------------------

    def _answer(self, session: Session, msg: Message, compress: bool) -> bytes:
        op = str(msg.body.get("op", ""))
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            err = RemoteProtocolError(f"unknown request {op!r} (this server speaks protocol {PROTOCOL_VERSION})")
            return encode_frame(KIND_ERROR, msg.request_id, error_to_wire(err), compress=compress)
        extra: Dict[str, Any] = {}
        try:
            with self.lock:
                if self._closed:
                    raise RemoteConnectionError("the qpu server is shutting down")
                body, blobs = handler(session, msg.body, msg.blobs, extra)
        except Exception as exc:
            if not isinstance(exc, QPUError):
                log.exception("qpu serve: %s request failed", op)
            info = error_to_wire(exc)
            blobs = extra.get("blobs", [])
            if "reads" in extra:
                info["reads"] = extra["reads"]
            return encode_frame(KIND_ERROR, msg.request_id, info, blobs, compress=compress)
        return encode_frame(KIND_RESPONSE, msg.request_id, body, blobs, compress=compress)

    def _op_hello(self, session: Session, body: Dict[str, Any], blobs: List[bytes], extra: Dict[str, Any]):
        b = self.backend
        pi = b.pi
        from qpu import __version__

        return {"protocol": PROTOCOL_VERSION, "server": f"qpu-videocore {__version__}", "backend": b.name,
                "pi": {"model": pi.model, "soc": pi.soc, "revision": pi.revision}, "clock_hz": int(b.clock_hz),
                "vc_base": int(getattr(b, "vc_base", 0)), "vc_size": int(getattr(b, "vc_size", 0)),
                "describe_memory": b.describe_memory(), "gpu_mem_hint": self._gpu_mem_hint(),
                "wants_programs": b.name == "emulator", "chunk": SYNC_CHUNK}, []

    def _gpu_mem_hint(self) -> str:
        if self.backend.name == "emulator":
            return "restart the server with a larger emulated memory: qpu serve --backend emulator --gpu-mem MIB"
        return str(self.backend.gpu_mem_hint())

    def _op_bye(self, session, body, blobs, extra):
        return {}, []

    def _op_alloc(self, session, body, blobs, extra):
        handle = int(self.backend.mailbox.mem_alloc(int(body["size"]), int(body["align"]), int(body["flags"])))
        if handle:
            session.handles[handle] = _Allocation(int(body["size"]))
        return {"handle": handle}, []

    def _own(self, session: Session, handle: int) -> int:
        if handle not in session.handles:
            raise RemoteProtocolError(f"handle {handle} was not allocated by this session")
        return handle

    def _op_lock(self, session, body, blobs, extra):
        handle = self._own(session, int(body["handle"]))
        bus = int(self.backend.mailbox.mem_lock(handle))
        if bus:
            session.handles[handle].locks += 1
            session.handles[handle].bus = bus
        return {"bus": bus}, []

    def _op_unlock(self, session, body, blobs, extra):
        handle = self._own(session, int(body["handle"]))
        status = int(self.backend.mailbox.mem_unlock(handle))
        if status == 0 and session.handles[handle].locks:
            session.handles[handle].locks -= 1
        return {"status": status}, []

    def _op_release(self, session, body, blobs, extra):
        handle = self._own(session, int(body["handle"]))
        status = int(self.backend.mailbox.mem_release(handle))
        if status == 0:
            del session.handles[handle]
        return {"status": status}, []

    def _op_map(self, session, body, blobs, extra):
        bus, size = int(body["bus"]), int(body["size"])
        if not self._locked_by(session, bus, size):
            raise RemoteProtocolError(f"map: {size} bytes at {bus:#010x} are not memory this session locked")
        buffer, unmap = self.backend.map(bus, size)
        data = buffer[:size] if isinstance(buffer, np.ndarray) else np.frombuffer(buffer, dtype=np.uint8, count=size)
        data[:] = 0          # both ends start from zeros (docs/remote.md)
        session.mapped[bus & ~BUS_ALIAS_MASK] = _Mapped(bus, size, data, unmap)
        return {}, []

    @staticmethod
    def _locked_by(session: Session, bus: int, size: int) -> bool:
        """True if [bus, bus+size) is one of this session's locked allocations: a client may map
        only what it allocated, never other physical memory (on a Pi, mapping goes through /dev/mem)."""
        return any(a.locks > 0 and a.bus & ~BUS_ALIAS_MASK == bus & ~BUS_ALIAS_MASK and 0 < size <= a.size
                   for a in session.handles.values())

    def _op_unmap(self, session, body, blobs, extra):
        m = session.mapped.pop(int(body["bus"]) & ~BUS_ALIAS_MASK, None)
        if m is not None:
            m.unmap()
        return {}, []

    def _op_program(self, session, body, blobs, extra):
        if blobs:
            self.backend.register_program(int(body["bus"]), program_from_wire(body, blobs[0]))
        return {}, []

    def _apply_writes(self, session: Session, ranges: List[List[int]], blobs: List[bytes]) -> None:
        if len(ranges) != len(blobs):
            raise RemoteProtocolError("writes: the number of ranges and data blobs differ")
        for (bus, n), blob in zip(ranges, blobs):
            if len(blob) != n:
                raise RemoteProtocolError(f"write at {bus:#010x}: {len(blob)} bytes of data for a {n}-byte range")
            m, off = session.find(int(bus), int(n))
            chunk = np.frombuffer(blob, dtype=np.uint8)
            m.data[off:off + n] = chunk
            m.shadow[off:off + n] = chunk

    def _collect(self, session: Session, mode: str, limit: Optional[List[List[int]]]
                 ) -> Tuple[List[List[int]], List[bytes]]:
        """Ranges (and their bytes) of session memory to send back: changed ones or all, within ``limit``."""
        scopes: List[Tuple[_Mapped, int, int]] = []
        if limit is None:
            scopes = [(m, 0, m.size) for m in session.mapped.values()]
        else:
            for bus, n in limit:
                for m in session.mapped.values():
                    lo = max((int(bus) & ~BUS_ALIAS_MASK) - m.phys, 0)
                    hi = min((int(bus) & ~BUS_ALIAS_MASK) + int(n) - m.phys, m.size)
                    if lo < hi:
                        scopes.append((m, lo, hi))
        ranges: List[List[int]] = []
        blobs: List[bytes] = []
        for m, lo, hi in scopes:
            if mode == "all":
                runs = [(lo, hi - lo)]
            else:
                runs = [(lo + o, n) for o, n in changed_ranges(m.data[lo:hi], m.shadow[lo:hi])]
            for off, n in runs:
                data = m.data[off:off + n].copy()
                m.shadow[off:off + n] = data
                ranges.append([m.bus + off, n])
                blobs.append(data.tobytes())
        return ranges, blobs

    def _op_write(self, session, body, blobs, extra):
        self._apply_writes(session, body.get("writes", []), blobs)
        return {}, []

    def _op_read(self, session, body, blobs, extra):
        mode = "all" if body.get("mode") == "all" else "changed"
        ranges, out = self._collect(session, mode, body.get("limit"))
        return {"reads": ranges}, out

    def _op_execute(self, session, body, blobs, extra):
        self._apply_writes(session, body.get("writes", []), blobs)
        mode = "all" if body.get("download") == "all" else "changed"
        limit = body.get("limit")
        try:
            report = self.backend.execute(int(body["num_qpus"]), int(body["control"]), int(body["timeout_ms"]))
        except BaseException:
            # what the job wrote before it failed goes back with the error
            extra["reads"], extra["blobs"] = self._collect(session, mode, limit)
            raise
        ranges, out = self._collect(session, mode, limit)
        return {"report": report_to_wire(report), "reads": ranges}, out


def serve(backend: str = "mailbox", *, tcp: Optional[str] = None, serial: Optional[str] = None,
          baud: int = 115200, ready: Optional[Callable[[str], None]] = None, **backend_options: Any) -> None:
    """Run a server until interrupted (``qpu serve``)."""
    from .remote_transport import parse_listen_address

    if (tcp is None) == (serial is None):
        raise RemoteProtocolError("give exactly one of --tcp HOST:PORT or --serial DEVICE")
    if backend == "emulator":
        # The first job compiles the emulator's loop (minutes on a fresh install): do it now, not
        # while a client waits for its first answer (numba caches the result on disk).
        from .selftest import selftest

        selftest(backend="emulator", gpu_mem=16 << 20)
    server = RemoteServer(make_backend(backend, **backend_options))
    try:
        if tcp is not None:
            host, port = parse_listen_address(tcp)
            bound = server.listen_tcp(host, port)
            if ready is not None:
                ready(f"qpu serve: {server.backend.name} backend ({server.backend.pi.model}, V3D "
                      f"{server.backend.clock_hz / 1e6:g} MHz) listening on tcp://{bound[0]}:{bound[1]}")
            server.serve_tcp()
        else:
            assert serial is not None
            if ready is not None:
                ready(f"qpu serve: {server.backend.name} backend ({server.backend.pi.model}) on serial line "
                      f"{serial} at {baud} baud")
            server.serve_serial(serial, baud)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
