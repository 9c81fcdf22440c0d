#!/usr/bin/env python3
"""Run GPU_FFT 3.0's shaders on the emulator: check every transform, compare predicted with published times.

Usage::

    python benchmarks/calibrate_gpu_fft.py USERLAND_PATH [--log2n 8..17] [--batch 1 10] [--fit]

USERLAND_PATH is a checkout of raspberrypi/userland or a bare git mirror of it; when it is
missing the script says so in one line and exits 0 (GPU_FFT's files are never part of
this repository).  For each (log2 N, batch) it prints whether the output matches numpy,
the relative rms error in ppm (gpu_fft.txt's typical figure alongside), the predicted
time per transform at the emulated clock (250 MHz, the Pi 1's V3D, where the published
times were measured), the published time from gpu_fft.txt (parsed from the file at run
time) and their ratio.  Then the error summary on the *fitted* set (batch 1, log2 N =
8..12) and on the *held-out* rest separately.

``--fit`` searches the timing model's physical parameters (qpu.emulator.timing) and the
ARM's direct-launch cost on the fitted set only, then re-runs everything with the result
so the held-out error says how well the model predicts programs it was not fitted on.
It never applies per-program corrections.

Timing follows hello_fft.c: the published figure is the wall time of one
gpu_fft_execute() call divided by the batch size, so the prediction is the emulated V3D
job plus the ARM-side launch cost (gpu_fft_host.HostCosts), divided by the batch size.
hello_fft runs inverse transforms; so does this script unless --direction forward.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gpu_fft_host as gfh  # noqa: E402

FIT_SET = {(n, 1) for n in range(8, 13)}          # batch 1, log2 N = 8..12 (issue 5)
# Accuracy limit for "correct": gpu_fft.txt's typical ppm for that size, times this margin.
PPM_MARGIN = 2.0

# Parameters --fit searches by default: the latencies no publication gives and that the
# fitted set (whose data stays in the caches) constrains: the TMU's cache-hit latency, the
# V3D L2's and the VideoCore L2's hit latencies, and the cost of a semaphore access.  The
# rest stay fixed: DMA rates and SDRAM bandwidth from published measurements, cache sizes
# from the vc4asm addendum and the VideoCore L2's published size, the 4-cycle instruction
# (guide p.16), and the estimates documented in qpu/emulator/timing.py (SDRAM latency,
# TMU issue and miss cycles, the ARM's direct-launch cost in gpu_fft_host.HostCosts).
# --fit-params chooses another set ("host_direct_us" is the ARM's direct-launch cost).
FIT_PARAMETERS = ("tmu_latency", "l2c_latency", "soc_l2_latency", "semaphore_cycles")
# Search bounds: what is physically plausible for this hardware (a V3D cycle is 4 ns at
# 250 MHz).  A fitted value at a bound means the model misses a mechanism (said in the output).
FIT_BOUNDS = {"tmu_latency": (4.0, 200.0), "tmu_issue_cycles": (1.0, 64.0), "tmu_miss_cycles": (1.0, 64.0),
              "l2c_latency": (2.0, 200.0), "l2c_cycles_per_line": (1.0, 32.0), "soc_l2_latency": (2.0, 200.0),
              "sdram_latency": (10.0, 400.0), "sdram_bytes_per_cycle": (1.0, 12.8),
              "semaphore_cycles": (0.0, 64.0), "host_direct_us": (0.0, 50.0)}


@dataclass
class Row:
    log2_n: int
    jobs: int
    path: str
    ppm: float
    ok: bool
    rules: List[str]            # rule ids of the findings (warnings), sorted
    gpu_seconds: float          # V3D job, whole batch
    host_seconds: float
    published: Optional[float]  # seconds per transform
    instructions: int
    stalls: Dict[str, int]
    wall: float
    counters: Dict[str, int]
    memory: Dict[str, int]

    @property
    def predicted(self) -> float:
        """Seconds per transform, as hello_fft reports it."""
        return (self.gpu_seconds + self.host_seconds) / self.jobs

    @property
    def ratio(self) -> Optional[float]:
        return self.predicted / self.published if self.published else None


def parse_range(text: str) -> List[int]:
    """'8..17', '8-17', '12' or '8,10,12'."""
    out: List[int] = []
    for part in text.split(","):
        part = part.strip()
        for sep in ("..", "-"):
            if sep in part:
                lo, hi = part.split(sep, 1)
                out.extend(range(int(lo), int(hi) + 1))
                break
        else:
            out.append(int(part))
    return out


def run_one(source: gfh.UserlandSource, pi: gfh.EmulatedPi, log2_n: int, jobs: int, direction: int,
            signal: str, host: gfh.HostCosts, published: Dict[Tuple[int, str], float],
            accuracy: Dict[int, float]) -> Row:
    inputs = gfh.hello_fft_inputs(log2_n, jobs) if signal == "hello" else None
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # findings are in the report; printed once per rule below
        check = gfh.run_and_check(source, log2_n, jobs, direction=direction, pi=pi, inputs=inputs,
                                  host_costs=host)
    wall = time.monotonic() - t0
    limit = PPM_MARGIN * accuracy.get(log2_n, 1.5)
    rules = sorted({f.rule for f in check.findings})
    report = check.run.report
    return Row(log2_n, jobs, check.run.path, check.ppm, check.ppm <= limit, rules, check.run.gpu_seconds,
               check.run.host_seconds, published.get((log2_n, str(jobs))), int(report.instructions),
               dict(report.stalls), wall, dict(getattr(report, "counters", {}) or {}),
               dict(getattr(report, "memory", {}) or {}))


def fmt_ms(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.4f}"


def print_rows(rows: Sequence[Row], accuracy: Dict[int, float], clock_hz: int) -> None:
    print(f"{'log2N':>5} {'batch':>5} {'launch':>7} {'ok':>3} {'ppm':>6} {'(pub)':>6} "
          f"{'V3D ms':>9} {'pred ms':>9} {'pub ms':>8} {'ratio':>6} {'instr':>10} {'wall s':>7}  set")
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        which = "fit" if (r.log2_n, r.jobs) in FIT_SET else ("held-out" if r.published else "no published time")
        pub_ppm = accuracy.get(r.log2_n)
        print(f"{r.log2_n:>5} {r.jobs:>5} {r.path:>7} {'yes' if r.ok else 'NO':>3} {r.ppm:6.2f} "
              f"{'-' if pub_ppm is None else f'{pub_ppm:.2f}':>6} {fmt_ms(r.gpu_seconds / r.jobs):>9} "
              f"{fmt_ms(r.predicted):>9} {fmt_ms(r.published):>8} {ratio:>6} {r.instructions:>10} {r.wall:7.1f}  "
              f"{which}")
    print(f"(times per transform at {clock_hz / 1e6:g} MHz; pred = V3D job + ARM launch cost, divided by the batch)")


def print_markdown(rows: Sequence[Row]) -> None:
    print(markdown_rows(rows))


def summarise(rows: Sequence[Row]) -> Dict[str, Dict[str, float]]:
    """Error statistics of predicted vs published, for the fitted set and the held-out rest."""
    out: Dict[str, Dict[str, float]] = {}
    for name, chosen in (("fitted", [r for r in rows if (r.log2_n, r.jobs) in FIT_SET and r.published]),
                         ("held-out", [r for r in rows if (r.log2_n, r.jobs) not in FIT_SET and r.published])):
        if not chosen:
            continue
        errs = [r.ratio - 1.0 for r in chosen if r.ratio is not None]
        logs = [math.log(r.ratio) for r in chosen if r.ratio is not None]
        out[name] = {
            "count": len(errs),
            "mean_abs_pct": 100 * sum(abs(e) for e in errs) / len(errs),
            "max_abs_pct": 100 * max(abs(e) for e in errs),
            "mean_signed_pct": 100 * sum(errs) / len(errs),
            "rms_log": math.sqrt(sum(v * v for v in logs) / len(logs)),
            "within_25pct": sum(1 for e in errs if abs(e) <= 0.25),
        }
    return out


def print_summary(summary: Dict[str, Dict[str, float]]) -> None:
    for name, s in summary.items():
        print(f"{name:>9}: {int(s['count'])} sizes, mean |error| {s['mean_abs_pct']:.1f}%, max |error| "
              f"{s['max_abs_pct']:.1f}%, mean signed {s['mean_signed_pct']:+.1f}%, rms log-ratio "
              f"{s['rms_log']:.3f}, within +-25%: {int(s['within_25pct'])}/{int(s['count'])}")


# ----------------------------------------------------------------------------------------------
# --fit
# ----------------------------------------------------------------------------------------------

def _apply(base, values: Dict[str, float]):
    timing_values = {k: v for k, v in values.items() if k != "host_direct_us"}
    return replace(base, **timing_values)


def fit(source: gfh.UserlandSource, pi: gfh.EmulatedPi, published: Dict[Tuple[int, str], float],
        accuracy: Dict[int, float], direction: int, signal: str, base_timing,
        host: gfh.HostCosts, names: Sequence[str] = FIT_PARAMETERS, rounds: int = 4) -> Tuple[Dict[str, float], float]:
    """Coordinate search in log space minimising the rms log-ratio on the fitted set only."""
    points = sorted(p for p in FIT_SET if (p[0], str(p[1])) in published)
    values: Dict[str, float] = {name: float(getattr(base_timing, name)) for name in names
                                if name != "host_direct_us"}
    if "host_direct_us" in names:
        values["host_direct_us"] = host.direct * 1e6
    cache: Dict[Tuple[float, ...], float] = {}

    def cost(vals: Dict[str, float]) -> float:
        key = tuple(round(vals[k], 6) for k in names)
        if key in cache:
            return cache[key]
        pi.set_timing(_apply(base_timing, vals))
        h = replace(host, direct=vals.get("host_direct_us", host.direct * 1e6) * 1e-6)
        logs = []
        for log2_n, jobs in points:
            r = run_one(source, pi, log2_n, jobs, direction, signal, h, published, accuracy)
            logs.append(math.log(r.predicted / (r.published or r.predicted)))
        c = math.sqrt(sum(v * v for v in logs) / len(logs))
        cache[key] = c
        return c

    best = cost(values)
    print(f"fit: start rms log-ratio {best:.4f} with " + ", ".join(f"{k}={v:.3g}" for k, v in values.items()))
    for rnd in range(rounds):
        step = 2.0 ** (1.0 / (1 << rnd))            # factors 2, 1.41, 1.19, 1.09
        for name in names:
            lo, hi = FIT_BOUNDS.get(name, (0.0, 1e6))
            improved = True
            while improved:
                improved = False
                cur = values[name]
                candidates = [cur * step, cur / step] if cur > 0 else [1.0, 4.0]
                if cur > 0 and lo == 0.0 and rnd == 0:
                    candidates.append(0.0)
                for v in candidates:
                    v = min(hi, max(lo, v))
                    if v == cur:
                        continue
                    trial = dict(values, **{name: v})
                    c = cost(trial)
                    if c < best - 1e-6:
                        best, values, improved = c, trial, True
                        break
        print(f"fit: round {rnd + 1}: rms log-ratio {best:.4f} with "
              + ", ".join(f"{k}={v:.3g}" for k, v in values.items()))
    at_bounds = [k for k, v in values.items() if v in FIT_BOUNDS.get(k, ()) and v != 0.0]
    if at_bounds:
        print("fit: WARNING: at the edge of the physically plausible range: " + ", ".join(at_bounds)
              + " -- the model is missing a mechanism these parameters stand in for")
    pi.set_timing(_apply(base_timing, values))
    return values, best


def print_details(rows: Sequence[Row]) -> None:
    """Where the predicted time goes: stalls per cause and memory traffic, per run."""
    for r in rows:
        stalls = ", ".join(f"{k} {v}" for k, v in sorted(r.stalls.items(), key=lambda kv: -kv[1]) if v)
        c = r.counters
        m = r.memory
        print(f"{r.log2_n:>3} x{r.jobs:<3} stalls: {stalls}")
        print(f"        icache {c.get('icache_hits', 0)}/{c.get('icache_misses', 0)} "
              f"tmu quads {c.get('tmu_quads', 0)} misses {c.get('tmu_cache_misses', 0)} "
              f"L2 {c.get('l2_hits', 0)}/{c.get('l2_misses', 0)} "
              f"VC-L2 {m.get('system_l2_hits', 0)}/{m.get('system_l2_misses', 0)} "
              f"SDRAM rd {m.get('sdram_bytes_read', 0)} wr {m.get('sdram_bytes_written', 0)}")


# ----------------------------------------------------------------------------------------------
# make bench (benchmarks/run_all.py)
# ----------------------------------------------------------------------------------------------

USERLAND_ENV = "QPU_USERLAND"


def markdown_rows(rows: Sequence[Row]) -> str:
    """The results as the markdown table docs/emulator.md shows."""
    lines = ["| log2 N | batch | launch | correct | rms ppm | predicted ms | published ms | ratio | set |",
             "|---:|---:|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        which = "fit" if (r.log2_n, r.jobs) in FIT_SET else ("held-out" if r.published else "-")
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(f"| {r.log2_n} | {r.jobs} | {r.path} | {'yes' if r.ok else 'NO'} | {r.ppm:.2f} | "
                     f"{fmt_ms(r.predicted)} | {fmt_ms(r.published)} | {ratio} | {which} |")
    return "\n".join(lines)


def run(quick: bool) -> Dict[str, object]:
    """GPU_FFT with the default timing parameters, for ``make bench``.

    Reads the userland checkout from $QPU_USERLAND; without it the result says how to
    enable the benchmark.  ``quick`` runs log2 N 8..12 only (both batches)."""
    path = os.environ.get(USERLAND_ENV, "")
    source = gfh.UserlandSource.open(path) if path else None
    if source is None:
        why = f"set {USERLAND_ENV} to a raspberrypi/userland checkout" if not path else f"no hello_fft at {path!r}"
        return {"skipped": why, "summary": f"skipped ({why})"}
    text = source.read("gpu_fft.txt")
    published = gfh.published_times(text)
    accuracy = gfh.published_accuracy(text)
    pi = gfh.EmulatedPi(strict=True)
    host = gfh.HostCosts()
    sizes = range(8, 13) if quick else range(8, 18)
    rows = [run_one(source, pi, n, jobs, gfh.INVERSE, "random", host, published, accuracy)
            for jobs in (1, 10) for n in sizes]
    summary = summarise(rows)
    correct = sum(1 for r in rows if r.ok)
    parts = [f"{correct}/{len(rows)} transforms correct"]
    for name, s in summary.items():
        parts.append(f"{name}: {int(s['within_25pct'])}/{int(s['count'])} within +-25% "
                     f"(mean |error| {s['mean_abs_pct']:.1f}%, max {s['max_abs_pct']:.1f}%)")
    return {
        "summary": "; ".join(parts),
        "errors": summary,
        "host_direct_us": host.direct * 1e6,
        "rows": [{"log2_n": r.log2_n, "batch": r.jobs, "launch": r.path, "correct": r.ok, "ppm": r.ppm,
                  "predicted_ms": r.predicted * 1e3,
                  "published_ms": None if r.published is None else r.published * 1e3,
                  "instructions": r.instructions, "wall_seconds": r.wall} for r in rows],
        "markdown": "GPU_FFT 3.0 on the emulator, default timing parameters (times per transform, 250 MHz):\n\n"
                    + markdown_rows(rows),
    }


# ----------------------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("userland", help="userland checkout or bare git mirror")
    ap.add_argument("--log2n", default="8..17", help="sizes, e.g. 8..17 or 8,10,12 (default 8..17)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 10], help="batch sizes (default 1 10)")
    ap.add_argument("--fit", action="store_true", help="fit the timing parameters on batch 1, log2 N 8..12")
    ap.add_argument("--direction", choices=("inverse", "forward"), default="inverse")
    ap.add_argument("--signal", choices=("random", "hello"), default="random",
                    help="input data: uniform random (default) or hello_fft.c's two-bin test signal")
    ap.add_argument("--lenient", action="store_true", help="run the emulator in lenient mode")
    ap.add_argument("--host-direct-us", type=float, default=None,
                    help="ARM-side cost of a direct launch in us (default: gpu_fft_host.HostCosts)")
    ap.add_argument("--markdown", action="store_true", help="also print the results as a markdown table")
    ap.add_argument("--timing", metavar="FILE", help="start from the timing parameters of this timing file "
                    "(qpu.emulator.timing.load_timing) instead of the defaults")
    ap.add_argument("--save-timing", metavar="FILE", help="with --fit: write the fitted parameters as a timing file")
    ap.add_argument("--fit-params", default=",".join(FIT_PARAMETERS),
                    help="comma-separated parameters --fit searches (default: %(default)s)")
    ap.add_argument("--details", action="store_true", help="print stalls and memory traffic per run")
    ap.add_argument("--bound", action="append", default=[], metavar="NAME=LO:HI",
                    help="override a --fit search bound, e.g. tmu_latency=4:64")
    args = ap.parse_args(argv)

    source = gfh.UserlandSource.open(args.userland)
    if source is None:
        print(f"calibrate_gpu_fft: skipped: no userland checkout with hello_fft at {args.userland!r}")
        return 0
    from qpu.emulator.timing import DEFAULT_TIMING

    text = source.read("gpu_fft.txt")
    published = gfh.published_times(text)
    accuracy = gfh.published_accuracy(text)
    direction = gfh.FORWARD if args.direction == "forward" else gfh.INVERSE
    host = gfh.HostCosts()
    if args.host_direct_us is not None:
        host.direct = args.host_direct_us * 1e-6
    pi = gfh.EmulatedPi(strict=not args.lenient)
    print(f"GPU_FFT from {source.describe()}; emulated V3D at {pi.clock_hz / 1e6:g} MHz, "
          f"{'lenient' if args.lenient else 'strict'}; {args.direction} transforms, {args.signal} input")

    timing = DEFAULT_TIMING
    if args.timing:
        from qpu.emulator.timing import load_timing
        timing = load_timing(args.timing)
    for spec in args.bound:
        name, _, rng = spec.partition("=")
        lo, _, hi = rng.partition(":")
        FIT_BOUNDS[name.strip()] = (float(lo), float(hi))
    fitted: Optional[Dict[str, float]] = None
    if args.fit:
        names = tuple(n.strip() for n in args.fit_params.split(",") if n.strip())
        fitted, best = fit(source, pi, published, accuracy, direction, args.signal, timing, host, names)
        timing = _apply(timing, fitted)
        if "host_direct_us" in fitted:
            host.direct = fitted["host_direct_us"] * 1e-6
        print("fitted parameters (fitted set: batch 1, log2 N 8..12):")
        for k, v in fitted.items():
            print(f"  {k} = {v:.4g}")
    pi.set_timing(timing)

    rows: List[Row] = []
    failures = 0
    for jobs in args.batch:
        for log2_n in parse_range(args.log2n):
            try:
                rows.append(run_one(source, pi, log2_n, jobs, direction, args.signal, host, published, accuracy))
            except Exception as exc:  # an emulator error on a hardware-proven program: report it
                failures += 1
                print(f"log2N={log2_n} batch={jobs}: {type(exc).__name__}: {exc}")
    print_rows(rows, accuracy, pi.clock_hz)
    if args.details:
        print_details(rows)
    if args.markdown:
        print_markdown(rows)
    rules = sorted({rule for r in rows for rule in r.rules})
    if rules:
        print("findings (warnings) reported on GPU_FFT:", ", ".join(rules))
    summary = summarise(rows)
    print_summary(summary)
    if args.save_timing and fitted is not None:
        from qpu.emulator.timing import save_timing
        save_timing(timing, args.save_timing, meta={
            "written_by": "benchmarks/calibrate_gpu_fft.py --fit",
            "data": "GPU_FFT 3.0 gpu_fft.txt (raspberrypi/userland hello_fft), Pi 1, 250 MHz",
            "fitted_on": "batch 1, log2 N = 8..12", "host_direct_us": host.direct * 1e6,
            "errors": summary})
        print(f"fitted timing parameters written to {args.save_timing}")
    bad = [r for r in rows if not r.ok]
    if bad or failures:
        print(f"{len(bad)} transform(s) outside the accuracy limit, {failures} run(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
