"""The Driver on the real emulator core: self-test, the hello-world example, many QPUs, errors.

References: numpy results; the kernels' own source lines (errors must point at them).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from qpu.dsl import Kernel, r0, r1, uniform, vpm
from qpu.runtime import Driver, ExecuteTimeoutError
from qpu.runtime.selftest import selftest, selftest_program

pytest.importorskip("qpu.emulator.v3d")

SMALL = {"data_area_size": 1 << 20, "code_area_size": 64 << 10}


def test_selftest_passes_on_the_emulator():
    lines = []
    assert selftest(backend="emulator", verbose=True, out=lines.append)
    assert lines[-1] == "qpu selftest: PASSED"


def test_hello_world_example_runs_through_driver_with_no_argument(capsys):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    try:
        import hello_world
    finally:
        sys.path.pop(0)
    assert hello_world.main() == 0
    out = capsys.readouterr().out
    assert "OK" in out and "run: " in out


# The self-test kernel with its VPM rows taken from uniforms, so that QPUs do not share them.
PER_QPU_SOURCE = """
    shl r0, elem_num, 2
    add r1, unif, r0
    add r2, unif, r0
    mov tmu0_s, r1
    mov tmu0_s, r2
    mov ra0, unif
    mov vw_setup, unif
    nop ; ldtmu0
    mov r3, r4
    nop ; ldtmu0
    fadd vpm, r3, r4
    add vpm, r3, r4
    mov vw_setup, unif
    mov vw_addr, ra0
    nop ; read vw_wait
    mov host_int, 1
    nop ; thrend
    nop
    nop
"""


def test_twelve_qpus_each_with_their_own_data():
    from qpu.macros import dma_store_setup, vpm_write_setup

    rng = np.random.default_rng(7)
    a = rng.uniform(-10, 10, (12, 16)).astype(np.float32)
    b = rng.uniform(-10, 10, (12, 16)).astype(np.float32)
    with Driver("emulator", **SMALL) as drv:
        ga, gb = drv.copy(a), drv.copy(b)
        out = drv.alloc((12, 2, 16), np.uint32)
        unif = [[ga[q].address, gb[q].address, out[q].address, vpm_write_setup(y=2 * q),
                 dma_store_setup(nrows=2, y=2 * q)] for q in range(12)]
        report = drv.execute(12, drv.program(PER_QPU_SOURCE), uniforms=unif)
        got = np.array(out)
    expected_bits = ((a.view(np.uint32).astype(np.uint64) + b.view(np.uint32)) & 0xFFFFFFFF).astype(np.uint32)
    np.testing.assert_array_equal(got[:, 1], expected_bits)
    np.testing.assert_allclose(got[:, 0].view(np.float32), a + b, rtol=2e-7)
    assert report.num_qpus == 12 and len(report.per_qpu) == 12
    assert report.instructions == 12 * 19
    assert report.counters["qpu_instruction_cycles"] > 0
    assert report.counters["qpu_tmu_stall_cycles"] == report.stalls["tmu"]


def bad_kernel(k: Kernel) -> None:
    k.setup_vpm_write()
    k.mov(r0, uniform)
    k.mov(vpm, r0)
    k.setup_dma_store(nrows=1)
    k.start_dma_store(r1)       # BUG: r1 was never written - the store address is undefined
    k.wait_dma_store()
    k.exit()


def test_emulator_errors_name_the_kernel_line():
    from qpu.emulator.errors import EmulatorError

    with Driver("emulator", **SMALL) as drv:
        with pytest.raises(EmulatorError) as exc:
            drv.execute(1, drv.program(bad_kernel), uniforms=[7])
    assert "test_runtime_emulator.py" in str(exc.value)


def spin(k: Kernel) -> None:
    loop = k.here("loop")
    k.brr(loop)
    k.nop()
    k.nop()
    k.nop()
    k.exit()


@pytest.mark.parametrize("strict", [True, False])
def test_a_job_that_never_ends_times_out(strict):
    with Driver("emulator", strict=strict, **SMALL) as drv:
        with pytest.raises(ExecuteTimeoutError, match="2 ms timeout") as exc:
            if strict:
                drv.execute(1, drv.program(spin), timeout=2)
            else:
                with pytest.warns(UserWarning, match="timeout"):     # lenient: a warning, then the answer
                    drv.execute(1, drv.program(spin), timeout=2)
        if strict:
            assert "QPU" in str(exc.value)      # the emulator's QPU states come along
        # the Driver (and the emulated V3D) stay usable
        out = drv.alloc((2, 16), np.uint32)
        ones = drv.copy(np.ones(16, np.float32))
        drv.execute(1, drv.program(selftest_program()), uniforms=[ones.address, ones.address, out.address])
        assert (np.array(out[0]).view(np.float32) == 2.0).all()
