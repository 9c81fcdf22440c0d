"""Hello world: add two vectors of 16 floats on the QPUs and check the result with numpy.

Runs through ``Driver()`` with no argument: on a Raspberry Pi Zero/1/2/3 with the
firmware mailbox available it uses the real QPUs, anywhere else the emulator.

    python examples/hello_world.py

The kernel is py-videocore's classic first program, written with this package's DSL:
one DMA load brings both input vectors into the VPM, the QPU adds them, one DMA store
writes the sum back.
"""

from __future__ import annotations

import numpy as np

from qpu.dsl import Kernel, r0, r1, uniform, vpm
from qpu.runtime import Driver


def hello_world(k: Kernel) -> None:
    # Load two vectors of 16 floats (two 64-byte rows at the address in uniform 0) into VPM rows 0-1.
    k.setup_dma_load(nrows=2)
    k.start_dma_load(uniform)
    k.wait_dma_load()

    # Read those two VPM rows back, and write the result to VPM row 0.
    k.setup_vpm_read(nrows=2)
    k.setup_vpm_write()
    k.mov(r0, vpm)
    k.mov(r1, vpm)
    k.fadd(vpm, r0, r1)

    # Store VPM row 0 to the address in uniform 1.
    k.setup_dma_store(nrows=1)
    k.start_dma_store(uniform)
    k.wait_dma_store()

    # Interrupt the host and end the program.
    k.exit()


def main() -> int:
    rng = np.random.default_rng(2024)
    a = rng.random(16, dtype=np.float32)
    b = rng.random(16, dtype=np.float32)

    with Driver() as drv:
        print(f"backend: {drv.backend_name} ({drv.backend_reason})")
        inp = drv.copy(np.r_[a, b])          # both vectors, back to back, in GPU memory
        out = drv.alloc(16, np.float32)
        out[:] = 0.0
        report = drv.execute(n_threads=1, program=drv.program(hello_world),
                             uniforms=[inp.address, out.address])
        result = np.array(out)

    expected = a + b
    error = np.abs(result - expected).max()
    print(" a + b ".center(72, "="))
    print(result)
    print(f"max |error| vs numpy: {error:.3g}")
    print(f"run: {report}")
    ok = np.allclose(result, expected, rtol=1e-6, atol=0.0)
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
