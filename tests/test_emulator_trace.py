"""Trace export: Chrome Trace Event JSON whose spans line up with the job's cycle counts."""

from __future__ import annotations

import json

import numpy as np
from emu_harness import END, Harness

from qpu.isa.vpm import SetupFormat, encode_setup


def _tmu_and_dma_program() -> str:
    vw = encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=0)
    store = encode_setup(SetupFormat.VDW_BASIC, units=1, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)
    return f"""
        mov ra0, unif
        mov ra1, unif
        ldi rb1, 64
        ldi ra3, 4
        mul24 r1, elem_num, rb1
        add ra2, ra0, r1
        nop
    loop:
        mov tmu0_s, ra2
        nop
        nop ; ldtmu0
        sub.setf ra3, ra3, 1
        brr.anynz -, loop
        add ra2, ra2, rb1
        nop
        nop
        ldi vw_setup, {vw:#x}
        mov vpm, r4
        ldi vw_setup, {store:#x}
        mov vw_addr, ra1
        mov -, vw_wait
    """ + END


def _run(tmp_path, num=1):
    h = Harness()
    lists = []
    for _ in range(num):
        src, _ = h.alloc(1024, fill=np.arange(1024))
        dst, _ = h.alloc(16, fill=0)
        lists.append([src, dst])
    path = tmp_path / "trace.json"
    code_bus, _ = h.load(_tmu_and_dma_program())
    entries = []
    for unifs in lists:
        ubus, uarr = h.alloc(len(unifs))
        uarr[:] = unifs
        entries.append((ubus, code_bus))
    cbus, ctl = h.alloc((len(entries), 2))
    ctl[:] = entries
    report = h.v3d.execute(len(entries), cbus, trace=path)
    return report, json.loads(path.read_text())


def test_trace_is_valid_chrome_json_with_tracks_per_qpu_and_unit(tmp_path):
    report, doc = _run(tmp_path, num=2)
    events = doc["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"QPU 0", "QPU 1", "slice 0 TMU0", "DMA store (VDW)"} <= names
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)
    # times are microseconds at the job's clock, the exact cycles are in args
    for e in spans:
        assert abs(e["ts"] - e["args"]["start_cycle"] * 1e6 / report.clock_hz) < 1e-6
        assert e["args"]["cycles"] == e["args"]["end_cycle"] - e["args"]["start_cycle"]
        assert e["args"]["end_cycle"] <= report.cycles


def test_trace_spans_add_up_to_the_reported_stalls(tmp_path):
    report, _ = _run(tmp_path, num=2)
    trace = report.trace
    for q in range(2):
        spans = trace.on(f"QPU {q}")
        for cause, cycles in report.per_qpu[q]["stalls"].items():
            traced = sum(s.cycles for s in spans if s.name == f"stall: {cause}")
            assert traced == cycles, (q, cause)
        # the program span covers the QPU's whole run
        program = [s for s in spans if s.name.startswith("program")]
        assert len(program) == 1 and program[0].end == report.per_qpu[q]["cycles"]


def test_trace_units_show_requests_and_dma(tmp_path):
    report, _ = _run(tmp_path, num=1)
    trace = report.trace
    tmu = trace.on("slice 0 TMU0")
    assert len(tmu) == 4 and all(s.args["qpu"] == 0 for s in tmu)
    # 16 lanes 64 bytes apart, each request one line further: 16 new lines, then 1 each time
    assert [s.args["lines_missed"] for s in tmu] == [16, 1, 1, 1]
    stores = trace.on("DMA store (VDW)")
    assert len(stores) == 1 and stores[0].args["bytes"] == 64
    # the vw_wait stall ends exactly when the store does
    waits = [s for s in trace.on("QPU 0") if s.name == "stall: dma_store_wait"]
    assert len(waits) == 1 and waits[0].end == stores[0].end
    # each ldtmu stall ends when its request's data is ready
    tmu_waits = [s for s in trace.on("QPU 0") if s.name == "stall: tmu"]
    assert [s.end for s in tmu_waits] == [s.end for s in tmu][:len(tmu_waits)]


def test_untraced_job_has_no_trace():
    report = Harness().run("nop\n" + END)
    assert report.trace is None
    try:
        report.write_trace("/nonexistent/never-written.json")
    except ValueError as exc:
        assert "trace=True" in str(exc)
    else:
        raise AssertionError("write_trace without a trace must fail")
