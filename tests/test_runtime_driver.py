"""The Driver's user-facing API on the emulator backend (with the stub V3D of tests/fakepi.py).

References: numpy for data and address arithmetic (element (i, j) of a C-ordered
array lives at address + strides . (i, j)), IEEE float32 bit patterns from struct,
py-videocore's conventions for uniforms (a uniforms array is split into n_threads
rows) as documented in its driver.
"""

from __future__ import annotations

import struct
import sys
import types

import numpy as np
import pytest
from fakepi import FAULT_MARK, LONG_MARK, TIMEOUT_MARK, StubFault, stub_emulator_backend

from qpu.program import Program
from qpu.runtime import (
    Array,
    Driver,
    DriverClosedError,
    DriverConfigError,
    ExecuteTimeoutError,
    NotInGPUMemoryError,
    OutOfGPUMemoryError,
    QPUEnableError,
    RunReport,
)
from qpu.runtime.driver import uniform_words

PROG = bytes(range(16))


@pytest.fixture
def drv():
    with Driver(stub_emulator_backend(), data_area_size=1 << 20, code_area_size=64 << 10) as d:
        yield d


def memory_of(drv):
    return drv.backend.memory


def read_bus(drv, bus, n):
    mem = memory_of(drv)
    off = mem.offset_of_bus(bus)
    return mem.data[off:off + 4 * n].view("<u4").copy()


# --- arrays --------------------------------------------------------------------------------------

def test_alloc_is_a_numpy_view_of_gpu_memory(drv):
    a = drv.alloc((4, 8), np.uint32)
    assert isinstance(a, Array) and isinstance(a, np.ndarray) and a.shape == (4, 8)
    a[...] = np.arange(32).reshape(4, 8)
    np.testing.assert_array_equal(read_bus(drv, a.address, 32), np.arange(32))
    assert a.address % 64 == 0
    mem = memory_of(drv)
    assert np.shares_memory(a, mem.data)          # no copy


def test_addresses_follow_strides(drv):
    a = drv.alloc((4, 8), np.uint32)
    i, j = np.indices((4, 8))
    np.testing.assert_array_equal(a.addresses(), a.address + 4 * (8 * i + j))
    assert a.addresses().dtype == np.uint32
    b = a[1:, ::2]
    assert isinstance(b, Array) and b.address == a.address + 32
    i, j = np.indices(b.shape)
    np.testing.assert_array_equal(b.addresses(), a.address + 32 * (1 + i) + 8 * j)
    c = a[::-1, 3]
    assert c.address == a.address + 3 * 32 + 12
    np.testing.assert_array_equal(c.addresses(), a.address + 12 + 32 * (3 - np.arange(4)))


def test_computed_arrays_have_no_address(drv):
    a = drv.copy(np.ones(4, np.float32))
    with pytest.raises(NotInGPUMemoryError, match="drv.copy"):
        _ = (a + 1).address
    assert drv.copy(a + 1).address != a.address


def test_copy_and_array(drv):
    x = np.linspace(0, 1, 10, dtype=np.float32)
    c = drv.copy(x)
    assert c.dtype == np.float32 and (c == x).all()
    d = drv.array([[1, 2], [3, 4]], dtype=np.int16)
    assert d.dtype == np.int16 and d.shape == (2, 2) and int(d.sum()) == 10
    e = drv.alloc(3)
    assert e.dtype == np.float32


def test_out_of_data_area():
    with Driver(stub_emulator_backend(), data_area_size=8192, code_area_size=4096) as d:
        d.alloc(1024, np.uint32)
        with pytest.raises(OutOfGPUMemoryError, match="data_area_size"):
            d.alloc(2048, np.uint32)
        with pytest.raises(OutOfGPUMemoryError, match="code_area_size"):
            d.program(bytes(8192))


def test_use_after_close():
    d = Driver(stub_emulator_backend(), data_area_size=8192, code_area_size=4096)
    a = d.alloc(4)
    d.close()
    with pytest.raises(DriverClosedError):
        d.alloc(4)
    with pytest.raises(DriverClosedError):
        _ = a.address
    with pytest.raises(DriverClosedError):
        d.execute(1, PROG)
    assert d.backend.memory.allocations() == ()


# --- uniforms ------------------------------------------------------------------------------------

def test_uniform_words_conversion(drv):
    a = drv.alloc(4)
    words = uniform_words([1, -1, 1.5, a, np.float32(-2.0), 0xFFFFFFFF, True])
    expected = [1, 0xFFFFFFFF, struct.unpack("<I", struct.pack("<f", 1.5))[0], a.address,
                struct.unpack("<I", struct.pack("<f", -2.0))[0], 0xFFFFFFFF, 1]
    assert words.dtype == np.uint32 and words.tolist() == expected
    floats = uniform_words(np.array([0.5, -0.0], dtype=np.float64))
    assert floats.tolist() == [0x3F000000, 0x80000000]
    ints = uniform_words(np.array([-2, 7], dtype=np.int64))
    assert ints.tolist() == [0xFFFFFFFE, 7]
    with pytest.raises(DriverConfigError):
        uniform_words([1 << 32])
    with pytest.raises(DriverConfigError):
        uniform_words(["x"])


def test_uniform_list_split_per_thread(drv):
    src, dst = drv.copy(np.arange(8, dtype=np.uint32)), drv.alloc(8, np.uint32)
    drv.execute(2, drv.program(PROG), uniforms=[src.address, dst.address, 4, src.address + 16, dst.address + 16, 4])
    (job,) = drv.backend.v3d.calls
    unif = [u for u, _ in job["pairs"]]
    assert read_bus(drv, unif[0], 3).tolist() == [src.address, dst.address, 4]
    assert read_bus(drv, unif[1], 3).tolist() == [src.address + 16, dst.address + 16, 4]
    np.testing.assert_array_equal(dst, np.arange(8) + np.repeat([0, 1], 4))


def test_uniforms_as_a_gpu_array_py_videocore_style(drv):
    src, dst = drv.copy(np.arange(4, dtype=np.uint32)), drv.alloc(4, np.uint32)
    unif = drv.array([[src.address, dst.address, 2], [src.address + 8, dst.address + 8, 2]], dtype=np.uint32)
    drv.execute(2, PROG, uniforms=unif)
    (job,) = drv.backend.v3d.calls
    assert [u for u, _ in job["pairs"]] == unif.addresses()[:, 0].tolist()
    with pytest.raises(DriverConfigError, match="equal per-thread rows"):
        drv.execute(4, PROG, uniforms=drv.alloc(6, np.uint32))


def test_uniforms_that_do_not_split(drv):
    with pytest.raises(DriverConfigError, match="cannot be split into 2"):
        drv.execute(2, PROG, uniforms=[1, 2, 3])
    with pytest.raises(DriverConfigError, match="equally long list per thread"):
        drv.execute(2, PROG, uniforms=[[1, 2], [3]])


def test_no_uniforms_means_address_zero(drv):
    with pytest.raises(StubFault):          # the stub reads uniforms: at 0 it finds no GPU memory
        drv.execute(1, PROG)
    assert drv.backend.v3d.calls[0]["pairs"][0][0] == 0


@pytest.mark.parametrize("n", [0, 13])
def test_thread_count_range(drv, n):
    with pytest.raises(DriverConfigError, match="1..12"):
        drv.execute(n, PROG, uniforms=[0] * max(n, 1))


def test_max_threads_argument():
    with pytest.raises(DriverConfigError):
        Driver(stub_emulator_backend(), max_threads=13)
    with Driver(stub_emulator_backend(), max_threads=2, data_area_size=8192, code_area_size=4096) as d:
        with pytest.raises(DriverConfigError, match="1..2"):
            d.execute(3, PROG, uniforms=[0, 0, 0])


# --- programs ------------------------------------------------------------------------------------

def test_program_loading_and_reuse(drv):
    p = drv.program(PROG)
    assert p.size == 16 and p.address % 8 == 0
    assert bytes(read_bus(drv, p.address, 4).tobytes()) == PROG
    assert drv.program(PROG) is p                             # same code: loaded once
    assert drv.program(Program.from_bytes(PROG)) is p
    assert drv.program([0x0706050403020100, 0x0F0E0D0C0B0A0908]) is p
    q = drv.program(bytes(8))
    assert q.address != p.address
    assert drv.backend.v3d.registered[p.address].to_bytes() == PROG


def test_program_from_assembly_text(drv):
    from qpu.text_assembler import assemble_text

    text = "nop\nnop ; thrend\nnop\nnop\n"
    p = drv.program(text)
    assert p.code == assemble_text(text).to_bytes()


def test_program_from_a_kernel_function(drv, monkeypatch):
    seen = {}
    builder = types.ModuleType("qpu.builder")

    def assemble(fn, *args, **kwargs):
        seen.update(fn=fn, args=args, kwargs=kwargs)
        return Program.from_words([1, 2, 3])

    builder.assemble = assemble
    monkeypatch.setitem(sys.modules, "qpu.builder", builder)

    def kernel(asm, n):
        pass

    p = drv.program(kernel, 5, unroll=2)
    assert seen == {"fn": kernel, "args": (5,), "kwargs": {"unroll": 2}}
    assert p.size == 24


def test_program_rejects_nonsense(drv):
    with pytest.raises(DriverConfigError):
        drv.program(3.5)
    with pytest.raises(DriverConfigError, match="empty"):
        drv.program(b"")


def test_load_bin(drv, tmp_path):
    path = tmp_path / "k.bin"
    path.write_bytes(PROG)
    assert drv.load_bin(str(path)).code == PROG


# --- control lists -------------------------------------------------------------------------------

def test_control_list_with_different_code_per_qpu(drv):
    src, dst = drv.copy(np.arange(4, dtype=np.uint32)), drv.alloc(8, np.uint32)
    u0 = drv.array([src.address, dst.address, 4], dtype=np.uint32)
    u1 = drv.array([src.address, dst.address + 16, 4], dtype=np.uint32)
    p0, p1 = drv.program(PROG), drv.program(bytes(16))
    report = drv.execute_control_list([(u0, p0), (u1.address, p1.address)])
    (job,) = drv.backend.v3d.calls
    assert job["pairs"] == [(u0.address, p0.address), (u1.address, p1.address)]
    assert job["control"] == drv._control_bus
    np.testing.assert_array_equal(dst, np.r_[np.arange(4), np.arange(4) + 1])
    assert report.num_qpus == 2


def test_control_list_in_gpu_memory_is_passed_as_is(drv):
    src, dst = drv.copy(np.arange(4, dtype=np.uint32)), drv.alloc(4, np.uint32)
    unif = drv.array([src.address, dst.address, 4], dtype=np.uint32)
    ctl = drv.array([[unif.address, drv.program(PROG).address]], dtype=np.uint32)
    drv.execute_control_list(ctl)
    assert drv.backend.v3d.calls[0]["control"] == ctl.address
    np.testing.assert_array_equal(dst, np.arange(4))


def test_control_list_shapes(drv):
    with pytest.raises(DriverConfigError):
        drv.execute_control_list(drv.alloc((2, 3), np.uint32))
    with pytest.raises(DriverConfigError):
        drv.execute_control_list([(1, 2, 3)])
    with pytest.raises(DriverConfigError):
        drv.execute_control_list([])
    with pytest.raises(DriverConfigError):
        drv.execute_control_list([(0, 0)] * 13)


# --- reports and emulator errors ----------------------------------------------------------------

def test_run_report_from_the_emulator(drv):
    src, dst = drv.copy(np.arange(4, dtype=np.uint32)), drv.alloc(4, np.uint32)
    report = drv.execute(1, PROG, uniforms=[src.address, dst.address, 4])
    assert isinstance(report, RunReport) and drv.last_report is report
    assert report.backend == "emulator" and not report.measured
    assert report.instructions == 10 and report.cycles == 100 and report.clock_hz == 250_000_000
    assert report.seconds == pytest.approx(100 / 250e6)
    assert report.stalls == {"tmu": 8} and report.hazards == [] and len(report.per_qpu) == 1
    text = str(report)
    assert text.startswith("emulator: 1 QPU, 10 instructions, 100 cycles = 0.40 us predicted at 250 MHz")
    assert "stalls tmu 8" in text


def test_measured_report_text():
    r = RunReport("mailbox", 12, 0.0025, 300_000_000, measured=True, counters={"l2_hits": 3})
    assert str(r) == "mailbox: 12 QPUs, 2.500 ms measured (V3D at 300 MHz)"


def test_emulator_timeout_carries_the_emulators_detail(drv):
    a = drv.alloc(4, np.uint32)
    with pytest.raises(ExecuteTimeoutError, match="(?s)200 ms timeout.*QPU 0 at PC 0x18"):
        drv.execute(1, PROG, uniforms=[a.address, a.address, TIMEOUT_MARK], timeout=200)


def test_emulator_errors_propagate_unchanged(drv):
    a = drv.alloc(4, np.uint32)
    with pytest.raises(StubFault, match="TMU read"):
        drv.execute(1, PROG, uniforms=[a.address, a.address, FAULT_MARK])


def test_emulator_warns_about_the_kernels_one_second(drv):
    a = drv.alloc(4, np.uint32)
    report = drv.execute(1, PROG, uniforms=[a.address, a.address, LONG_MARK])
    assert report.seconds == pytest.approx(2.0)
    assert any("about 1 s" in w for w in report.warnings)


def test_emulated_firmware_refusal():
    with pytest.raises(QPUEnableError):
        Driver(stub_emulator_backend(kms_owns_v3d=True))


def test_emulator_refuses_pi4_model():
    from qpu.runtime import UnsupportedPiError
    from qpu.runtime.backends import EmulatorBackend

    with pytest.raises(UnsupportedPiError):
        EmulatorBackend("4")


def test_emulator_backend_without_the_core(monkeypatch):
    from qpu.runtime import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "qpu.emulator.v3d", None)      # import fails
    with pytest.raises(BackendUnavailableError, match="emulator core"):
        Driver("emulator")


def test_every_runtime_error_is_a_qpu_error():
    import inspect

    import qpu.runtime.errors as errors
    from qpu.errors import QPUError

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) >= 16
    assert all(issubclass(c, QPUError) for c in classes)
