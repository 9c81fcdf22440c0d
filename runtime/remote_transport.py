"""Byte pipes for the remote backend: a TCP socket or a serial line (pyserial), and their URLs.

    tcp://HOST:PORT                       (PORT defaults to 5555)
    serial:///dev/ttyUSB0?baud=115200     (baud defaults to 115200; serial://COM3?baud=... on Windows)

A transport has ``send(data)``, ``recv(max_bytes, timeout)`` (b"" when nothing came
within ``timeout`` seconds; ``RemoteConnectionError`` once the other end has closed),
``discard_input()``, ``close()``, ``description`` and ``serial`` (True for a serial
line: the protocol then compresses payloads, because a serial line is slow).

pyserial is an optional dependency (``pip install qpu-videocore[remote]``): it is
imported only when a serial line is opened.
"""

from __future__ import annotations

import socket
from typing import Any, Optional, Tuple
from urllib.parse import parse_qs, urlparse

from .errors import DriverConfigError, RemoteConnectionError

DEFAULT_PORT = 5555
DEFAULT_BAUD = 115200


def import_serial() -> Any:
    """The pyserial module, or an error saying how to install it."""
    try:
        import serial
    except ImportError:
        raise RemoteConnectionError(
            "the serial transport needs pyserial, which is not installed: `pip install pyserial` (or "
            "`pip install qpu-videocore[remote]`); a TCP link (tcp://HOST:5555) needs nothing extra") from None
    if not hasattr(serial, "Serial"):
        raise RemoteConnectionError("the module named 'serial' found is not pyserial (it has no serial.Serial): "
                                    "`pip uninstall serial; pip install pyserial`")
    return serial


def parse_url(url: str) -> Tuple[str, str, int]:
    """("tcp", host, port) or ("serial", device, baud) of a remote URL."""
    parsed = urlparse(url)
    if parsed.scheme == "tcp":
        host = parsed.hostname
        try:
            port = parsed.port or DEFAULT_PORT
        except ValueError:
            port = -1
        if not host or not 0 < port < 65536:
            raise DriverConfigError(f"bad remote address {url!r}: expected tcp://HOST:PORT, e.g. tcp://raspberrypi:5555")
        return "tcp", host, port
    if parsed.scheme == "serial":
        device = parsed.netloc + parsed.path
        query = parse_qs(parsed.query)
        try:
            baud = int(query.get("baud", [DEFAULT_BAUD])[0])
        except ValueError:
            baud = 0
        unknown = sorted(set(query) - {"baud"})
        if not device or baud <= 0 or unknown:
            raise DriverConfigError(f"bad remote address {url!r}: expected serial:///dev/ttyUSB0?baud=115200 "
                                    "(the only option is baud)")
        return "serial", device, baud
    raise DriverConfigError(f"bad remote address {url!r}: use tcp://HOST:PORT or serial:///dev/DEVICE?baud=N")


def parse_listen_address(text: str) -> Tuple[str, int]:
    """HOST:PORT (or :PORT, or PORT) for ``qpu serve --tcp``."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port < 65536:
        raise DriverConfigError(f"bad listening address {text!r}: expected HOST:PORT, e.g. 0.0.0.0:5555")
    return host.strip("[]") or "0.0.0.0", port


class SocketTransport:
    """A connected TCP socket."""

    serial = False

    def __init__(self, sock: socket.socket, description: str) -> None:
        self.sock = sock
        self.description = description
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # small request frames: no Nagle delay
        except OSError:
            pass

    @classmethod
    def connect(cls, host: str, port: int, timeout: float) -> SocketTransport:
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise RemoteConnectionError(
                f"cannot connect to the qpu server at tcp://{host}:{port}: {exc.strerror or exc}. Is "
                f"`qpu serve --tcp 0.0.0.0:{port}` running on the Pi, and is the port reachable?") from None
        return cls(sock, f"tcp://{host}:{port}")

    def send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(None)
            self.sock.sendall(data)
        except OSError as exc:
            raise RemoteConnectionError(f"the connection to {self.description} was lost: {exc}") from None

    def recv(self, max_bytes: int, timeout: Optional[float]) -> bytes:
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(max_bytes)
        except socket.timeout:
            return b""
        except OSError as exc:
            raise RemoteConnectionError(f"the connection to {self.description} was lost: {exc}") from None
        if not data:
            raise RemoteConnectionError(f"{self.description} closed the connection")
        return data

    def discard_input(self) -> None:
        pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class SerialTransport:
    """A serial line opened with pyserial (8N1, no flow control, raw bytes)."""

    serial = True

    def __init__(self, port: Any, description: str) -> None:
        self.port = port
        self.description = description

    @classmethod
    def open(cls, device: str, baud: int) -> SerialTransport:
        serial = import_serial()
        try:
            port = serial.Serial(device, baudrate=baud, timeout=0.1, write_timeout=None)
        except (OSError, ValueError, serial.SerialException) as exc:
            raise RemoteConnectionError(
                f"cannot open the serial line {device}: {exc}. Check the device name, that no other "
                "program (a login console on the Pi's side: `sudo raspi-config` > Interface > Serial) "
                "uses it, and that you may open it (group dialout)") from None
        return cls(port, f"serial://{device}?baud={baud}")

    def send(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as exc:    # pyserial raises SerialException (an OSError on most versions)
            raise RemoteConnectionError(f"writing to {self.description} failed: {exc}") from None

    def recv(self, max_bytes: int, timeout: Optional[float]) -> bytes:
        try:
            self.port.timeout = timeout
            first = self.port.read(1)
            if not first:
                return b""
            waiting = min(max(int(self.port.in_waiting), 0), max_bytes - 1)
            return first + (self.port.read(waiting) if waiting else b"")
        except Exception as exc:
            raise RemoteConnectionError(f"reading from {self.description} failed: {exc}") from None

    def discard_input(self) -> None:
        try:
            self.port.reset_input_buffer()
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass


def open_transport(url: str, connect_timeout: float = 10.0) -> Any:
    kind, where, number = parse_url(url)
    if kind == "tcp":
        return SocketTransport.connect(where, number, connect_timeout)
    return SerialTransport.open(where, number)
