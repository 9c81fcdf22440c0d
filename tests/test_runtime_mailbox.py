"""The Driver's mailbox backend on a fake Pi (tests/fakepi.py): same bytes, same errors, no Pi.

The fake /dev/vcio answers with the emulated firmware through a model of the Linux
vcio/firmware driver; /dev/mem maps onto the emulated GPU memory.  References: the
ioctl number worked out by hand from _IOWR (asm-generic/ioctl.h), GPU_FFT's
mailbox.c message layout, the wiki's memory flags and aliases, the guide's
performance-counter registers and the addendum's PCTRE bit 31.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import struct
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from fakepi import (
    IOCTL_32BIT,
    IOCTL_64BIT,
    LONG_MARK,
    MODEL_ZERO,
    TIMEOUT_MARK,
    FakePiHost,
    StubV3D,
    tags_of,
    value_words,
)

from qpu.emulator.firmware import Firmware
from qpu.emulator.memory import GPUMemory
from qpu.errors import QPUError
from qpu.runtime import (
    Driver,
    DriverConfigError,
    ExecuteTimeoutError,
    GPUAllocationError,
    GPUMemTooSmallError,
    MailboxError,
    MailboxPermissionError,
    NoMailboxError,
    QPUEnableError,
    UnsupportedPiError,
    V3DOwnedByKMSError,
    info,
)
from qpu.runtime.mailbox import build_message, ioctl_mbox_property

SMALL = {"data_area_size": 1 << 20, "code_area_size": 64 << 10}
PROG = bytes(range(16))       # two 64-bit words: the stub V3D does not decode code


def alias(bus):
    """The cache-alias nibble of a bus address (0x0, 0x4, 0x8 or 0xC)."""
    return (bus >> 28) & 0xC


def mailbox_driver(host, **kw):
    return Driver("mailbox", host=host, **{**SMALL, **kw})


# --- ioctl and message bytes ---------------------------------------------------------------------

def test_ioctl_number_depends_on_pointer_size():
    assert ioctl_mbox_property(4) == IOCTL_32BIT == 0xC0046400
    assert ioctl_mbox_property(8) == IOCTL_64BIT == 0xC0086400
    assert ioctl_mbox_property() == (IOCTL_64BIT if struct.calcsize("P") == 8 else IOCTL_32BIT)


def test_message_layout_matches_gpu_fft():
    # GPU_FFT mailbox.c mem_alloc / execute_qpu, little-endian u32 words
    assert build_message(0x3000C, [4096, 4096, 0xC], 1) == struct.pack("<9I", 36, 0, 0x3000C, 12, 12, 4096,
                                                                         4096, 0xC, 0)
    assert build_message(0x30011, [2, 0xC0001000, 1, 2000], 1) == struct.pack(
        "<10I", 40, 0, 0x30011, 16, 16, 2, 0xC0001000, 1, 2000, 0)
    # a request shorter than the response gets a value buffer for the response
    assert build_message(0x30002, [5], 2) == struct.pack("<8I", 32, 0, 0x30002, 8, 4, 5, 0, 0)


# --- a whole session -----------------------------------------------------------------------------

OPEN_TAGS = [0x10002, 0x1, 0x30002, 0x10006, 0x30012, 0x3000C, 0x3000D, 0x3000C, 0x3000D]
CLOSE_TAGS = [0x3000E, 0x3000F, 0x3000E, 0x3000F, 0x30012]


@pytest.mark.parametrize("pointer_size", [4, 8])
def test_session_end_to_end(tmp_path, pointer_size):
    host = FakePiHost(tmp_path, pointer_size=pointer_size)
    fw = host.firmware
    with mailbox_driver(host) as drv:
        assert drv.backend_name == "mailbox" and fw.qpu_enabled
        src = drv.copy(np.arange(16, dtype=np.uint32) * 3)
        dst = drv.alloc(16, np.uint32)
        dst[:] = 0
        prog = drv.program(PROG)
        report = drv.execute(2, prog, uniforms=[[src.address, dst.address, 8],
                                                [src.address + 32, dst.address + 32, 8]])
        expected = np.arange(16, dtype=np.uint32) * 3 + np.repeat([0, 1], 8).astype(np.uint32)
        np.testing.assert_array_equal(dst, expected)
        assert drv.last_report is report
        assert report.backend == "mailbox" and report.measured and report.num_qpus == 2
        assert report.clock_hz == 250_000_000 and report.seconds >= 0
    request = IOCTL_64BIT if pointer_size == 8 else IOCTL_32BIT
    assert all(c.request == request and c.error is None for c in host.calls)
    for c in host.calls:             # fixed-width little-endian: the size word is the byte length
        assert struct.unpack_from("<I", c.sent, 0)[0] == len(c.sent)
        assert struct.unpack_from("<I", c.received, 4)[0] == 0x80000000
    assert host.tag_sequence() == OPEN_TAGS + [0x30011] + CLOSE_TAGS
    execute = next(c for c in host.calls if tags_of(c.sent) == [0x30011])
    num, control, noflush, timeout = value_words(execute.sent, 4)
    assert (num, noflush, timeout) == (2, 0, 10000)
    assert fw.v3d.calls[0]["control"] == control
    last = host.calls[-1]
    assert tags_of(last.sent) == [0x30012] and value_words(last.sent, 1) == (0,)
    # everything released: memory, QPUs, file descriptors, mappings
    assert fw.memory.allocations() == () and not fw.qpu_enabled
    assert host.open_fds == {}
    assert sorted(host.maps) == sorted(host.unmapped)


def test_performance_counters_around_a_job(tmp_path):
    host = FakePiHost(tmp_path)
    with mailbox_driver(host) as drv:
        src, dst = drv.copy(np.zeros(4, np.uint32)), drv.alloc(4, np.uint32)
        report = drv.execute(1, drv.program(PROG), uniforms=[src.address, dst.address, 4])
        regs = host.v3d_regs
    # guide Table 82: sources 13..29 without 19 (varyings); fake counter n counts 1000*(n+1) + source
    sources = [13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
    assert [int(regs[(0x684 + 8 * n) // 4]) for n in range(16)] == sources
    values = {s: 1000 * (n + 1) + s for n, s in enumerate(sources)}
    assert report.counters["qpu_idle_cycles"] == values[13]
    assert report.counters["qpu_instruction_cycles"] == values[16]
    assert report.counters["qpu_tmu_stall_cycles"] == values[17]
    assert report.counters["l2_misses"] == values[29]
    assert len(report.counters) == 16
    assert report.stalls == {"tmu": values[17]}        # the emulator's name for the same stall
    assert int(regs[0x674 // 4]) == 0             # disabled again after the job
    assert (host.v3d_page, 4096) in host.maps      # peripheral base 0x3F000000 + 0xC00000 on a Pi 3
    assert host.v3d_page == 0x3FC00000


def test_counters_need_pctre_bit_31(tmp_path):
    # If only bits 0..15 were written the (addendum-corrected) hardware counts nothing: the fake agrees.
    host = FakePiHost(tmp_path)
    host.v3d_regs[0x674 // 4] = 0xFFFF
    host._count(object())
    assert not host.v3d_regs[0x680 // 4:0x700 // 4].any()


@pytest.mark.parametrize("model, revision, data_alias", [
    ("Raspberry Pi 3 Model B Rev 1.2", 0xA02082, 0xC),   # BCM2837: ARM cannot see the L2 -> uncached
    ("Raspberry Pi 2 Model B Rev 1.1", 0xA01041, 0xC),
    (MODEL_ZERO, 0x9000C1, 0x4),                          # BCM2835: L2-cached alias for data
])
def test_memory_flags_per_model_and_arm_mapping(tmp_path, model, revision, data_alias):
    host = FakePiHost(tmp_path, model=model, revision=revision)
    mem = host.memory
    with mailbox_driver(host) as drv:
        a = drv.copy(np.arange(8, dtype=np.int32) - 4)
        assert alias(a.address) == data_alias
        assert alias(drv.program(PROG).address) == 0xC           # code: always uncached
        assert alias(drv._control_bus) == 0xC                    # control list: uncached
        phys = a.address & ~0xC0000000                          # BUS_TO_PHYS
        off = phys - mem.phys_base
        np.testing.assert_array_equal(mem.data[off:off + 32].view("<i4"), np.arange(8) - 4)
        assert all(p % 4096 == 0 for p, _ in host.maps)


def test_cache_mode_argument(tmp_path):
    with mailbox_driver(FakePiHost(tmp_path / "a", model=MODEL_ZERO, revision=0x9000C1),
                        cache_mode="uncached") as drv:
        assert alias(drv.alloc(4).address) == 0xC
    with mailbox_driver(FakePiHost(tmp_path / "b"), cache_mode="coherent") as drv:
        assert alias(drv.alloc(4).address) == 0x8
    with pytest.raises(DriverConfigError, match="ARM cannot see the VideoCore L2"):
        mailbox_driver(FakePiHost(tmp_path / "c"), cache_mode="l2cached")
    with pytest.raises(DriverConfigError, match="unknown cache_mode"):
        mailbox_driver(FakePiHost(tmp_path / "d"), cache_mode="sometimes")


@pytest.fixture(autouse=True)
def _dirs(tmp_path):
    for d in "abcd":
        (tmp_path / d).mkdir()


# --- errors --------------------------------------------------------------------------------------

def test_no_vcio_not_a_pi(tmp_path):
    host = FakePiHost(tmp_path, model=None, revision=None, vcio=False)
    with pytest.raises(NoMailboxError, match="does not look like a Raspberry Pi"):
        mailbox_driver(host)


def test_no_vcio_on_a_pi(tmp_path):
    with pytest.raises(NoMailboxError, match="modprobe vcio"):
        mailbox_driver(FakePiHost(tmp_path, vcio=False))


def test_vcio_permission_denied(tmp_path):
    host = FakePiHost(tmp_path, vcio_error=PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(MailboxPermissionError, match="group 'video'.*usermod") as exc:
        mailbox_driver(host)
    assert isinstance(exc.value, PermissionError) and isinstance(exc.value, QPUError)


def test_dev_mem_needs_root_and_nothing_is_left_behind(tmp_path):
    host = FakePiHost(tmp_path, mem_error=PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(MailboxPermissionError, match="only root"):
        mailbox_driver(host)
    assert not host.firmware.qpu_enabled and host.open_fds == {}


def test_kms_owns_the_v3d_names_the_config_line(tmp_path):
    config = "dtparam=audio=on\n# dtoverlay=vc4-fkms-v3d\ndtoverlay=vc4-kms-v3d\nmax_framebuffers=2\n"
    host = FakePiHost(tmp_path, config_txt=config, kms_owns_v3d=True)
    with pytest.raises(V3DOwnedByKMSError) as exc:
        mailbox_driver(host)
    msg = str(exc.value)
    assert f"{tmp_path / 'config.txt'}:3: dtoverlay=vc4-kms-v3d" in msg
    assert "comment out" in msg and ":2:" not in msg          # the commented line is not blamed
    assert isinstance(exc.value, QPUEnableError)
    assert host.open_fds == {} and host.firmware.memory.allocations() == ()


def test_fkms_and_loaded_vc4_module(tmp_path):
    host = FakePiHost(tmp_path, config_txt="dtoverlay=vc4-fkms-v3d,cma-128\n", kms_owns_v3d=True)
    with pytest.raises(V3DOwnedByKMSError, match="vc4-fkms-v3d"):
        mailbox_driver(host)
    host = FakePiHost(tmp_path / "a", config_txt="", kms_owns_v3d=True, vc4_loaded=True)
    with pytest.raises(V3DOwnedByKMSError, match="vc4 kernel module is loaded"):
        mailbox_driver(host)


def test_gpu_mem_too_small(tmp_path):
    host = FakePiHost(tmp_path, gpu_mem=16 << 20, config_txt="gpu_mem=16\n", cut_down=True)
    with pytest.raises(GPUMemTooSmallError, match=r"16 MiB.*config.txt:1: gpu_mem=16.*gpu_mem=64"):
        mailbox_driver(host)


def test_enable_refused_for_an_unknown_reason(tmp_path):
    host = FakePiHost(tmp_path, config_txt="", kms_owns_v3d=True)
    with pytest.raises(QPUEnableError, match="outdated firmware") as exc:
        mailbox_driver(host)
    assert type(exc.value) is QPUEnableError


@pytest.mark.parametrize("model, revision", [("Raspberry Pi 4 Model B Rev 1.4", 0xC03114),
                                             ("Raspberry Pi 5 Model B Rev 1.0", 0xD04170)])
def test_pi4_and_pi5_are_refused(tmp_path, model, revision):
    host = FakePiHost(tmp_path, model=model, revision=revision)
    with pytest.raises(UnsupportedPiError, match="different instruction set"):
        mailbox_driver(host)
    assert host.calls == []          # refused before touching the mailbox


def test_pi4_detected_from_the_firmware_board_revision(tmp_path):
    mem = GPUMemory(16 << 20)
    host = FakePiHost(tmp_path, model=None, revision=None,
                      firmware=Firmware(mem, StubV3D(mem), board_revision=0xC03111))
    with pytest.raises(UnsupportedPiError, match="BCM2711"):
        mailbox_driver(host)
    assert host.open_fds == {}


def test_execute_timeout_from_the_firmware(tmp_path):
    host = FakePiHost(tmp_path)
    with mailbox_driver(host) as drv:
        a = drv.alloc(4, np.uint32)
        with pytest.raises(ExecuteTimeoutError, match=r"1 QPU program\).*500 ms timeout") as exc:
            drv.execute(1, drv.program(PROG), uniforms=[a.address, a.address, TIMEOUT_MARK], timeout=500)
        assert exc.value.num_qpus == 1 and exc.value.timeout_ms == 500 and not exc.value.kernel_limit
        # the Driver stays usable
        drv.execute(1, drv.program(PROG), uniforms=[a.address, a.address, 1])


def test_execute_beyond_the_kernels_one_second(tmp_path):
    host = FakePiHost(tmp_path)
    with mailbox_driver(host) as drv:
        a = drv.alloc(4, np.uint32)
        with pytest.raises(ExecuteTimeoutError, match="about 1 s.*Split long jobs") as exc:
            drv.execute(3, drv.program(PROG), uniforms=[a.address, a.address, LONG_MARK] * 3, timeout=5000)
    assert exc.value.kernel_limit and exc.value.num_qpus == 3
    assert any(c.error == errno.ETIMEDOUT for c in host.calls)


def test_allocation_failure_says_how_much_and_what_to_raise(tmp_path):
    host = FakePiHost(tmp_path, gpu_mem=64 << 20, config_txt="# memory\ngpu_mem=64\n")
    with pytest.raises(GPUAllocationError) as exc:
        Driver("mailbox", host=host, data_area_size=128 << 20)
    msg = str(exc.value)
    assert "134217728 bytes (128 MiB)" in msg and "64 MiB" in msg
    assert "config.txt:2: gpu_mem=64" in msg and "gpu_mem=128" in msg
    assert host.firmware.memory.allocations() == () and not host.firmware.qpu_enabled


def test_firmware_error_status_becomes_mailbox_error(tmp_path):
    host = FakePiHost(tmp_path, kernel_einval_tags=(0x30002,))
    with pytest.raises(MailboxError, match="rejected the 'get clock rate'") as exc:
        mailbox_driver(host)
    assert exc.value.errno == errno.EINVAL
    assert host.open_fds == {}


def test_unanswered_tag_becomes_mailbox_error(tmp_path):
    host = FakePiHost(tmp_path)
    del host.firmware._handlers[0x10006]          # a firmware that does not know "get VC memory"
    with pytest.raises(MailboxError, match="did not answer the 'get VC memory'"):
        mailbox_driver(host)


def test_remote_backend_needs_the_servers_address(monkeypatch):
    # the remote backend itself is tested in tests/test_remote.py
    monkeypatch.delenv("QPU_REMOTE", raising=False)
    with pytest.raises(DriverConfigError, match="qpu serve") as exc:
        Driver("remote")
    assert isinstance(exc.value, QPUError)


def test_unknown_backend_name():
    with pytest.raises(DriverConfigError, match="unknown backend"):
        Driver("gpu")


# --- release on every exit path ------------------------------------------------------------------

def test_released_when_the_with_block_raises(tmp_path):
    host = FakePiHost(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with mailbox_driver(host) as drv:
            drv.alloc(16)
            raise ZeroDivisionError
    assert host.firmware.memory.allocations() == () and not host.firmware.qpu_enabled
    assert host.open_fds == {}


def test_released_when_garbage_collected(tmp_path):
    host = FakePiHost(tmp_path)
    drv = mailbox_driver(host)
    drv.alloc(16)
    assert host.firmware.memory.allocations() != ()
    del drv
    gc.collect()
    assert host.firmware.memory.allocations() == () and not host.firmware.qpu_enabled


def test_close_twice_is_harmless(tmp_path):
    host = FakePiHost(tmp_path)
    drv = mailbox_driver(host)
    drv.close()
    n = len(host.calls)
    drv.close()
    assert len(host.calls) == n and drv.closed


def test_released_at_interpreter_exit(tmp_path):
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    script = textwrap.dedent(f"""
        import atexit, pathlib, sys
        sys.path.insert(0, {tests_dir!r})
        from fakepi import FakePiHost
        from qpu.runtime import Driver
        host = FakePiHost(pathlib.Path({str(tmp_path)!r}))
        def check():   # registered first, so it runs after the Driver's exit hook
            print("allocations", len(host.firmware.memory.allocations()), "enabled", host.firmware.qpu_enabled)
        atexit.register(check)
        drv = Driver("mailbox", host=host, data_area_size=1 << 20, code_area_size=1 << 16)
        drv.alloc(16)
        print("open", len(host.firmware.memory.allocations()))
        # no close(): the interpreter exits with the Driver alive
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "open 2" in out.stdout and "allocations 0 enabled False" in out.stdout


# --- backend=None --------------------------------------------------------------------------------

@pytest.fixture
def stub_core(monkeypatch):
    """Make qpu.emulator.v3d importable as the stub V3D (the auto backend builds its own)."""
    module = types.ModuleType("qpu.emulator.v3d")

    def V3D(memory, strict=True, clock_hz=250_000_000, timing=None):
        return StubV3D(memory, clock_hz)

    module.V3D = V3D
    monkeypatch.setitem(sys.modules, "qpu.emulator.v3d", module)


def test_auto_picks_the_mailbox_on_a_working_pi(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="qpu.runtime"):
        with Driver(host=FakePiHost(tmp_path), **SMALL) as drv:
            assert drv.backend_name == "mailbox"
    assert "using the mailbox backend" in caplog.text


def test_auto_picks_the_emulator_without_vcio(tmp_path, stub_core, caplog):
    with caplog.at_level(logging.INFO, logger="qpu.runtime"):
        with Driver(host=FakePiHost(tmp_path, model=None, revision=None, vcio=False), **SMALL) as drv:
            assert drv.backend_name == "emulator" and "no /fake/dev/vcio" in drv.backend_reason
    assert "using the emulator backend" in caplog.text


def test_auto_falls_back_with_a_warning_when_kms_owns_the_v3d(tmp_path, stub_core, caplog):
    host = FakePiHost(tmp_path, config_txt="dtoverlay=vc4-kms-v3d\n", kms_owns_v3d=True)
    with caplog.at_level(logging.WARNING, logger="qpu.runtime"):
        with Driver(host=host, **SMALL) as drv:
            assert drv.backend_name == "emulator"
            assert "vc4 KMS driver owns the V3D" in drv.backend_reason
    assert any(r.levelno == logging.WARNING and "mailbox backend is unavailable" in r.getMessage()
               for r in caplog.records)
    assert host.open_fds == {}


# --- qpu info ------------------------------------------------------------------------------------

def test_info_on_a_working_pi(tmp_path, stub_core):
    text = info(FakePiHost(tmp_path))
    assert "backend: mailbox" in text
    assert "board: Raspberry Pi 3 Model B Rev 1.2 (BCM2837, revision 0xa02082)" in text
    assert "V3D clock: 250 MHz" in text and "GPU memory (gpu_mem): 64 MiB" in text


def test_info_explains_why_the_mailbox_is_unavailable(tmp_path, stub_core):
    host = FakePiHost(tmp_path, config_txt="dtoverlay=vc4-kms-v3d\n", kms_owns_v3d=True)
    text = info(host)
    assert "backend: emulator" in text and "mailbox: unavailable" in text and "vc4 KMS" in text
    assert "V3D clock: 250 MHz" in text          # read before the refusal
    assert not host.firmware.qpu_enabled and host.open_fds == {}


def test_info_not_a_pi(tmp_path, stub_core):
    text = info(FakePiHost(tmp_path, model=None, revision=None, vcio=False))
    assert "board: not a Raspberry Pi" in text and "no /fake/dev/vcio" in text
    assert "emulator: available" in text
