"""The timing model's memory hierarchy: TMU caches, the V3D L2, the VideoCore L2, SDRAM, DMA queueing.

Every test asserts a relation between two predicted times or counts (issue 5: relations,
not absolute numbers), so the tests hold for any physical parameter values.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from emu_harness import END, Harness

from qpu.emulator.memory import MEM_FLAG_L1_NONALLOCATING
from qpu.emulator.report import JobReport
from qpu.emulator.timing import DEFAULT_TIMING, TimingParameters
from qpu.isa.vpm import SetupFormat, encode_setup
from qpu.runtime.counters import COUNTER_NAMES


def _tmu_program(requests: int, lane_stride: int, request_stride: int) -> str:
    """``requests`` 16-lane TMU0 loads from unif + lane * lane_stride + k * request_stride,
    each waited for at once (ldtmu0 right after the request)."""
    return f"""
        mov ra0, unif
        ldi rb1, {lane_stride}
        ldi ra3, {requests}
        ldi rb4, {request_stride}
        mul24 r1, elem_num, rb1
        add ra2, ra0, r1
        nop
    loop:
        mov tmu0_s, ra2
        nop
        nop ; ldtmu0
        sub.setf ra3, ra3, 1
        brr.anynz -, loop
        add ra2, ra2, rb4
        nop
        nop
    """ + END


def _tmu_job(lane_stride: int, request_stride: int, requests: int = 8, num: int = 1,
             timing: TimingParameters = DEFAULT_TIMING):
    """``num`` QPUs each running _tmu_program on its own buffer (uncached alias 0xC)."""
    h = Harness(mem_size=16 << 20, timing=timing)
    lists = []
    words = (16 * lane_stride + requests * request_stride + 64) // 4
    for _ in range(num):
        bus, _ = h.alloc(words, fill=7)
        lists.append([bus])
    return h.run(_tmu_program(requests, lane_stride, request_stride), per_qpu_uniforms=lists, timeout_ms=10000)


def test_same_cache_line_is_cheaper_than_distinct_lines():
    same = _tmu_job(0, 0)                # every lane and request: one 64-byte line
    distinct = _tmu_job(64, 1024)        # 16 lines per request, new lines every request
    assert same.instructions == distinct.instructions
    assert same.cycles < distinct.cycles
    assert same.stalls["tmu"] < distinct.stalls["tmu"]
    # the TMU cache counts one miss per line fetched (guide Table 82, source 25)
    assert same.counters["tmu_cache_misses"] == 1
    assert distinct.counters["tmu_cache_misses"] == 16 * 8


def test_tmu_cost_grows_with_lines_not_with_lanes():
    two_lines = _tmu_job(8, 0)           # 16 lanes 8 bytes apart: 128 bytes = 2 lines, reused
    sixteen_lines = _tmu_job(64, 0)      # 16 lines, reused every request
    fresh_lines = _tmu_job(64, 1024)
    assert two_lines.counters["tmu_cache_misses"] == 2
    assert sixteen_lines.counters["tmu_cache_misses"] == 16
    assert two_lines.cycles <= sixteen_lines.cycles < fresh_lines.cycles


def test_tmu_cache_is_direct_mapped_4k_lines_evict_each_other():
    # lanes 4 KiB apart map to the same line of a 4 KiB direct-mapped TMU cache (addendum
    # "TMU cache: sequence counts"): every request misses all 16 again, although they reuse
    # the same 16 lines; 64 bytes apart they fit and only the first request misses
    aliased = _tmu_job(4096, 0, requests=4)
    spread = _tmu_job(64, 0, requests=4)
    assert aliased.counters["tmu_cache_misses"] == 16 * 4
    assert spread.counters["tmu_cache_misses"] == 16
    assert aliased.cycles > spread.cycles


def test_sdram_bandwidth_is_shared_by_all_qpus():
    fast = replace(DEFAULT_TIMING, sdram_bytes_per_cycle=16.0)
    slow = replace(DEFAULT_TIMING, sdram_bytes_per_cycle=0.5)
    one = _tmu_job(64, 1024, num=1, timing=fast).cycles, _tmu_job(64, 1024, num=1, timing=slow).cycles
    twelve = _tmu_job(64, 1024, num=12, timing=fast).cycles, _tmu_job(64, 1024, num=12, timing=slow).cycles
    # less bandwidth hurts twelve QPUs missing at once more than one QPU alone
    assert twelve[1] / twelve[0] > one[1] / one[0]
    # and twelve QPUs are not twelve times as fast as one doing their work in sequence
    assert twelve[1] > 2 * one[1]


def test_videocore_l2_holds_what_the_arm_wrote():
    # an L2-allocating alias (MEM_FLAG_L1_NONALLOCATING, the Pi 1's 0x4 alias): data the ARM
    # just wrote through the VideoCore L2 does not come from SDRAM again
    h = Harness(mem_size=16 << 20)
    handle = h.mem.alloc(16 << 10, 4096, MEM_FLAG_L1_NONALLOCATING)
    bus = h.mem.lock(handle)
    assert bus >> 30 == 1
    src = _tmu_program(8, 64, 1024)
    cold = h.run(src, [bus])
    h.v3d.clear_caches(system_l2=True)
    h.v3d.system_l2_write(bus, 16 << 10)
    warm = h.run(src, [bus])
    assert warm.memory["sdram_bytes_read"] < cold.memory["sdram_bytes_read"]
    assert warm.memory["system_l2_hits"] > cold.memory["system_l2_hits"]
    assert warm.cycles < cold.cycles


def test_uncached_alias_bypasses_the_videocore_l2():
    h = Harness(mem_size=16 << 20)
    bus, _ = h.alloc(16 << 10, fill=1)       # MEM_FLAG_DIRECT: alias 0xC
    assert bus >> 30 == 3
    h.v3d.system_l2_write(bus, 16 << 10)
    report = h.run(_tmu_program(8, 64, 1024), [bus])
    assert report.memory["system_l2_hits"] == 0 and report.memory["system_l2_misses"] == 0
    assert report.memory["sdram_bytes_read"] >= 16 * 8 * 64


def _uniform_job(h: Harness, code_bus: int, unif_bus: int):
    cbus, ctl = h.alloc((1, 2))
    ctl[0] = (unif_bus, code_bus)
    return h.v3d.execute(1, cbus)


def test_caches_persist_across_jobs_unless_cleared():
    h = Harness()
    code_bus, _ = h.load("mov r0, unif\nmov r1, unif\nmov r2, unif\nmov r3, unif\n" + END)
    ubus, _ = h.alloc(4, fill=3)
    first = _uniform_job(h, code_bus, ubus)
    again = _uniform_job(h, code_bus, ubus)
    h.v3d.clear_caches()                 # what V3D_SLCACTL / V3D_L2CACTL writes do (guide Tables 71-72)
    cleared = _uniform_job(h, code_bus, ubus)
    assert first.counters["uniforms_cache_misses"] == 1
    assert again.counters["uniforms_cache_misses"] == 0
    assert cleared.counters["uniforms_cache_misses"] == 1
    assert again.cycles < first.cycles and cleared.cycles == first.cycles
    assert first.counters["uniforms_cache_hits"] == again.counters["uniforms_cache_hits"] - 1 == 3


def _two_stores(wait_between: bool) -> JobReport:
    h = Harness(timing=replace(DEFAULT_TIMING, vdw_setup_cycles=200.0))
    out, view = h.alloc((2, 16), fill=0)
    vw = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    store = encode_setup(SetupFormat.VDW_BASIC, units=1, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    src = f"""
        mov ra0, unif
        ldi vw_setup, {vw:#x}
        mov vpm, elem_num
        ldi rb1, 64
        ldi vw_setup, {store:#x}
        mov vw_addr, ra0
        add ra2, ra0, rb1
        {"mov -, vw_wait" if wait_between else "nop"}
        ldi vw_setup, {store:#x}
        mov vw_addr, ra2
        mov -, vw_wait
    """ + END
    report = h.run(src, [out])
    assert (view == np.arange(16)).all()
    return report


def test_back_to_back_dma_starts_stall_the_qpu():
    with pytest.warns(Warning, match="dma-store-busy"):
        chained = _two_stores(False)
    waited = _two_stores(True)
    # the second vw_addr write waits for the engine (guide p.56) instead of running on
    assert chained.stalls["dma_queue"] > 0 and waited.stalls["dma_queue"] == 0
    # either way the stores are serialised: neither program finishes before two stores' time
    assert chained.cycles >= 2 * 200 and waited.cycles >= 2 * 200


def test_counters_use_the_runtime_names_and_add_up():
    report = _tmu_job(64, 1024, requests=8)
    assert set(report.counters) == set(COUNTER_NAMES.values())
    assert report.counters["qpu_instruction_cycles"] == 4 * report.instructions
    assert report.counters["qpu_tmu_stall_cycles"] == report.stalls["tmu"] > 0
    assert report.counters["tmu_quads"] == 8 * 16 // 4       # 8 requests of 16 lanes, 4 lanes per quad
    # one QPU ran the whole job; the other 11 idled
    assert report.counters["qpu_idle_cycles"] == 11 * report.cycles
    assert report.counters["l2_hits"] + report.counters["l2_misses"] >= report.counters["tmu_cache_misses"]


def test_timing_parameters_reject_impossible_caches():
    from qpu.emulator.timing import TimingFileError, timing_from_dict

    assert TimingParameters().problems() == []
    assert TimingParameters(l2c_bytes=0).problems() == []          # no L2: every access goes on
    assert TimingParameters(l2c_bytes=3000).problems()             # not 64 x ways x 2**k
    assert TimingParameters(tmu_cache_ways=3).problems()           # 4096/64/3 sets: not a power of two
    assert TimingParameters(sdram_bytes_per_cycle=0).problems()
    with pytest.raises(TimingFileError, match="l2c_bytes"):
        timing_from_dict({"l2c_bytes": 1000})


def test_pi_models_select_the_v3d_clock():
    # Raspberry Pi documentation, config.txt overclocking defaults: v3d_freq 250 MHz on the
    # Pi 1 and 2, 300 MHz on the Zero, Zero 2 W and Pi 3
    assert TimingParameters.for_pi("1B+").clock_hz == 250_000_000
    assert TimingParameters.for_pi("2B").clock_hz == 250_000_000
    assert TimingParameters.for_pi("Zero W").clock_hz == 300_000_000
    assert TimingParameters.for_pi("3B+").clock_hz == 300_000_000
    with pytest.raises(ValueError):
        TimingParameters.for_pi("4B")
    h = Harness(timing=TimingParameters.for_pi("3B"))
    report = h.run("nop\n" * 10 + END)
    assert report.clock_hz == 300_000_000 and report.seconds == report.cycles / 300e6


def test_scattered_lines_cost_sdram_rows_that_a_stream_does_not():
    # the same number of fresh 64-byte lines from SDRAM: consecutive lines share rows, lines
    # 16 KiB apart (2 KiB pages x 8 banks) each open another row of the same bank
    stream = _tmu_job(64, 1024, requests=8, num=4)
    scattered = _tmu_job(16384, 64, requests=8, num=4)
    assert stream.memory["sdram_bytes_read"] == scattered.memory["sdram_bytes_read"]
    assert scattered.memory["sdram_row_misses"] > 4 * stream.memory["sdram_row_misses"]
    assert scattered.cycles > stream.cycles


def test_a_lone_dma_runs_at_its_engine_rate_not_the_sdram_rate():
    # a VDW store of 16 rows alone: the published engine rate (setup + bytes / rate), since
    # a stream uses SDRAM rows well below its peak bandwidth
    rows = 16
    h = Harness()
    out, _ = h.alloc((rows, 16), fill=0)
    vw = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    store = encode_setup(SetupFormat.VDW_BASIC, units=rows, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    src = f"mov ra0, unif\nldi vw_setup, {vw:#x}\n" + "mov vpm, elem_num\n" * rows + \
        f"ldi vw_setup, {store:#x}\nmov vw_addr, ra0\nmov -, vw_wait\n" + END
    report = h.run(src, [out])
    t = DEFAULT_TIMING
    engine = t.vdw_setup_cycles + rows * 64 / t.vdw_bytes_per_cycle
    assert report.stalls["dma_store_wait"] <= engine + 1
    assert report.stalls["dma_store_wait"] >= engine - 4 * 3      # the 3 instructions after the start


def _loop(body: int, iterations: int) -> JobReport:
    """A loop of ``body`` nops run ``iterations`` times on one QPU."""
    src = f"ldi ra3, {iterations}\nloop:\n" + "nop\n" * body + """
        sub.setf ra3, ra3, 1
        brr.anynz -, loop
        nop
        nop
        nop
    """ + END
    return Harness().run(src)


def test_instruction_cache_fetches_every_instruction_and_misses_once_per_line_when_cold():
    report = _loop(100, 1)
    c = report.counters
    assert c["icache_hits"] + c["icache_misses"] == report.instructions
    lines = -(-report.instructions // 8)                 # 8 instructions per 64-byte line
    assert lines <= c["icache_misses"] <= lines + 1     # the code's start need not be line-aligned
    assert report.stalls["icache"] > 0


def test_a_loop_larger_than_the_instruction_cache_misses_on_every_iteration():
    # 4 KiB instruction cache per slice (addendum "Cache details") = 512 instructions
    small, big = _loop(400, 4), _loop(800, 4)
    assert small.counters["icache_misses"] <= 400 // 8 + 4          # the first iteration only
    assert big.counters["icache_misses"] >= 4 * (800 // 8) - 8      # every iteration
    # per executed instruction the big loop stalls more
    assert big.stalls["icache"] / big.instructions > 2 * small.stalls["icache"] / small.instructions


def test_profile_charges_every_stall_to_an_instruction():
    # fetch (icache), uniform and TMU stalls all land on instructions: the profile's cycles
    # add up to the QPU's cycles (executions x 4 + stalls)
    report = _tmu_job(64, 1024, requests=8)
    assert report.stalls["icache"] > 0 and report.stalls["uniforms"] > 0 and report.stalls["tmu"] > 0
    profiled = sum(4 * ex + st for ex, st in report.profile.values())
    assert profiled == report.per_qpu[0]["cycles"]
