"""``qpu calibrate``: measure micro-benchmarks on a Pi and fit the emulator's timing parameters to them.

    from qpu.runtime import Driver
    from qpu.runtime.calibrate import calibrate
    with Driver("mailbox") as board:            # or a remote Pi: Driver("remote", remote=...)
        result = calibrate(board)
    print(result.text())
    result.save("timing.json")                  # then Driver(timing="timing.json"), or QPU_TIMING_FILE

How (the benchmarks are in calibrate_kernels):

1. Every benchmark runs on the board once untimed (to warm its caches), then at two
   loop counts, each ``repeats`` times; the fastest run of each count is kept
   (interference only adds time) and the difference gives the board's cycles per
   iteration (seconds x the V3D clock the firmware reports).  Fixed costs - the
   mailbox call, the job launch, cache misses of the first iteration - cancel.  Loop
   counts are scaled up so the longer run lasts about ``target_seconds``.
2. The emulator runs the same programs the same way (at the small counts: it is
   deterministic) and predicts cycles per iteration for any TimingParameters.
3. Stage by stage, the parameters a benchmark isolates are fitted to its slopes by
   Gauss-Newton on relative errors with finite-difference derivatives, earlier
   stages' results held fixed: cycles per instruction (alu), TMU latency, TMU issue
   time, VPM read latency, VCD setup and bandwidth (3 row counts), VDW setup and
   bandwidth, semaphore and mutex costs.  Bandwidths are fitted as cycles per byte,
   in which the model is linear.  Parameters the model rounds up to whole cycles on
   their own are then rounded to the better neighbouring integer.  A parameter the
   benchmark shows no sensitivity to keeps its starting value (with a note).
4. ``sfu`` and ``mutex_x4`` are compared before and after, never fitted; the V3D
   performance counters the emulator also predicts are compared per iteration.

Not calibrated: ``thread_switch_cycles`` (general-purpose programs cannot be
threaded, guide p.21), ``vpm_bytes_per_cycle`` (it bounds the emulator's DMA hazard
check; it is not a duration), ``clock_hz`` (read from the firmware).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from qpu.emulator.timing import DEFAULT_TIMING, TimingParameters, save_timing

from .calibrate_kernels import Benchmark, Buffers, benchmarks
from .errors import DriverConfigError, RuntimeQPUError

# Parameters the compiled loop rounds up to whole cycles by themselves (units.cycles):
# fitted values are rounded to an integer.
WHOLE_CYCLES = ("cycles_per_instruction", "tmu_latency", "tmu_issue_cycles", "vpm_read_latency",
                "semaphore_cycles", "mutex_cycles")
# Fitted as 1/value (the model is linear in cycles per byte).
INVERSE = ("vdr_bytes_per_cycle", "vdw_bytes_per_cycle")
# Bounds of the fitted quantity (after inversion for INVERSE ones).
BOUNDS = {"cycles_per_instruction": (1.0, 64.0), "vdr_bytes_per_cycle": (1e-3, 16.0),
          "vdw_bytes_per_cycle": (1e-3, 16.0)}
DEFAULT_BOUNDS = (0.0, 100000.0)
COUNTERS_COMPARED = ("qpu_instruction_cycles", "qpu_tmu_stall_cycles", "qpu_idle_cycles")
NOT_CALIBRATED = {
    "thread_switch_cycles": "general-purpose programs run unthreaded through execute QPU (guide p.21)",
    "vpm_bytes_per_cycle": "a bound for the emulator's DMA hazard check, not a duration",
    "clock_hz": "read from the firmware (get clock rate, V3D)",
}


def not_calibrated_reason(name: str) -> str:
    return NOT_CALIBRATED.get(name, "no benchmark of this set isolates it (kept from the starting table)")


NOTES = (
    "TMU loads were timed with 1 thread per QPU only: the firmware's execute-QPU call starts general-purpose "
    "programs, which cannot be threadable (guide p.21: only fragment shaders are), so 2-thread latency hiding "
    "cannot be measured this way.",
)


class CalibrationError(RuntimeQPUError):
    """The calibration could not measure or fit (a benchmark failed, or timings make no sense)."""


class BenchmarkResult:
    """One benchmark: the board's cycles per iteration, the model's before and after the fit, counters."""

    def __init__(self, bench: Benchmark, sizes: Tuple[int, int], seconds: Tuple[float, float],
                 measured: float) -> None:
        self.name = bench.name
        self.description = bench.description
        self.fits = bench.fits
        self.sizes = sizes
        self.seconds = seconds
        self.measured = measured                   # board cycles per iteration
        self.before = math.nan                     # model cycles per iteration, starting parameters
        self.after = math.nan                      # model cycles per iteration, fitted parameters
        self.counters_measured: Dict[str, float] = {}   # per iteration
        self.counters_predicted: Dict[str, float] = {}  # per iteration, fitted parameters

    @staticmethod
    def _error(model: float, measured: float) -> float:
        return (model - measured) / measured if measured else math.nan

    @property
    def error_before(self) -> float:
        return self._error(self.before, self.measured)

    @property
    def error_after(self) -> float:
        return self._error(self.after, self.measured)

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "fits": list(self.fits), "loop_counts": list(self.sizes),
                "seconds": list(self.seconds), "measured_cycles_per_iteration": self.measured,
                "model_before": self.before, "model_after": self.after,
                "counters_measured": self.counters_measured, "counters_predicted": self.counters_predicted}


class CalibrationResult:
    """The fitted parameters, per-benchmark comparisons and notes; ``save(path)`` writes the timing file."""

    def __init__(self, parameters: TimingParameters, start: TimingParameters, results: List[BenchmarkResult],
                 notes: List[str], board: str) -> None:
        self.parameters = parameters
        self.start = start
        self.results = results
        self.notes = notes
        self.board = board

    def result(self, name: str) -> BenchmarkResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def text(self) -> str:
        lines = [f"qpu calibrate: {self.board}, V3D clock {self.parameters.clock_hz / 1e6:g} MHz",
                 "", f"{'benchmark':<16} {'board':>9} {'model':>9} {'error':>7} {'fitted':>9} {'error':>7}"
                 "   (cycles per iteration)"]
        for r in self.results:
            lines.append(f"{r.name:<16} {r.measured:9.1f} {r.before:9.1f} {r.error_before:+7.1%} "
                         f"{r.after:9.1f} {r.error_after:+7.1%}" + ("" if r.fits else "   (compared only)"))
        lines += ["", f"{'parameter':<24} {'start':>10} {'fitted':>10}"]
        fitted = self.fitted_names()
        for name in self.start.as_dict():
            a, b = getattr(self.start, name), getattr(self.parameters, name)
            mark = "" if name in fitted else f"   not calibrated: {not_calibrated_reason(name)}"
            lines.append(f"{name:<24} {a:>10.4g} {b:>10.4g}{mark}")
        counters = [(r.name, c, r.counters_measured[c], r.counters_predicted[c]) for r in self.results
                    for c in COUNTERS_COMPARED if c in r.counters_measured and c in r.counters_predicted]
        if counters:
            lines += ["", "V3D counters per iteration (board / fitted model):"]
            lines += [f"  {b:<16} {c:<24} {m:10.1f} / {p:.1f}" for b, c, m, p in counters]
        if self.notes:
            lines += [""] + [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def fitted_names(self) -> List[str]:
        return [name for r in self.results for name in r.fits]

    def meta(self) -> Dict[str, Any]:
        fitted = self.fitted_names()
        return {"written_by": "qpu calibrate", "board": self.board,
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "start_parameters": self.start.as_dict(), "fitted": fitted,
                "not_calibrated": {n: not_calibrated_reason(n) for n in self.start.as_dict() if n not in fitted},
                "notes": list(self.notes), "benchmarks": [r.as_dict() for r in self.results]}

    def save(self, path: str) -> None:
        save_timing(self.parameters, path, self.meta())


# -- running benchmarks on a Driver -------------------------------------------------------------------

class BenchmarkRunner:
    """Runs benchmarks through one Driver (any backend): its buffers, programs and uniforms."""

    def __init__(self, drv: Any) -> None:
        self.drv = drv
        self.source = drv.alloc(16 * 16, np.uint32)
        self.source[...] = np.arange(16 * 16, dtype=np.uint32)
        self.target = drv.alloc(16 * 16, np.uint32)
        self.target[...] = 0
        self.uniforms = drv.alloc((12, 8), np.uint32)
        self.buffers = Buffers(self.source.address, self.target.address)
        self._programs: Dict[str, Any] = {}

    def run(self, bench: Benchmark, n: int, timeout_ms: int = 1000) -> Any:
        """One job of ``bench`` with loop count ``n``: its RunReport."""
        from qpu.text_assembler import assemble_text

        programs = []
        for index in bench.programs:
            source = bench.sources[index]
            if source not in self._programs:
                self._programs[source] = self.drv.program(assemble_text(source, name=f"calibrate:{bench.name}"))
            programs.append(self._programs[source])
        rows = bench.uniforms(int(n), self.buffers)
        for q, row in enumerate(rows):
            self.uniforms[q, :len(row)] = np.array(row, dtype=np.uint64).astype(np.uint32)
        pairs = [(self.uniforms[q].address, programs[q]) for q in range(bench.num_qpus)]
        return self.drv.execute_control_list(pairs, timeout=timeout_ms)


def _per_iteration(a: float, b: float, sizes: Tuple[int, int]) -> float:
    return (b - a) / (sizes[1] - sizes[0])


class Model:
    """The emulator's predictions of cycles per iteration, for any TimingParameters."""

    def __init__(self, clock_hz: int, start: TimingParameters) -> None:
        from .driver import Driver

        self.drv = Driver("emulator", data_area_size=1 << 20, code_area_size=256 << 10, gpu_mem=16 << 20,
                          clock_hz=clock_hz, timing=replace(start, clock_hz=clock_hz))
        self.runner = BenchmarkRunner(self.drv)
        self.runs = 0

    def close(self) -> None:
        self.drv.close()

    def reports(self, bench: Benchmark, params: TimingParameters) -> Tuple[Any, Any]:
        self.drv.backend.v3d.timing = params
        self.runs += 3
        # a first run warms the caches the model may hold between jobs, as on the board (measure())
        self.runner.run(bench, bench.sizes[0], timeout_ms=60000)
        return tuple(self.runner.run(bench, n, timeout_ms=60000) for n in bench.sizes)  # type: ignore[return-value]

    def slope(self, bench: Benchmark, params: TimingParameters) -> float:
        a, b = self.reports(bench, params)
        return _per_iteration(a.cycles, b.cycles, bench.sizes)

    def counters(self, bench: Benchmark, params: TimingParameters) -> Dict[str, float]:
        a, b = self.reports(bench, params)
        return {k: _per_iteration(a.counters[k], b.counters[k], bench.sizes) for k in COUNTERS_COMPARED
                if k in a.counters and k in b.counters}


def measure(runner: BenchmarkRunner, bench: Benchmark, model: Model, start: TimingParameters, repeats: int,
            target_seconds: float) -> BenchmarkResult:
    """The board's cycles per iteration of one benchmark (and its counters per iteration)."""
    clock = runner.drv.clock_hz
    predicted = model.reports(bench, start)[1].cycles / clock
    scale = max(1, math.ceil(target_seconds / predicted)) if predicted > 0 else 1
    sizes = (bench.sizes[0] * scale, bench.sizes[1] * scale)
    runner.run(bench, sizes[0])     # warm-up, not timed: instruction, uniform, TMU and L2 caches
    best: List[Any] = []
    for n in sizes:
        reports = [runner.run(bench, n) for _ in range(max(1, repeats))]
        best.append(min(reports, key=lambda r: r.seconds))
    seconds = (best[0].seconds, best[1].seconds)
    measured = _per_iteration(seconds[0], seconds[1], sizes) * clock
    if not measured > 0:
        raise CalibrationError(
            f"benchmark {bench.name}: {sizes[1]} iterations took no longer than {sizes[0]} ({seconds[1]:.3g} s vs "
            f"{seconds[0]:.3g} s): the timing is dominated by noise; close other programs and raise "
            "target_seconds / --target-ms")
    result = BenchmarkResult(bench, sizes, seconds, measured)
    c0, c1 = best[0].counters or {}, best[1].counters or {}
    result.counters_measured = {k: _per_iteration(c0[k], c1[k], sizes) for k in COUNTERS_COMPARED
                                if k in c0 and k in c1}
    return result


# -- fitting ------------------------------------------------------------------------------------------

def _to_x(name: str, value: float) -> float:
    return 1.0 / value if name in INVERSE else float(value)


def _from_x(name: str, x: float) -> float:
    return 1.0 / x if name in INVERSE else float(x)


def _bounds(name: str) -> Tuple[float, float]:
    lo, hi = BOUNDS.get(name, DEFAULT_BOUNDS)
    return (1.0 / hi, 1.0 / lo) if name in INVERSE else (lo, hi)


def fit_stage(names: Sequence[str], benches: Sequence[Benchmark], measured: Sequence[float],
              predict: Callable[[Benchmark, TimingParameters], float], params: TimingParameters,
              iterations: int = 8) -> Tuple[TimingParameters, List[str]]:
    """Fit ``names`` so that ``predict`` matches ``measured`` (relative least squares).

    Returns the new parameters and notes about parameters that could not be identified.
    """
    target = np.asarray(measured, dtype=float)
    notes: List[str] = []

    def with_x(x: np.ndarray) -> TimingParameters:
        values = {}
        for name, v in zip(names, x):
            lo, hi = _bounds(name)
            values[name] = _from_x(name, float(min(max(v, lo), hi)))
        return replace(params, **values)

    def residual(p: TimingParameters) -> np.ndarray:
        return np.array([predict(b, p) for b in benches]) / target - 1.0

    x = np.array([_to_x(n, getattr(params, n)) for n in names])
    r = residual(with_x(x))
    cost = float(r @ r)
    frozen = np.zeros(len(names), dtype=bool)
    for _ in range(iterations):
        jac = np.zeros((len(benches), len(names)))
        steps = np.array([max(0.25 * abs(v), 2.0) if n not in INVERSE else max(0.25 * abs(v), 1e-3)
                          for n, v in zip(names, x)])
        for j in range(len(names)):
            if frozen[j]:
                continue
            xj = x.copy()
            xj[j] += steps[j]
            jac[:, j] = (residual(with_x(xj)) - r) / steps[j]
            if not np.any(jac[:, j]):
                frozen[j] = True
        if frozen.all():
            break
        active = ~frozen
        dx = np.zeros(len(names))
        dx[active] = np.linalg.lstsq(jac[:, active], -r, rcond=None)[0]
        improved = False
        for _ in range(6):                      # backtracking: the model is only piecewise linear
            x_new = x + dx
            r_new = residual(with_x(x_new))
            c_new = float(r_new @ r_new)
            if c_new < cost:
                x, r, cost, improved = x_new, r_new, c_new, True
                break
            dx *= 0.5
        if not improved or cost < 1e-12:
            break
    for j, name in enumerate(names):
        if frozen[j]:
            notes.append(f"{name}: the benchmark(s) {', '.join(b.name for b in benches)} showed no sensitivity to "
                         f"it (the model hides it at this value); kept {getattr(params, name):g}")
    best = with_x(x)
    # Whole-cycle parameters: try the integers either side of each, keep what fits best.
    for name in names:
        if name not in WHOLE_CYCLES:
            continue
        value = getattr(best, name)
        options = sorted({max(math.floor(value), _bounds(name)[0]), max(math.ceil(value), _bounds(name)[0])})
        scored = []
        for v in options:
            cand = replace(best, **{name: float(v)})
            rr = residual(cand)
            scored.append((float(rr @ rr), v, cand))
        best = min(scored, key=lambda s: (s[0], s[1]))[2]
    for name in INVERSE:
        if name in names:
            best = replace(best, **{name: round(getattr(best, name), 4)})
    for name in names:
        if name not in WHOLE_CYCLES and name not in INVERSE:
            best = replace(best, **{name: round(getattr(best, name), 2)})
    return best, notes


def calibrate(drv: Any, *, start: Optional[TimingParameters] = None, repeats: int = 5,
              target_seconds: float = 2e-3, only: Optional[Sequence[str]] = None,
              progress: Optional[Callable[[str], None]] = None) -> CalibrationResult:
    """Measure every benchmark on the Driver's board and fit the timing parameters (module docstring).

    ``start``: the parameters to start from (default: the emulator's table).
    ``repeats``: runs per loop count (the fastest counts).  ``target_seconds``: how long
    the longer run of each benchmark should take on the board.  ``only``: names of the
    benchmarks to run (default all).  ``progress``: called with a line per step.
    """
    say = progress or (lambda text: None)
    start = start if start is not None else DEFAULT_TIMING
    clock = int(drv.clock_hz)
    if clock <= 0:
        raise CalibrationError("the board reports a V3D clock of 0 Hz: cannot convert times to cycles")
    start = replace(start, clock_hz=clock)
    benches = benchmarks()
    if only:
        unknown = sorted(set(only) - {b.name for b in benches})
        if unknown:
            raise DriverConfigError(f"unknown benchmark(s) {', '.join(unknown)}: choose from "
                                    f"{', '.join(b.name for b in benches)}")
        benches = [b for b in benches if b.name in only]
    board = f"{drv.backend_name} backend, {drv.pi.model}"
    model = Model(clock, start)
    try:
        runner = BenchmarkRunner(drv)
        results: List[BenchmarkResult] = []
        for bench in benches:
            say(f"measuring {bench.name}: {bench.description}")
            result = measure(runner, bench, model, start, repeats, target_seconds)
            result.before = model.slope(bench, start)
            results.append(result)
        params = start
        notes: List[str] = list(NOTES)
        stages: List[Tuple[str, ...]] = []
        for bench in benches:
            if bench.fits and bench.fits not in stages:
                stages.append(bench.fits)
        for names in stages:
            group = [(b, r) for b, r in zip(benches, results) if b.fits == names]
            say(f"fitting {', '.join(names)} to {', '.join(b.name for b, _ in group)}")
            params, stage_notes = fit_stage(names, [b for b, _ in group], [r.measured for _, r in group],
                                            model.slope, params)
            notes += stage_notes
        for bench, result in zip(benches, results):
            result.after = model.slope(bench, params)
            if result.counters_measured:
                result.counters_predicted = model.counters(bench, params)
        return CalibrationResult(params, start, results, notes, board)
    finally:
        model.close()
