"""``make demo``: a kernel assembled, checked, disassembled and run, with its report;
then the SGEMM kernel on 12 QPUs with its predicted speed.

On this machine it runs on the emulator (on a Pi with the mailbox available, on the
QPUs).  Every result is compared with numpy.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vector_add_kernel import vector_add  # noqa: E402  (example next to this file)

from qpu import assemble, check, disassemble  # noqa: E402
from qpu.disassembler import disassemble_word  # noqa: E402
from qpu.runtime import Driver  # noqa: E402


def banner(title: str) -> None:
    print()
    print(f" {title} ".center(78, "="))


def main() -> int:
    failures = 0

    banner("1. assemble: examples/vector_add_kernel.py")
    program = assemble(vector_add)
    print(f"{len(program)} instructions, {len(program) * 8} bytes; first lines of the disassembly:")
    for i, (word, text) in enumerate(zip(program.words, disassemble(program))):
        loc = program.location(i)
        where = f"{os.path.basename(loc.file)}:{loc.line}" if loc else ""
        print(f"  {i:3d}  {word:016x}  {text:44s} {where}")
        if i == 11:
            print("  ...")
            break

    banner("2. check the hardware's programming rules")
    report = check(program)
    print(str(report) or "no findings")
    if not report.ok:
        failures += 1

    banner("3. run: out = a + b over 64 vectors of 16 floats")
    n = 64
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, 16)).astype(np.float32)
    b = rng.standard_normal((n, 16)).astype(np.float32)
    with Driver() as drv:
        print(f"backend: {drv.backend_name} ({drv.backend_reason})")
        ga, gb = drv.copy(a), drv.copy(b)
        out = drv.alloc((n, 16), np.float32)
        loaded = drv.program(vector_add)
        run = drv.execute(1, loaded, uniforms=[ga.address, gb.address, out.address, n])
        result = np.array(out)
    error = float(np.max(np.abs(result - (a + b))))
    ok = np.allclose(result, a + b, rtol=2e-7, atol=0)
    print(f"max |out - numpy| = {error:.3g}  ->  {'OK' if ok else 'MISMATCH'}")
    print(f"report: {run}")
    if run.instructions and run.cycles:
        flops = n * 16
        print(f"        {run.instructions} instructions, {run.cycles} cycles, "
              f"{flops / run.seconds / 1e6:.1f} MFLOPS predicted")
    job = getattr(run, "job", None)
    if job is not None and job.profile:
        print("        where the cycles go (also: qpu run ... --profile N --trace job.json):")
        for addr, executions, stalls in job.hot_spots(3):
            index = (addr - loaded.address) // 8
            where = loaded.program.location(index)
            line = f"{os.path.basename(where.file)}:{where.line}" if where is not None else "?"
            print(f"          {disassemble_word(loaded.program.words[index]):32s} {line:26s} "
                  f"{executions} x, {stalls} stall cycles")
    failures += 0 if ok else 1

    banner("4. SGEMM (qpu.kernels.sgemm): 96x363 @ 363x3072 on 12 QPUs")
    from qpu.kernels.sgemm import gflops, sgemm

    m, k, n = 96, 363, 3072
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    with Driver() as drv:
        c, run = sgemm(drv, a, b, n_qpus=12)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    # float32 with round-toward-zero adds (the QPU's): error bound ~ eps * sqrt(K) * (|A| @ |B|)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    worst = float(np.max(np.abs(c - ref) / scale))
    ok = worst < 1e-5 * np.sqrt(k)
    print(f"max |C - C_float64| / (|A| @ |B|) = {worst:.2e} (bound {1e-5 * np.sqrt(k):.1e})  ->  "
          f"{'OK' if ok else 'MISMATCH'}")
    print(f"report: {run}")
    print(f"        {gflops(m, n, k, run.seconds):.2f} GFLOPS predicted at {run.clock_hz / 1e6:.0f} MHz "
          f"({2 * m * n * k / 1e6:.0f} MFLOP)")
    failures += 0 if ok else 1

    banner("done" if not failures else f"{failures} FAILURE(S)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
