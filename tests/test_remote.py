"""The remote backend: its frames, a server on localhost TCP, and a serial link over pseudo-terminals.

References: the frame layout of docs/remote.md decoded here with struct and zlib.crc32
(not the module's reader); numpy for data; the local emulator backend for what a run
report must say (the remote backend must not change it); the error classes and
attributes the local backends raise.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qpu.dsl import Kernel, r0, r1, uniform, vpm
from qpu.emulator.errors import EmulatorWarning, RuleViolation
from qpu.errors import AssemblyError, SourceLocation
from qpu.runtime import (
    CorruptFrameError,
    Driver,
    DriverConfigError,
    ExecuteTimeoutError,
    GPUAllocationError,
    MailboxPermissionError,
    RemoteConnectionError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteTimeoutError,
)
from qpu.runtime.remote import RemoteBackend
from qpu.runtime.remote_protocol import (
    KIND_ERROR,
    KIND_REQUEST,
    KIND_RESPONSE,
    FrameReader,
    changed_ranges,
    encode_frame,
    error_from_wire,
    error_to_wire,
)
from qpu.runtime.remote_server import RemoteServer, make_backend
from qpu.runtime.remote_transport import parse_listen_address, parse_url
from qpu.runtime.selftest import selftest, selftest_program

pytest.importorskip("qpu.emulator.v3d")

SMALL = {"data_area_size": 1 << 20, "code_area_size": 64 << 10}
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


# --- frames ------------------------------------------------------------------------------------------

class ChunkedTransport:
    """A byte stream handed out in given chunk sizes; then silence (b"")."""

    serial = True

    def __init__(self, data: bytes, chunks=(1 << 20,)) -> None:
        self.data = data
        self.chunks = list(chunks)

    def recv(self, max_bytes, timeout):
        if not self.data:
            return b""
        n = min(self.chunks.pop(0) if self.chunks else 1 << 20, max_bytes, len(self.data))
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_frame_bytes_follow_the_documented_layout():
    frame = encode_frame(KIND_RESPONSE, 7, {"handle": 5}, [b"\x01\x02\x03"])
    magic, version, kind, rid, length = struct.unpack_from("<2sBBII", frame, 0)
    assert (magic, version, kind, rid) == (b"QV", 1, 2, 7)
    assert struct.unpack_from("<I", frame, 12)[0] == zlib.crc32(frame[:12])
    payload = frame[16:16 + length]
    assert len(frame) == 16 + length + 4
    assert struct.unpack_from("<I", frame, 16 + length)[0] == zlib.crc32(payload)
    json_len = struct.unpack_from("<I", payload, 0)[0]
    assert json.loads(payload[4:4 + json_len]) == {"handle": 5}
    assert struct.unpack_from("<II", payload, 4 + json_len) == (1, 3)
    assert payload[12 + json_len:] == b"\x01\x02\x03"


def test_compressed_frames_carry_the_flag_and_inflate_back():
    blob = bytes(4096)
    frame = encode_frame(KIND_REQUEST, 3, {"op": "write"}, [blob], compress=True)
    assert frame[3] == KIND_REQUEST | 0x80 and len(frame) < 200
    msg = FrameReader(ChunkedTransport(frame)).read_frame(1.0, 0.0)
    assert msg.blobs == [blob] and msg.body == {"op": "write"} and msg.request_id == 3


@given(st.lists(st.binary(max_size=40), min_size=3, max_size=3), st.lists(st.integers(1, 60), max_size=30))
def test_reader_finds_frames_between_garbage_in_any_chunking(garbage, chunks):
    frames = [encode_frame(KIND_REQUEST, i + 1, {"op": "x", "i": i}, [bytes([i]) * i]) for i in range(2)]
    # garbage made of bytes that cannot start a frame header, so no accidental frame is in it
    garbage = [g.replace(b"Q", b"q") for g in garbage]
    stream = garbage[0] + frames[0] + garbage[1] + frames[1] + garbage[2]
    reader = FrameReader(ChunkedTransport(stream, chunks))
    got = []
    for _ in range(2):
        msg = reader.read_frame(1.0, 0.0)
        got.append((msg.request_id, msg.body, msg.blobs))
    assert got == [(1, {"op": "x", "i": 0}, [b""]), (2, {"op": "x", "i": 1}, [b"\x01"])]


def test_every_single_bit_flip_is_detected():
    frame = encode_frame(KIND_RESPONSE, 9, {"bus": 0xC0001000}, [b"\xaa" * 8])
    for byte in range(len(frame)):
        for bit in range(8):
            damaged = bytearray(frame)
            damaged[byte] ^= 1 << bit
            reader = FrameReader(ChunkedTransport(bytes(damaged)))
            with pytest.raises(CorruptFrameError) as exc:
                reader.read_frame(1.0, 0.0)
            # a damaged payload is reported with its request id, so the request can be repeated
            if byte >= 16:
                assert exc.value.request_id == 9


def _chunkwise_reference(a: np.ndarray, b: np.ndarray, chunk: int):
    runs = []
    for i in range(0, len(a), chunk):
        if bytes(a[i:i + chunk]) != bytes(b[i:i + chunk]):
            n = min(chunk, len(a) - i)
            if runs and runs[-1][0] + runs[-1][1] == i:
                runs[-1] = (runs[-1][0], runs[-1][1] + n)
            else:
                runs.append((i, n))
    return runs


@given(st.integers(1, 3000), st.lists(st.tuples(st.integers(0, 2999), st.integers(1, 255)), max_size=20),
       st.sampled_from([8, 64, 100]), st.sampled_from([64, 1024, 1 << 20]))
def test_changed_ranges_matches_a_chunkwise_reference(size, edits, chunk, slab):
    if slab % chunk:
        slab = chunk * 16
    a = np.zeros(size, dtype=np.uint8)
    b = a.copy()
    for pos, value in edits:
        if pos < size:
            b[pos] = value
    expected = _chunkwise_reference(b, a, chunk)
    assert changed_ranges(b, a, chunk, slab) == expected


def test_errors_cross_the_wire_as_the_same_class_with_their_attributes():
    exc = error_from_wire(json.loads(json.dumps(error_to_wire(ExecuteTimeoutError("too long", 3, 250, True)))),
                          "tcp://pi:5555")
    assert type(exc) is ExecuteTimeoutError
    assert (exc.num_qpus, exc.timeout_ms, exc.kernel_limit) == (3, 250, True)
    assert str(exc).startswith("too long") and "tcp://pi:5555" in str(exc)

    exc = error_from_wire(error_to_wire(MailboxPermissionError("run with sudo")))
    assert isinstance(exc, MailboxPermissionError) and isinstance(exc, PermissionError)
    assert str(exc) == "run with sudo"

    where = SourceLocation("kernel.py", 12, "k")
    exc = error_from_wire(json.loads(json.dumps(error_to_wire(AssemblyError("bad", where, "mov r0, r9")))))
    assert type(exc) is AssemblyError and exc.location == where and exc.instruction == "mov r0, r9"


def test_foreign_error_classes_are_not_rebuilt():
    for cls in ("builtins.KeyError", "subprocess.CalledProcessError", "qpu.runtime.errors.NoSuchClass"):
        exc = error_from_wire({"class": cls, "mro": [cls], "message": "boom"})
        assert type(exc) is RemoteServerError and "boom" in str(exc)
    # an unknown subclass (a newer server) falls back to its nearest known base
    exc = error_from_wire({"class": "qpu.runtime.errors.FutureError",
                           "mro": ["qpu.runtime.errors.FutureError", "qpu.runtime.errors.GPUAllocationError"],
                           "message": "x"})
    assert type(exc) is GPUAllocationError


def test_urls():
    assert parse_url("tcp://raspberrypi:6000") == ("tcp", "raspberrypi", 6000)
    assert parse_url("tcp://10.0.0.2") == ("tcp", "10.0.0.2", 5555)
    assert parse_url("serial:///dev/ttyUSB0?baud=57600") == ("serial", "/dev/ttyUSB0", 57600)
    assert parse_url("serial:///dev/ttyAMA0") == ("serial", "/dev/ttyAMA0", 115200)
    assert parse_listen_address("0.0.0.0:5555") == ("0.0.0.0", 5555)
    assert parse_listen_address("7000") == ("0.0.0.0", 7000)
    for bad in ("http://pi:80", "tcp://:5555", "serial://?baud=9600", "serial:///dev/x?baud=fast", "pi:5555"):
        with pytest.raises(DriverConfigError, match="bad remote address"):
            parse_url(bad)


# --- a server on localhost -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    # compile the emulator's loop first (minutes on a fresh checkout): a client would time out meanwhile
    assert selftest(backend="emulator", gpu_mem=16 << 20)
    srv = RemoteServer(make_backend("emulator", gpu_mem=64 << 20), idle_timeout=0.3)
    host, port = srv.start_tcp("127.0.0.1", 0)
    yield srv, f"tcp://{host}:{port}"
    srv.shutdown()


def test_selftest_through_tcp(server):
    lines = []
    assert selftest(backend="remote", remote=server[1], verbose=True, out=lines.append)
    assert "remote backend" in lines[0] and lines[-1] == "qpu selftest: PASSED"


def _selftest_run(drv):
    a = drv.copy(np.linspace(-3, 5, 16, dtype=np.float32))
    b = drv.copy(np.full(16, 0.25, np.float32))
    out = drv.alloc((2, 16), np.uint32)
    out[...] = 0
    report = drv.execute(1, drv.program(selftest_program()), uniforms=[a.address, b.address, out.address])
    return report, np.array(out), (a, b, out)


def test_remote_reports_and_data_equal_the_local_emulator(server):
    # a fresh emulator on each side: the emulated V3D keeps state between jobs (as hardware does)
    with Driver("emulator", gpu_mem=16 << 20, **SMALL) as local:
        expected, expected_out, _ = _selftest_run(local)
    fresh = RemoteServer(make_backend("emulator", gpu_mem=16 << 20))
    host, port = fresh.start_tcp("127.0.0.1", 0)
    with fresh, Driver("remote", remote=f"tcp://{host}:{port}", **SMALL) as drv:
        assert drv.backend_name == "remote" and drv.pi.soc == "BCM2837" and drv.clock_hz == 250_000_000
        report, out, (a, b, _) = _selftest_run(drv)
        assert drv.last_report is report
    np.testing.assert_array_equal(out[0].view(np.float32), np.array(a) + np.array(b))
    np.testing.assert_array_equal(out, expected_out)
    for field in ("backend", "num_qpus", "seconds", "clock_hz", "measured", "instructions", "cycles", "stalls",
                  "counters", "per_qpu"):
        assert getattr(report, field) == getattr(expected, field), field
    assert report.job.host_interrupts == 1 and report.job.completed
    assert report.job.profile == expected.job.profile
    assert str(report) == str(expected)


def test_hello_world_example_runs_through_qpu_remote(server, monkeypatch, capsys):
    monkeypatch.setenv("QPU_REMOTE", server[1])
    sys.path.insert(0, EXAMPLES)
    try:
        import hello_world
    finally:
        sys.path.pop(0)
    assert hello_world.main() == 0
    out = capsys.readouterr().out
    assert "backend: remote ($QPU_REMOTE is set" in out and "OK" in out
    assert server[0].backend.memory.allocations() == ()      # everything released at the end


def test_arrays_keep_bus_addresses_and_see_the_jobs_writes(server):
    with Driver(RemoteBackend(server[1], sync="changed"), **SMALL) as drv:
        a = drv.alloc((4, 16), np.float32)
        i, j = np.indices((4, 16))
        np.testing.assert_array_equal(a.addresses(), a.address + 64 * i + 4 * j)
        assert a[2:].address == a.address + 128
        mem = server[0].backend.memory
        a[...] = np.arange(64).reshape(4, 16)
        b = drv.copy(np.ones(16, np.float32))
        out = drv.alloc((2, 16), np.uint32)
        untouched = drv.copy(np.arange(16, dtype=np.uint32))
        sent = drv.backend.stats["bytes_sent"]
        drv.execute(1, drv.program(selftest_program()), uniforms=[a[3].address, b.address, out.address])
        # only what changed went over the link: far less than the 1 MiB data area
        assert drv.backend.stats["bytes_sent"] - sent < 8192
        server_view = mem.data[mem.offset_of_bus(a.address):][:256].view(np.float32)
        np.testing.assert_array_equal(server_view, np.arange(64, dtype=np.float32))
        np.testing.assert_array_equal(np.array(out[0]).view(np.float32), np.arange(48, 64) + 1.0)
        np.testing.assert_array_equal(untouched, np.arange(16))

        # outputs(...): only the declared array comes back; refresh() fetches the rest
        out2 = drv.alloc((2, 16), np.uint32)
        out2[...] = 7
        out[...] = 0
        with drv.backend.outputs(out2):
            drv.execute(1, drv.program(selftest_program()), uniforms=[a[0].address, b.address, out2.address])
            drv.execute(1, drv.program(selftest_program()), uniforms=[a[1].address, b.address, out.address])
        np.testing.assert_array_equal(np.array(out2[0]).view(np.float32), np.arange(16) + 1.0)
        assert (np.array(out) == 0).all()           # written by the second job, not brought back yet
        drv.backend.refresh()
        np.testing.assert_array_equal(np.array(out[0]).view(np.float32), np.arange(16, 32) + 1.0)


def test_sync_all_gives_the_same_results(server):
    with Driver(RemoteBackend(server[1], sync="all"), **SMALL) as drv:
        report, out, (a, b, _) = _selftest_run(drv)
        np.testing.assert_array_equal(out[0].view(np.float32), np.array(a) + np.array(b))
        assert drv.backend.stats["bytes_received"] > SMALL["data_area_size"]   # the whole data area came back


def bad_kernel(k: Kernel) -> None:
    k.setup_vpm_write()
    k.mov(r0, uniform)
    k.mov(vpm, r0)
    k.setup_dma_store(nrows=1)
    k.start_dma_store(r1)       # BUG (on purpose): r1 was never written - the store address is undefined
    k.wait_dma_store()
    k.exit()


def store_then_fail(k: Kernel) -> None:
    k.setup_vpm_write()
    k.mov(r0, uniform)          # the value to store
    k.mov(vpm, r0)
    k.setup_dma_store(nrows=1)
    k.start_dma_store(uniform)  # a good store to the address in uniform 1...
    k.wait_dma_store()
    k.start_dma_store(r1)       # ...then (on purpose) one to an undefined address
    k.wait_dma_store()
    k.exit()


def spin(k: Kernel) -> None:
    loop = k.here("loop")
    k.brr(loop)
    k.nop()
    k.nop()
    k.nop()
    k.exit()


def test_emulator_errors_arrive_with_their_class_rule_and_kernel_line(server):
    with Driver("remote", remote=server[1], **SMALL) as drv:
        with pytest.raises(RuleViolation) as exc:
            drv.execute(1, drv.program(bad_kernel), uniforms=[7])
        assert exc.value.rule == "undefined-value"
        assert "test_remote.py" in str(exc.value)          # the source lines travelled with the program
        assert exc.value.finding.location.file.endswith("test_remote.py")
        assert server[1] in str(exc.value)
        # the Driver stays usable
        report, out, (a, b, _) = _selftest_run(drv)
        np.testing.assert_array_equal(out[0].view(np.float32), np.array(a) + np.array(b))


def test_what_a_failing_job_wrote_comes_back_with_the_error(server):
    with Driver("remote", remote=server[1], **SMALL) as drv:
        out = drv.alloc(16, np.uint32)
        out[...] = 0
        with pytest.raises(RuleViolation, match="undefined"):
            drv.execute(1, drv.program(store_then_fail), uniforms=[0x12345678, out.address])
        np.testing.assert_array_equal(out, np.full(16, 0x12345678, np.uint32))


def test_execute_timeout_arrives_as_execute_timeout_error(server):
    with Driver("remote", remote=server[1], **SMALL) as drv:
        with pytest.raises(ExecuteTimeoutError, match="2 ms timeout") as exc:
            drv.execute(1, drv.program(spin), timeout=2)
        assert exc.value.num_qpus == 1 and exc.value.timeout_ms == 2


def test_allocation_failure_names_the_servers_memory(server):
    with pytest.raises(GPUAllocationError, match="qpu serve --backend emulator --gpu-mem"):
        Driver("remote", remote=server[1], data_area_size=128 << 20)
    assert server[0].backend.memory.allocations() == ()


def test_emulator_warnings_are_issued_on_the_client(server):
    with Driver("remote", remote=server[1], strict=True, **SMALL) as drv:
        zero_int = "mov host_int, 0\nnop ; thrend\nnop\nnop\n"
        with pytest.warns(EmulatorWarning, match="host_int"):
            report = drv.execute(1, drv.program(zero_int))
        assert [f.rule for f in report.hazards] == ["host-int-zero"]


def test_a_client_may_map_only_its_own_allocations(server):
    backend = RemoteBackend(server[1])
    try:
        with pytest.raises(RemoteProtocolError, match="not memory this session locked"):
            backend.request("map", {"bus": 0xC0000000 | server[0].backend.memory.phys_base, "size": 4096})
    finally:
        backend.close()


def test_closing_or_dropping_the_connection_releases_server_memory(server):
    mem = server[0].backend.memory
    drv = Driver("remote", remote=server[1], **SMALL)
    assert len(mem.allocations()) == 2
    drv.close()
    assert mem.allocations() == ()
    drv = Driver("remote", remote=server[1], **SMALL)
    assert len(mem.allocations()) == 2
    drv.backend._transport.close()          # the client vanishes without a word
    deadline = time.monotonic() + 5
    while mem.allocations() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mem.allocations() == ()
    with pytest.raises(RemoteConnectionError):
        drv.alloc(16)
        drv.execute(1, drv.program(selftest_program()))
    drv.close()


def test_server_shutdown_releases_gpu_memory_and_disables_the_qpus():
    srv = RemoteServer(make_backend("emulator", gpu_mem=16 << 20))
    host, port = srv.start_tcp("127.0.0.1", 0)
    drv = Driver("remote", remote=f"tcp://{host}:{port}", **SMALL)
    firmware, mem = srv.backend.firmware, srv.backend.memory
    assert firmware.qpu_enabled and len(mem.allocations()) == 2
    srv.shutdown()
    assert mem.allocations() == () and not firmware.qpu_enabled
    with pytest.raises(RemoteConnectionError):
        drv.execute(1, drv.program(selftest_program()))
    drv.close()


def test_no_server_is_a_connection_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(RemoteConnectionError, match="qpu serve"):
        Driver("remote", remote=f"tcp://127.0.0.1:{port}")


def test_a_silent_server_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        t0 = time.monotonic()
        with pytest.raises(RemoteTimeoutError, match="did not answer the 'hello' request within 0.5 s"):
            RemoteBackend(f"tcp://127.0.0.1:{port}", timeout=0.5)
        assert time.monotonic() - t0 < 5
    finally:
        listener.close()


def test_another_protocol_version_is_refused(server):
    host, port = server[1][len("tcp://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(encode_frame(KIND_REQUEST, 1, {"op": "hello"}, version=2))

        class Sock:
            serial = False

            def recv(self, n, timeout):
                sock.settimeout(timeout)
                try:
                    return sock.recv(n)
                except socket.timeout:
                    return b""

        msg = FrameReader(Sock()).read_frame(5.0, 1.0)
    assert msg.kind == KIND_ERROR and msg.request_id == 1
    exc = error_from_wire(msg.body)
    assert type(exc) is RemoteProtocolError and "protocol version 2" in str(exc)


def test_remote_needs_an_address(monkeypatch):
    monkeypatch.delenv("QPU_REMOTE", raising=False)
    with pytest.raises(DriverConfigError, match="remote='tcp://PI:5555'"):
        Driver("remote")


def test_missing_pyserial_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(RemoteConnectionError, match="pip install pyserial"):
        Driver("remote", remote="serial:///dev/ttyUSB0?baud=115200")


# --- a serial line: two pseudo-terminals and a relay that can damage bytes ---------------------------------

class PtyRelay:
    """Client pty <-> relay <-> server pty; ``flip[direction]`` holds stream offsets whose byte is damaged."""

    def __init__(self) -> None:
        pytest.importorskip("serial")
        self.master_a, slave_a = os.openpty()
        self.master_b, slave_b = os.openpty()
        self.client_device, self.server_device = os.ttyname(slave_a), os.ttyname(slave_b)
        self.slaves = (slave_a, slave_b)        # kept open so the masters never see a hang-up
        self.flip = {"to_server": set(), "to_client": set()}
        self.flip_every = {"to_server": 0, "to_client": 0}
        self.count = {"to_server": 0, "to_client": 0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master_a, self.master_b], [], [], 0.05)
            for fd in ready:
                try:
                    data = bytearray(os.read(fd, 1 << 16))
                except OSError:
                    continue
                way = "to_server" if fd == self.master_a else "to_client"
                base = self.count[way]
                for k in range(len(data)):
                    every = self.flip_every[way]
                    if base + k in self.flip[way] or (every and (base + k) % every == every - 1):
                        data[k] ^= 0x24
                self.count[way] += len(data)
                os.write(self.master_b if way == "to_server" else self.master_a, bytes(data))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        for fd in (self.master_a, self.master_b) + self.slaves:
            os.close(fd)


@pytest.fixture
def serial_link():
    relay = PtyRelay()
    srv = RemoteServer(make_backend("emulator", gpu_mem=16 << 20), idle_timeout=0.3)
    srv.start_serial(relay.server_device, 115200)
    yield relay, srv, f"serial://{relay.client_device}?baud=115200"
    srv.shutdown()
    relay.close()


def test_serial_link_over_ptys_recovers_from_damaged_frames(serial_link):
    relay, srv, url = serial_link
    relay.flip["to_server"] = {5, 700}          # a request header, then a request payload
    relay.flip["to_client"] = {60, 1300}        # two response payloads
    backend = RemoteBackend(url, idle_timeout=0.3)
    assert backend.compress                     # serial lines are slow: payloads are compressed
    with Driver(backend, **SMALL) as drv:
        report, out, (a, b, _) = _selftest_run(drv)
        np.testing.assert_array_equal(out[0].view(np.float32), np.array(a) + np.array(b))
        assert drv.backend.stats["retransmissions"] >= 3
        assert report.instructions == 19
    assert srv.backend.memory.allocations() == ()


def test_a_new_session_on_a_serial_line_releases_the_previous_ones_memory(serial_link):
    relay, srv, url = serial_link
    first = Driver(RemoteBackend(url, idle_timeout=0.3), **SMALL)
    assert len(srv.backend.memory.allocations()) == 2
    first.backend._transport.close()            # gone without a word: a serial line cannot tell
    first.backend.broken = "test: vanished"
    assert len(srv.backend.memory.allocations()) == 2
    with Driver(RemoteBackend(url, idle_timeout=0.3), **SMALL) as second:
        assert len(srv.backend.memory.allocations()) == 2     # only the new session's two blocks
        _, out, (a, b, _) = _selftest_run(second)
        np.testing.assert_array_equal(out[0].view(np.float32), np.array(a) + np.array(b))
    assert srv.backend.memory.allocations() == ()
    first.close()


def test_a_line_that_damages_everything_reports_corrupt_frames(serial_link):
    relay, srv, url = serial_link
    relay.flip_every["to_client"] = 50
    with pytest.raises(CorruptFrameError, match="lower baud rate"):
        RemoteBackend(url, idle_timeout=0.3, retries=2)


# --- the command --------------------------------------------------------------------------------------

def test_qpu_serve_command(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "qpu.cli", "serve", "--tcp", "127.0.0.1:0", "--backend",
                             "emulator", "--gpu-mem", "16"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert "emulator backend" in line and "listening on tcp://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[-1].strip()
        assert selftest(backend="remote", remote=url)
    finally:
        proc.send_signal(2)     # Ctrl-C: the server releases everything and exits
        assert proc.wait(timeout=30) == 0


@pytest.mark.hw
def test_serving_this_pis_qpus_over_localhost():
    srv = RemoteServer(make_backend("mailbox"))
    host, port = srv.start_tcp("127.0.0.1", 0)
    try:
        with Driver("remote", remote=f"tcp://{host}:{port}", **SMALL) as drv:
            assert drv.backend.server_backend == "mailbox"
            report, out, (a, b, _) = _selftest_run(drv)
            assert report.measured and report.seconds > 0
            np.testing.assert_allclose(out[0].view(np.float32), np.array(a) + np.array(b), rtol=2e-7)
    finally:
        srv.shutdown()
