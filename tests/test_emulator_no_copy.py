"""A job over 256 MB of GPU memory never copies it (issues 3 and 5): the emulated memory is
one buffer that the ARM side (numpy views) and the compiled loop share."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from hello_world import hello_world  # noqa: E402

from qpu.runtime import Driver  # noqa: E402


def test_job_over_256_mb_allocates_far_less_than_the_memory() -> None:
    with Driver(backend="emulator", gpu_mem=256 << 20, data_area_size=192 << 20) as drv:
        big = drv.alloc((192 << 20) // 4 - 64, np.float32)     # nearly the whole data area
        inp = big[:32]
        inp[:] = np.arange(32, dtype=np.float32)
        out = big[-16:]
        program = drv.program(hello_world)
        drv.execute(1, program, [inp.address, out.address])        # warm: caches, compiled loop
        tracemalloc.start()
        try:
            drv.execute(1, program, [inp.address, out.address])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        np.testing.assert_array_equal(np.asarray(out), np.arange(16) + np.arange(16, 32))
    assert peak < (16 << 20), f"a job allocated {peak >> 20} MB at its peak"
