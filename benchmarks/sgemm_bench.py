"""SGEMM benchmark on the emulator: predicted time and GFLOPS at 250 MHz, and emulation speed.

Shapes: the reference 96x363 @ 363x3072 (py-videocore's SGEMM example; ~8 GFLOPS
measured on a Pi per its README) and a square 512x512 @ 512x512, on 12 QPUs, beta = 0.
``--quick`` runs smaller shapes (a few seconds).  The emulator's timing model is
calibrated on GPU_FFT (docs/emulator.md), not on SGEMM: read the predictions with the
stall breakdown, which says which part of the model limits them (here the uniforms
cache: the model has no uniform prefetch, though guide p.21 mentions one).

Run: ``.venv/bin/python benchmarks/sgemm_bench.py [--quick] [--out FILE]``; the JSON goes
to benchmarks/results/sgemm.json by default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from qpu.kernels.sgemm import gflops, issue_stats, plan_sgemm, sgemm, sgemm_program
from qpu.runtime import Driver

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "results", "sgemm.json")

FULL_SHAPES = [("reference", 96, 363, 3072), ("square", 512, 512, 512)]
QUICK_SHAPES = [("reference-small", 32, 363, 256), ("square-small", 128, 128, 128)]


def _one(drv: Any, name: str, m: int, k: int, n: int, n_qpus: int) -> Dict[str, Any]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    start = time.perf_counter()
    c, report = sgemm(drv, a, b, n_qpus=n_qpus)
    wall = time.perf_counter() - start
    exact = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    plan = plan_sgemm(m, n, k, n_qpus)
    stats = issue_stats(report, drv.program(sgemm_program(True)))
    return {
        "shape": name, "m": m, "k": k, "n": n, "qpus": report.num_qpus, "tiles": plan.n_tiles,
        "instructions": report.instructions, "cycles": report.cycles,
        "predicted_seconds": report.seconds, "clock_hz": report.clock_hz,
        "predicted_gflops": gflops(m, n, k, report.seconds),
        "dual_issue_fraction": stats["dual_issue"], "fadd_fmul_fraction": stats["fadd_fmul"],
        "stall_cycles_per_qpu": {key[6:]: v for key, v in stats.items() if key.startswith("stall_")},
        "max_relative_error": float(np.max(np.abs(c - exact) / np.maximum(scale, 1e-30))),
        "emulator_wall_seconds": wall,
        "emulated_instructions_per_second": report.instructions / wall if wall > 0 else 0.0,
    }


def run(quick: bool) -> Dict[str, Any]:
    """Run the benchmark shapes; returns the results as a JSON-ready dict."""
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    results: List[Dict[str, Any]] = []
    with Driver(backend="emulator") as drv:
        warm = time.perf_counter()
        sgemm(drv, np.ones((16, 4), np.float32), np.ones((4, 64), np.float32), n_qpus=1)   # numba load
        warm_seconds = time.perf_counter() - warm
        for name, m, k, n in shapes:
            results.append(_one(drv, name, m, k, n, 12))
    summary = "; ".join(
        f"{r['shape']} {r['m']}x{r['k']} @ {r['k']}x{r['n']} on {r['qpus']} QPUs: {r['predicted_gflops']:.2f} GFLOPS "
        f"predicted at {r['clock_hz'] / 1e6:.0f} MHz, dual issue {r['dual_issue_fraction']:.1%}, "
        f"max rel. error {r['max_relative_error']:.1e}, emulated at "
        f"{r['emulated_instructions_per_second'] / 1e6:.1f} M instr/s" for r in results)
    return {
        "summary": summary,
        "benchmark": "sgemm", "quick": quick, "backend": "emulator",
        "timing_model": ("calibrated on GPU_FFT (docs/emulator.md); SGEMM itself not yet measured on a Pi "
                         "(py-videocore's uniform-streaming SGEMM measured ~8 GFLOPS on this shape)"),
        "warm_up_seconds": warm_seconds, "python": platform.python_version(), "results": results,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes (a few seconds)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    data = run(args.quick)
    for r in data["results"]:
        print(f"{r['shape']:>16}: {r['m']}x{r['k']} @ {r['k']}x{r['n']} on {r['qpus']} QPUs: "
              f"{r['instructions']} instructions, {r['cycles']} cycles = {r['predicted_seconds'] * 1e3:.3f} ms "
              f"-> {r['predicted_gflops']:.2f} GFLOPS predicted at {r['clock_hz'] / 1e6:.0f} MHz "
              f"(dual issue {100 * r['dual_issue_fraction']:.1f}%); emulated in {r['emulator_wall_seconds']:.2f} s "
              f"({r['emulated_instructions_per_second'] / 1e6:.2f} M instr/s)")
        stalls = sorted(r["stall_cycles_per_qpu"].items(), key=lambda kv: -kv[1])
        print(" " * 18 + "stall cycles per QPU: " + (", ".join(f"{c} {v:.0f}" for c, v in stalls) or "none"))
    print(f"(timing model {data['timing_model']})")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
