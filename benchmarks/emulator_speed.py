"""Emulator speed: emulated QPU instructions per second of wall time (not a test).

Two kernels, each on 1 and on 12 QPUs, with the strict checks on:

* ``alu``: a loop of dual-issue ALU instructions (integer and float, both ALUs busy);
* ``tmu_vpm``: a streaming kernel: 2 TMU loads per 16-element vector, fadd, VPM write,
  and one VDW DMA store per 16 rows.

Compilation (numba, cached on disk) is timed separately by a first small run.

Run: ``.venv/bin/python benchmarks/emulator_speed.py``
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from emu_harness import END, Harness  # noqa: E402

from qpu.isa.vpm import SetupFormat, encode_setup  # noqa: E402

ALU_LOOP = """
    mov r0, unif                  # iterations
    ldi r1, 0
    ldi r2, 1.5
    ldi r3, 0
loop:
    sub.setf r0, r0, 1 ; fmul r2, r2, r2
    add r1, r1, 3 ; fmul r3, r2, r2
    xor r1, r1, r0 ; v8adds r3, r3, r1
    brr.anynz -, loop
    add r1, r1, r0 ; fmul r2, r2, 0.5
    shl r3, r1, 1 ; mul24 r1, r0, r0
    add r1, r1, r3 ; fmul r2, r2, 2.0
"""


def tmu_vpm_kernel(blocks: int) -> str:
    """Per block: 4 vectors of a+b into this QPU's 4 VPM rows (4 * index), one DMA store."""
    vw = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    vdw = encode_setup(SetupFormat.VDW_BASIC, units=4, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    return f"""
    mov ra0, unif                 # a
    mov ra1, unif                 # b
    mov ra2, unif                 # out
    mov r0, unif                  # index: VPM rows 4 * index
    shl r1, r0, 2
    ldi r2, {vw:#x}
    add ra4, r1, r2               # VPM write setup
    shl r1, r0, 9                 # vpmbase = Y << 4 with Y = 4 * index, field at bit 3
    ldi r2, {vdw:#x}
    add ra5, r1, r2               # VDW setup
    ldi ra3, {blocks}
    shl r1, elem_num, 2
    add ra0, ra0, r1
    add ra1, ra1, r1
    ldi rb1, 64
    ldi rb2, 256
block:
    mov vw_setup, ra4
""" + """
    mov tmu0_s, ra0
    mov tmu1_s, ra1
    add ra0, ra0, rb1 ; nop ; ldtmu0
    add ra1, ra1, rb1 ; mov r2, r4 ; ldtmu1
    fadd vpm, r2, r4
""" * 4 + """
    sub.setf ra3, ra3, 1
    mov vw_setup, ra5
    mov vw_addr, ra2
    add ra2, ra2, rb2
    brr.anynz -, block
    mov -, vw_wait
    nop
    nop
"""


def timed(h: Harness):
    """Wrap ``h.v3d.execute`` to measure the emulation alone (not assembly or allocation)."""
    spent = []
    execute = h.v3d.execute

    def run(*args, **kw):
        t = time.perf_counter()
        try:
            return execute(*args, **kw)
        finally:
            spent.append(time.perf_counter() - t)
    h.v3d.execute = run  # type: ignore[method-assign]
    return spent


def show(name: str, num: int, report, dt: float) -> None:
    print(f"{name:10s} {num:2d} QPU(s): {report.instructions:10d} instructions in {dt:6.3f} s = "
          f"{report.instructions / dt / 1e6:6.2f} M instr/s; predicted {report.seconds * 1e3:8.3f} ms")


def bench(name: str, src: str, num: int, unifs) -> None:
    h = Harness(mem_size=64 << 20)
    spent = timed(h)
    extra = [u(h) if callable(u) else u for u in unifs]
    report = h.run(src + END, per_qpu_uniforms=[e for e in extra] if num > 1 else None,
                   uniforms=extra[0] if num == 1 else (), timeout_ms=100000)
    show(name, num, report, spent[0])


def main() -> None:
    t = time.perf_counter()
    Harness().run("nop" + END)
    print(f"warm-up (numba compile or cache load): {time.perf_counter() - t:.2f} s")
    iters = 200_000
    bench("alu", ALU_LOOP, 1, [[iters]])
    bench("alu", ALU_LOOP, 12, [[iters // 12]] * 12)
    blocks = 1024

    def args(h: Harness, index: int = 0):
        a, av = h.alloc(64 * blocks, np.float32, fill=1.0)
        b, bv = h.alloc(64 * blocks, np.float32, fill=2.0)
        o, ov = h.alloc(64 * blocks, np.float32, fill=0.0)
        return [a, b, o, index]
    bench("tmu_vpm", tmu_vpm_kernel(blocks), 1, [args])

    h = Harness(mem_size=128 << 20)
    spent = timed(h)
    lists = [args(h, k) for k in range(12)]
    report = h.run(tmu_vpm_kernel(blocks) + END, per_qpu_uniforms=lists, timeout_ms=100000)
    show("tmu_vpm", 12, report, spent[0])


if __name__ == "__main__":
    main()
