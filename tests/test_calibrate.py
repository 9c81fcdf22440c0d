"""``qpu calibrate`` and timing files, against a "fake Pi": the emulator with other timing parameters.

The fake Pi reports measured wall times (its cycles at its own V3D clock plus a fixed
launch overhead, as a mailbox call has), so the calibration sees what it would see on
a board.  References: the fake Pi's parameters (the fit must find them), its cycle
counts (a file written by the fit must make the emulator reproduce them), the static
checker (the benchmark kernels must break no programming rule), and hand-derived cost
of the TMU benchmark loop (guide p.16: 4 cycles per instruction).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest

from qpu.emulator.timing import (
    DEFAULT_TIMING,
    TimingFileError,
    TimingParameters,
    load_timing,
    save_timing,
    timing_from_dict,
)
from qpu.runtime import Driver, RunReport
from qpu.runtime.backends import EmulatorBackend
from qpu.runtime.calibrate import BenchmarkRunner, calibrate
from qpu.runtime.calibrate_kernels import benchmarks, by_name

pytest.importorskip("qpu.emulator.v3d")

SMALL = {"data_area_size": 1 << 20, "code_area_size": 256 << 10, "gpu_mem": 16 << 20}

# The fake board: a Pi 3's 300 MHz V3D with parameters far from the defaults.
TRUE = TimingParameters(clock_hz=300_000_000, cycles_per_instruction=4, tmu_latency=70, tmu_issue_cycles=6,
                        vpm_read_latency=16, vdr_setup_cycles=90, vdr_bytes_per_cycle=2.5, vdw_setup_cycles=30,
                        vdw_bytes_per_cycle=6.0, semaphore_cycles=3, mutex_cycles=5)
OVERHEAD_S = 80e-6


class FakePi(EmulatorBackend):
    """The emulator standing in for a board: measured times = its cycles / clock + a launch overhead."""

    name = "fake-pi"

    def __init__(self, timing: TimingParameters = TRUE, jitter_s: float = 0.0) -> None:
        super().__init__("3", clock_hz=timing.clock_hz, timing=timing, gpu_mem=16 << 20)
        self.rng = np.random.default_rng(1)
        self.jitter_s = jitter_s

    def execute(self, num_qpus, control_bus, timeout_ms):
        job = super().execute(num_qpus, control_bus, timeout_ms)
        seconds = job.cycles / self.clock_hz + OVERHEAD_S + self.jitter_s * float(self.rng.random())
        return RunReport("fake-pi", num_qpus, seconds, self.clock_hz, measured=True, counters=job.counters)


# --- timing files ------------------------------------------------------------------------------------

def test_timing_file_round_trip(tmp_path):
    path = tmp_path / "t.json"
    save_timing(TRUE, path, {"board": "test"})
    assert load_timing(path) == TRUE
    doc = json.loads(path.read_text())
    assert doc["format"] == "qpu-videocore timing parameters" and doc["version"] == 1
    assert doc["parameters"]["tmu_latency"] == 70 and doc["meta"] == {"board": "test"}


def test_a_file_without_some_parameters_keeps_their_defaults(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "qpu-videocore timing parameters", "version": 1,
                                "parameters": {"tmu_latency": 33}}))
    assert load_timing(path) == TimingParameters(tmu_latency=33.0)


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ('{"format": "something else", "version": 1, "parameters": {}}', "not a timing-parameter file"),
    ('{"format": "qpu-videocore timing parameters", "version": 9, "parameters": {}}', "version 9"),
    ('{"format": "qpu-videocore timing parameters", "version": 1, "parameters": {"warp_speed": 1}}',
     "unknown timing parameter.*warp_speed"),
    ('{"format": "qpu-videocore timing parameters", "version": 1, "parameters": {"tmu_latency": -1}}',
     "tmu_latency must be zero or positive"),
    ('{"format": "qpu-videocore timing parameters", "version": 1, "parameters": {"vdr_bytes_per_cycle": 0}}',
     "vdr_bytes_per_cycle must be positive"),
    ('{"format": "qpu-videocore timing parameters", "version": 1, "parameters": {"clock_hz": 2.5e8}}', None),
    ('{"format": "qpu-videocore timing parameters", "version": 1, "parameters": {"clock_hz": "fast"}}',
     "clock_hz must be a finite number"),
])
def test_bad_timing_files_are_refused_with_the_reason(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    if message is None:
        assert load_timing(path).clock_hz == 250_000_000
        return
    with pytest.raises(TimingFileError, match=message):
        load_timing(path)


def test_missing_timing_file_and_checked_dicts():
    with pytest.raises(TimingFileError, match="cannot read the timing file"):
        load_timing("/nonexistent/timing.json")
    assert timing_from_dict({}) == DEFAULT_TIMING
    with pytest.raises(TimingFileError, match="cycles_per_instruction must be at least 1"):
        timing_from_dict({"cycles_per_instruction": 0.5})


def _tmu_slope(drv) -> float:
    runner = BenchmarkRunner(drv)
    bench = by_name()["tmu_latency"]
    runner.run(bench, 1)                        # warm the caches
    a, b = (runner.run(bench, n) for n in bench.sizes)
    return (b.cycles - a.cycles) / (bench.sizes[1] - bench.sizes[0])


def test_driver_reads_the_timing_file_from_its_argument_and_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "board.json"
    save_timing(replace(DEFAULT_TIMING, clock_hz=300_000_000, tmu_latency=DEFAULT_TIMING.tmu_latency + 22), path)
    # Each iteration of the loop waits for one TMU load: 22 more cycles of latency, 22 more per iteration.
    monkeypatch.delenv("QPU_TIMING_FILE", raising=False)
    with Driver("emulator", **SMALL) as drv:
        assert drv.clock_hz == DEFAULT_TIMING.clock_hz
        default = _tmu_slope(drv)
    with Driver("emulator", timing=str(path), **SMALL) as drv:
        assert drv.clock_hz == 300_000_000           # the file's clock, unless clock_hz= says otherwise
        assert _tmu_slope(drv) == default + 22
    monkeypatch.setenv("QPU_TIMING_FILE", str(path))
    with Driver("emulator", clock_hz=250_000_000, **SMALL) as drv:
        assert drv.clock_hz == 250_000_000
        assert _tmu_slope(drv) == default + 22
    with Driver("emulator", timing=DEFAULT_TIMING, **SMALL) as drv:     # an explicit argument wins
        assert _tmu_slope(drv) == default
    monkeypatch.setenv("QPU_TIMING_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(TimingFileError, match="missing.json"):
        Driver("emulator", **SMALL)


# --- the benchmarks -----------------------------------------------------------------------------------

def test_benchmark_kernels_break_no_programming_rule():
    from qpu.checker import check
    from qpu.text_assembler import assemble_text

    for bench in benchmarks():
        for source in bench.sources:
            report = check(assemble_text(source, name=bench.name))
            assert not report.errors, (bench.name, str(report))


# --- calibration against the fake Pi -------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted():
    with Driver(FakePi(), data_area_size=1 << 20, code_area_size=256 << 10) as board:
        return calibrate(board, repeats=1, target_seconds=0.0)


def test_calibration_recovers_the_fake_pis_parameters(fitted):
    p = fitted.parameters
    assert p.clock_hz == TRUE.clock_hz
    assert set(fitted.fitted_names()) >= {"cycles_per_instruction", "tmu_latency", "vdr_bytes_per_cycle"}
    for name in ("cycles_per_instruction", "tmu_latency", "tmu_issue_cycles", "vpm_read_latency",
                 "semaphore_cycles", "mutex_cycles"):
        assert getattr(p, name) == getattr(TRUE, name), name
    for name in ("vdr_setup_cycles", "vdw_setup_cycles"):
        assert abs(getattr(p, name) - getattr(TRUE, name)) <= 2.0, name
    for name in ("vdr_bytes_per_cycle", "vdw_bytes_per_cycle"):
        assert getattr(p, name) == pytest.approx(getattr(TRUE, name), rel=0.03), name
    # not calibrated: kept from the starting table
    assert p.thread_switch_cycles == DEFAULT_TIMING.thread_switch_cycles
    assert p.vpm_bytes_per_cycle == DEFAULT_TIMING.vpm_bytes_per_cycle
    assert any("1 thread" in n and "guide p.21" in n for n in fitted.notes)


def test_the_default_model_was_wrong_and_the_fitted_one_is_right(fitted):
    worst_before = max(abs(r.error_before) for r in fitted.results)
    worst_after = max(abs(r.error_after) for r in fitted.results)
    assert worst_before > 0.2 and worst_after < 0.01
    alu = fitted.result("alu")
    assert alu.measured == pytest.approx(8 * 4)     # 8 instructions of 4 cycles, launch overhead cancelled
    assert fitted.result("tmu_latency").counters_measured["qpu_tmu_stall_cycles"] == pytest.approx(70 - 4)
    text = fitted.text()
    assert "tmu_latency" in text and "not calibrated" in text


def test_the_written_file_makes_the_emulator_reproduce_the_fake_pi(fitted, tmp_path):
    path = tmp_path / "fitted.json"
    fitted.save(str(path))
    meta = json.loads(path.read_text())["meta"]
    assert meta["written_by"] == "qpu calibrate" and len(meta["benchmarks"]) == len(benchmarks())
    with Driver(FakePi(), **{k: v for k, v in SMALL.items() if k != "gpu_mem"}) as board, \
            Driver("emulator", timing=str(path), **SMALL) as model:
        truth, predicted = BenchmarkRunner(board), BenchmarkRunner(model)
        assert model.clock_hz == board.clock_hz
        for bench in benchmarks():
            n = 3 * bench.sizes[1]          # another loop count than the fit used
            t = truth.run(bench, n).seconds - OVERHEAD_S
            p = predicted.run(bench, n).seconds
            assert p == pytest.approx(t, rel=0.01), bench.name


def test_calibration_copes_with_timing_noise():
    # 0-20 us of random delay per job, as a busy Linux adds; longer jobs and the fastest of 3 runs
    with Driver(FakePi(jitter_s=20e-6), data_area_size=1 << 20, code_area_size=256 << 10) as board:
        result = calibrate(board, repeats=3, target_seconds=2e-3,
                           only=["alu", "tmu_latency", "dma_load_r1", "dma_load_r4", "dma_load_r16"])
    p = result.parameters
    assert p.cycles_per_instruction == 4 and abs(p.tmu_latency - 70) <= 1
    assert p.vdr_bytes_per_cycle == pytest.approx(2.5, rel=0.05)
    assert abs(p.vdr_setup_cycles - 90) <= 6


def test_calibration_through_the_remote_backend():
    from qpu.runtime.remote_server import RemoteServer

    server = RemoteServer(FakePi())
    host, port = server.start_tcp("127.0.0.1", 0)
    try:
        with Driver("remote", remote=f"tcp://{host}:{port}", data_area_size=1 << 20,
                    code_area_size=256 << 10) as board:
            result = calibrate(board, repeats=1, target_seconds=0.0, only=["alu", "vpm_read"])
        assert result.parameters.vpm_read_latency == TRUE.vpm_read_latency
        assert result.board.startswith("remote backend")
    finally:
        server.shutdown()


def test_unknown_benchmark_names_are_refused():
    from qpu.runtime import DriverConfigError

    with Driver("emulator", **SMALL) as drv, pytest.raises(DriverConfigError, match="alu"):
        calibrate(drv, only=["nope"])


def test_cli_calibrate_dry_run_writes_a_loadable_file(tmp_path, capsys):
    from qpu.cli import main

    out = tmp_path / "timing.json"
    assert main(["calibrate", "--backend", "emulator", "-o", str(out), "--repeats", "1", "--target-ms", "0",
                 "--only", "alu,mutex"]) == 0
    text = capsys.readouterr().out
    assert "dry run" in text and "QPU_TIMING_FILE" in text
    assert load_timing(out) == DEFAULT_TIMING          # the emulator measured against itself


@pytest.mark.hw
def test_calibrate_on_the_pi(tmp_path):
    with Driver("mailbox", data_area_size=1 << 20, code_area_size=256 << 10) as board:
        result = calibrate(board, only=["alu", "tmu_latency", "dma_load_r1", "dma_load_r16"])
    print(result.text())
    assert result.parameters.cycles_per_instruction == 4     # guide p.16: four clocks per instruction
    assert all(abs(r.error_after) < 0.1 for r in result.results if r.fits)
    result.save(str(tmp_path / "pi.json"))
    assert os.path.getsize(tmp_path / "pi.json") > 0
