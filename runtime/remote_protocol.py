"""The remote backend's wire format: checksummed, length-prefixed frames carrying JSON and bytes.

docs/remote.md is the full description; in short, every message is one frame::

    offset  size  field
    0       2     magic b"QV"
    2       1     protocol version (PROTOCOL_VERSION)
    3       1     kind: 1 request, 2 response, 3 error; bit 7 set = payload is zlib-compressed
    4       4     request id (u32, little-endian); a response or error repeats its request's id
    8       4     payload length n (u32, little-endian)
    12      4     CRC-32 of bytes 0..11 (a corrupted length is caught before it is trusted)
    16      n     payload
    16+n    4     CRC-32 of the payload

and every payload is ``u32 json_length, json (UTF-8 object), u32 blob_count, (u32
length, bytes) * blob_count``: small fields as JSON, array data as raw blobs.
Nothing received is ever executed or unpickled: JSON only carries numbers, strings,
lists and objects, and the few structured types (``Finding``, ``SourceLocation``,
exceptions of this package) are rebuilt field by field from an allow-list.

A reader resynchronises on a damaged stream (serial lines drop and corrupt bytes):
it scans for the magic, checks the header CRC, and reports a frame whose payload CRC
fails, or bytes that never formed a frame, as ``CorruptFrameError`` so the caller
can ask again (requests are answered at most once: the server keeps its last answer).
"""

from __future__ import annotations

import importlib
import json
import math
import struct
import time
import zlib
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from qpu.errors import QPUError, SourceLocation

from .backends import BUS_ALIAS_MASK
from .errors import CorruptFrameError, RemoteProtocolError, RemoteServerError, RemoteTimeoutError

PROTOCOL_VERSION = 1
MAGIC = b"QV"
HEADER = struct.Struct("<2sBBII")       # magic, version, kind|flags, request id, payload length
CRC = struct.Struct("<I")
HEADER_SIZE = HEADER.size + CRC.size    # 16
TRAILER_SIZE = CRC.size

KIND_REQUEST = 1
KIND_RESPONSE = 2
KIND_ERROR = 3
KIND_MASK = 0x0F
FLAG_ZLIB = 0x80
KIND_NAMES = {KIND_REQUEST: "request", KIND_RESPONSE: "response", KIND_ERROR: "error"}

MAX_PAYLOAD = 1 << 28          # 256 MiB: more than any GPU share of a Pi Zero/1/2/3
COMPRESS_MIN = 256             # smaller payloads are sent as they are
SYNC_CHUNK = 64                # granularity of change detection between the mirrors (bytes)


class Message(NamedTuple):
    """One received frame, decoded."""

    kind: int
    request_id: int
    body: Dict[str, Any]
    blobs: List[bytes]
    version: int = PROTOCOL_VERSION


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _corrupt(message: str, request_id: Optional[int]) -> CorruptFrameError:
    exc = CorruptFrameError(message)
    exc.request_id = request_id  # type: ignore[attr-defined]
    return exc


# -- payloads ----------------------------------------------------------------------------------------

def encode_payload(body: Dict[str, Any], blobs: Sequence[bytes] = ()) -> bytes:
    text = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
    parts = [struct.pack("<I", len(text)), text, struct.pack("<I", len(blobs))]
    for blob in blobs:
        parts.append(struct.pack("<I", len(blob)))
        parts.append(bytes(blob))
    return b"".join(parts)


def decode_payload(payload: bytes) -> Tuple[Dict[str, Any], List[bytes]]:
    try:
        n, = struct.unpack_from("<I", payload, 0)
        body = json.loads(payload[4:4 + n].decode("utf-8"))
        pos = 4 + n
        count, = struct.unpack_from("<I", payload, pos)
        pos += 4
        blobs = []
        for _ in range(count):
            size, = struct.unpack_from("<I", payload, pos)
            pos += 4
            if pos + size > len(payload):
                raise ValueError("a blob runs past the end of the payload")
            blobs.append(payload[pos:pos + size])
            pos += size
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"malformed message payload: {exc}") from None
    if pos != len(payload) or not isinstance(body, dict):
        raise RemoteProtocolError("malformed message payload: trailing bytes or a body that is not an object")
    return body, blobs


def encode_frame(kind: int, request_id: int, body: Dict[str, Any], blobs: Sequence[bytes] = (), *,
                 compress: bool = False, version: int = PROTOCOL_VERSION) -> bytes:
    payload = encode_payload(body, blobs)
    flags = 0
    if compress and len(payload) >= COMPRESS_MIN:
        packed = zlib.compress(payload, 1)
        if len(packed) < len(payload):
            payload, flags = packed, FLAG_ZLIB
    if len(payload) > MAX_PAYLOAD:
        raise RemoteProtocolError(f"a message of {len(payload)} bytes exceeds the protocol's limit of "
                                  f"{MAX_PAYLOAD} bytes: use smaller areas (Driver(data_area_size=...))")
    header = HEADER.pack(MAGIC, version, kind | flags, request_id & 0xFFFFFFFF, len(payload))
    return b"".join((header, CRC.pack(_crc(header)), payload, CRC.pack(_crc(payload))))


# -- reading frames from a byte stream ---------------------------------------------------------------

class FrameReader:
    """Frames out of a transport's byte stream, resynchronising after damage.

    ``transport.recv(max_bytes, timeout)`` returns what arrived (b"" when ``timeout``
    seconds pass without data) and raises RemoteConnectionError at end of stream.
    """

    def __init__(self, transport: Any, poll: float = 0.25) -> None:
        self.transport = transport
        self.poll = poll
        self._buf = bytearray()
        self._skipped = 0
        self.garbage_bytes = 0      # bytes discarded while looking for frames (statistics)
        self.bytes_read = 0

    def read_frame(self, timeout: Optional[float], idle_timeout: float, stop: Any = None) -> Message:
        """The next frame.  ``timeout``: seconds to wait for it to start (None: forever, or until
        ``stop.is_set()``); ``idle_timeout``: longest silence inside a frame or after garbage."""
        start = time.monotonic()
        last_data = start
        while True:
            message = self._parse()
            if message is not None:
                return message
            now = time.monotonic()
            inside = bool(self._buf or self._skipped)
            if inside:
                wait = last_data + idle_timeout - now
            elif timeout is not None:
                wait = start + timeout - now
            else:
                wait = self.poll
            if stop is not None:
                if stop.is_set():
                    raise EOFError("stopped")
                wait = min(wait, self.poll)
            data = self.transport.recv(1 << 16, max(wait, 0.001))
            if data:
                self._buf += data
                self.bytes_read += len(data)
                last_data = time.monotonic()
                continue
            if wait > 0:
                continue
            if inside:
                lost = len(self._buf) + self._skipped
                self.garbage_bytes += lost
                self._buf.clear()
                self._skipped = 0
                raise _corrupt(f"{lost} bytes arrived that do not form a valid frame (damaged or cut short)", None)
            if timeout is not None:
                raise RemoteTimeoutError(f"no answer within {timeout:g} s")

    def _parse(self) -> Optional[Message]:
        buf = self._buf
        while True:
            at = buf.find(MAGIC)
            if at < 0:
                keep = 1 if buf[-1:] == MAGIC[:1] else 0
                self._skipped += len(buf) - keep
                del buf[:len(buf) - keep]
                return None
            if at:
                self._skipped += at
                del buf[:at]
            if len(buf) < HEADER_SIZE:
                return None
            header = bytes(buf[:HEADER.size])
            if CRC.unpack_from(buf, HEADER.size)[0] != _crc(header):
                self._skipped += 1          # not a frame start after all: look further
                del buf[:1]
                continue
            break
        _, version, kind_flags, request_id, length = HEADER.unpack(header)
        if length > MAX_PAYLOAD:
            del buf[:HEADER_SIZE]
            raise RemoteProtocolError(f"a frame announces {length} bytes, more than the protocol's limit")
        end = HEADER_SIZE + length + TRAILER_SIZE
        if len(buf) < end:
            return None
        payload = bytes(buf[HEADER_SIZE:HEADER_SIZE + length])
        good = CRC.unpack_from(buf, HEADER_SIZE + length)[0] == _crc(payload)
        del buf[:end]
        if self._skipped:
            self.garbage_bytes += self._skipped
            self._skipped = 0
        if not good:
            raise _corrupt(f"the payload of {KIND_NAMES.get(kind_flags & KIND_MASK, 'a')} frame {request_id} "
                           "failed its CRC-32 check", request_id)
        if kind_flags & FLAG_ZLIB:
            try:
                inflater = zlib.decompressobj()
                payload = inflater.decompress(payload, MAX_PAYLOAD)
                if inflater.unconsumed_tail:
                    raise zlib.error("inflates beyond the protocol's size limit")
            except zlib.error as exc:
                raise RemoteProtocolError(f"frame {request_id}: bad compressed payload ({exc})") from None
        if version != PROTOCOL_VERSION:
            # the header layout is fixed across versions, the payload is not: do not parse it
            return Message(kind_flags & KIND_MASK, request_id, {}, [], version)
        body, blobs = decode_payload(payload)
        return Message(kind_flags & KIND_MASK, request_id, body, blobs, version)


# -- memory synchronisation ---------------------------------------------------------------------------

class MirroredBlock:
    """One mapped block of GPU memory as either end of the link holds it: ``data`` (the
    local memory: the client's copy, or the server's view of the real block) and ``shadow``
    (what the other end last saw), so that only changed ranges travel."""

    def __init__(self, bus: int, size: int, data: np.ndarray) -> None:
        self.bus = bus
        self.phys = bus & ~BUS_ALIAS_MASK
        self.size = size
        self.data = data
        self.shadow = np.zeros(size, dtype=np.uint8)

    def offset(self, bus: int, nbytes: int) -> Optional[int]:
        """Offset of [bus, bus + nbytes) in the block (any bus alias), or None if not inside it."""
        off = (bus & ~BUS_ALIAS_MASK) - self.phys
        return off if 0 <= off and off + nbytes <= self.size else None


def changed_ranges(current: np.ndarray, reference: np.ndarray, chunk: int = SYNC_CHUNK,
                   slab: int = 4 << 20) -> List[Tuple[int, int]]:
    """(offset, length) of the runs of ``chunk``-byte pieces where two uint8 arrays differ.

    Both sides of the link use this to find what to send: the client compares its
    arrays with what the server is known to hold, the server compares GPU memory
    after a job with what the client is known to hold.  Works in slabs so a large
    area needs little temporary memory.
    """
    size = len(current)
    runs: List[Tuple[int, int]] = []
    for base in range(0, size, slab):
        end = min(base + slab, size)
        a, b = current[base:end], reference[base:end]
        whole = (end - base) // chunk * chunk
        if whole:
            if chunk % 8 == 0 and a.ctypes.data % 8 == 0 and b.ctypes.data % 8 == 0:
                diff = (a[:whole].view("<u8") != b[:whole].view("<u8")).reshape(-1, chunk // 8).any(axis=1)
            else:
                diff = (a[:whole] != b[:whole]).reshape(-1, chunk).any(axis=1)
            idx = np.flatnonzero(diff)
            if idx.size:
                breaks = np.flatnonzero(np.diff(idx) > 1)
                starts = np.concatenate(([idx[0]], idx[breaks + 1]))
                stops = np.concatenate((idx[breaks], [idx[-1]]))
                for s, e in zip(starts.tolist(), stops.tolist()):
                    _append_run(runs, base + s * chunk, (e - s + 1) * chunk)
        if whole < end - base and not np.array_equal(a[whole:], b[whole:]):
            _append_run(runs, base + whole, end - base - whole)
    return runs


def _append_run(runs: List[Tuple[int, int]], offset: int, length: int) -> None:
    if runs and runs[-1][0] + runs[-1][1] == offset:
        runs[-1] = (runs[-1][0], runs[-1][1] + length)
    else:
        runs.append((offset, length))


# -- values on the wire -------------------------------------------------------------------------------

def to_wire(value: Any) -> Any:
    """A JSON-able form of a value; Finding and SourceLocation become tagged objects."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else repr(v)
    if isinstance(value, SourceLocation):
        return {"__type__": "SourceLocation", "file": value.file, "line": value.line, "function": value.function}
    if type(value).__name__ == "Finding" and hasattr(value, "rule") and hasattr(value, "message"):
        from dataclasses import fields

        out = {"__type__": "Finding"}
        out.update({f.name: to_wire(getattr(value, f.name)) for f in fields(value)})
        return out
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return repr(value)


def from_wire(value: Any) -> Any:
    """Inverse of ``to_wire`` (tagged objects are rebuilt only for the two known types)."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__type__")
    if kind == "SourceLocation":
        return SourceLocation(str(value.get("file", "")), int(value.get("line", 0)), str(value.get("function", "")))
    if kind == "Finding":
        from qpu.emulator.report import Finding

        known = set(Finding.__dataclass_fields__)
        args = {k: from_wire(v) for k, v in value.items() if k in known}
        if isinstance(args.get("details"), list):
            args["details"] = tuple(args["details"])
        return Finding(**args)
    return {k: from_wire(v) for k, v in value.items()}


# -- errors on the wire -------------------------------------------------------------------------------

# Modules whose QPUError subclasses a client rebuilds (imported by name from this list only).
ERROR_MODULES = ("qpu.errors", "qpu.runtime.errors", "qpu.emulator.errors", "qpu.emulator.firmware",
                 "qpu.emulator.memory", "qpu.emulator.timing")


def error_to_wire(exc: BaseException) -> Dict[str, Any]:
    """Class (and its bases, for older clients), message and plain attributes of an exception."""
    mro = [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__ if issubclass(c, BaseException)]
    attrs = {}
    for k, v in vars(exc).items():
        if not k.startswith("_"):
            attrs[k] = to_wire(v)
    return {"class": mro[0], "mro": mro, "message": str(exc), "attrs": attrs}


def _allowed_class(path: str) -> Optional[type]:
    module_name, _, name = path.rpartition(".")
    if module_name not in ERROR_MODULES or not name.isidentifier():
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    cls = getattr(module, name, None)
    if isinstance(cls, type) and issubclass(cls, QPUError):
        return cls
    return None


def error_from_wire(info: Dict[str, Any], where: str = "") -> BaseException:
    """The exception a server reported, as the same class when it is one of this package's.

    An unknown class (a newer server) falls back to its nearest known base; anything
    else (a bug or an OS error on the server) becomes RemoteServerError.
    """
    message = str(info.get("message", ""))
    if where:
        message += f"\n(reported by the qpu server at {where})"
    for path in [str(info.get("class", ""))] + [str(p) for p in info.get("mro", [])]:
        cls = _allowed_class(path)
        if cls is None:
            continue
        exc = cls.__new__(cls)
        exc.args = (message,)
        attrs = info.get("attrs") or {}
        if isinstance(attrs, dict):
            for k, v in attrs.items():
                if isinstance(k, str) and not k.startswith("_"):
                    try:
                        setattr(exc, k, from_wire(v))
                    except (AttributeError, TypeError):
                        pass
        return exc
    return RemoteServerError(f"the qpu server failed with {info.get('class', '?')}: {message}")


# -- run reports and programs -------------------------------------------------------------------------

_JOB_FIELDS = ("instructions", "cycles", "seconds", "clock_hz", "host_interrupts", "completed", "semaphores")


def report_to_wire(report: Any) -> Dict[str, Any]:
    out = {name: to_wire(getattr(report, name)) for name in (
        "backend", "num_qpus", "seconds", "clock_hz", "measured", "instructions", "cycles", "per_qpu", "stalls",
        "hazards", "counters", "warnings")}
    job = getattr(report, "job", None)
    if job is not None:
        fields = {name: to_wire(getattr(job, name, None)) for name in _JOB_FIELDS}
        profile = getattr(job, "profile", None) or {}
        fields["profile"] = [[int(a), int(e), int(s)] for a, (e, s) in sorted(profile.items())]
        out["job"] = fields
    return out


def report_from_wire(data: Dict[str, Any]) -> Any:
    from .report import RunReport

    job = None
    if isinstance(data.get("job"), dict):
        from qpu.emulator.report import JobReport

        j = data["job"]
        job = JobReport(**{k: j[k] for k in _JOB_FIELDS if j.get(k) is not None})
        job.per_qpu = list(data.get("per_qpu") or [])
        job.stalls = dict(data.get("stalls") or {})
        job.hazards = from_wire(data.get("hazards") or [])
        job.profile = {int(a): (int(e), int(s)) for a, e, s in j.get("profile") or []}
    return RunReport(str(data.get("backend", "remote")), int(data["num_qpus"]), float(data["seconds"]),
                     int(data["clock_hz"]), measured=bool(data.get("measured")),
                     instructions=data.get("instructions"), cycles=data.get("cycles"),
                     per_qpu=list(data.get("per_qpu") or []), stalls=dict(data.get("stalls") or {}),
                     hazards=from_wire(data.get("hazards") or []), counters=dict(data.get("counters") or {}),
                     warnings=list(data.get("warnings") or []), job=job)


def program_to_wire(program: Any) -> Tuple[Dict[str, Any], bytes]:
    """What the server's emulator needs to name kernel lines in its messages, and the code."""
    source = [None if loc is None else [loc.file, loc.line, loc.function] for loc in program.source]
    return ({"name": program.name, "labels": {str(k): int(v) for k, v in program.labels.items()},
             "source": source}, program.to_bytes())


def program_from_wire(body: Dict[str, Any], code: bytes) -> Any:
    from qpu.program import Program

    source: List[Optional[SourceLocation]] = []
    for item in body.get("source") or []:
        if isinstance(item, list) and len(item) == 3:
            source.append(SourceLocation(str(item[0]), int(item[1]), str(item[2])))
        else:
            source.append(None)
    program = Program.from_bytes(code, name=str(body.get("name", "")))
    program.labels = {str(k): int(v) for k, v in (body.get("labels") or {}).items()}
    program.source = (source + [None] * len(program.words))[:len(program.words)]
    return program


def ranges_payload(ranges: Iterable[Tuple[int, int]]) -> List[List[int]]:
    return [[int(a), int(n)] for a, n in ranges]
