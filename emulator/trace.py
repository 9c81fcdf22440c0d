"""A job's timeline as spans on tracks, exported as Chrome Trace Event JSON.

``V3D.execute(..., trace=True)`` makes the compiled loop record what it models (units.py
trace records): every stall of every QPU with its cause, semaphore and mutex waits, each
TMU request from the cycle its TMU takes it to the cycle its data is ready, each VCD load
and VDW store on the shared engines, and the memory traffic of each DMA.  ``Trace`` turns
those records into spans on one track per QPU and per shared unit (DMA load engine, DMA
store engine, each slice's TMU0/TMU1, SDRAM), in V3D cycles.

``Trace.to_chrome()`` / ``write(path)`` give the Trace Event format's JSON object form
("traceEvents", complete events ``"ph": "X"``, times in microseconds at the job's clock,
thread-name metadata events for the track names), which chrome://tracing and
https://ui.perfetto.dev open.  Each event's ``args`` keep the exact cycles.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Union

import numpy as np

from . import layout as L
from . import units as U

_WAITS = {L.W_SEM_ACQ: "semaphore acquire", L.W_SEM_REL: "semaphore release", L.W_MUTEX: "mutex"}
STALL_NAMES = tuple(L.STALL_CAUSES) + tuple(U.EXTRA_STALL_CAUSES)


@dataclass
class Span:
    """One interval on one track, in V3D cycles from the job start."""

    track: str
    name: str
    start: int
    end: int
    args: Dict[str, Any] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return self.end - self.start


def track_name(track: int) -> str:
    """Display name of a units.py trace track number."""
    if 0 <= track < L.NUM_QPUS:
        return f"QPU {track}"
    if U.TRK_TMU <= track < U.TRK_TMU + 6:
        k = track - U.TRK_TMU
        return f"slice {k // 2} TMU{k % 2}"
    return {U.TRK_DMA_LOAD: "DMA load (VCD)", U.TRK_DMA_STORE: "DMA store (VDW)",
            U.TRK_SDRAM: "SDRAM"}.get(track, f"track {track}")


def _track_order(name: str) -> int:
    """QPUs first, then the TMUs by slice, then the DMA engines and SDRAM."""
    if name.startswith("QPU "):
        return int(name.split()[1])
    if name.startswith("slice "):
        return 20 + 2 * int(name.split()[1]) + int(name[-1])
    others = ["DMA load (VCD)", "DMA store (VDW)", "SDRAM"]
    return 30 + (others.index(name) if name in others else len(others))


def spans_from_records(records: Iterable[np.ndarray]) -> List[Span]:
    """Spans of the loop's raw trace records (rows of units.TW integers)."""
    out: List[Span] = []
    for block in records:
        for rec in block:
            kind, track, t0, t1, a, b = (int(x) for x in rec)
            name = track_name(track)
            if kind < len(STALL_NAMES):
                out.append(Span(name, f"stall: {STALL_NAMES[kind]}", t0, t1, {"pc": f"{a & 0xFFFFFFFF:#010x}"}))
            elif kind == U.TK_WAIT_END:
                what = _WAITS.get(a, "wait")
                label = f"{what} {b}" if a != L.W_MUTEX else what
                out.append(Span(name, f"wait: {label}", t0, t1, {}))
            elif kind == U.TK_TMU:
                out.append(Span(name, f"QPU {a} request", t0, t1, {"qpu": a, "lines_missed": b}))
            elif kind == U.TK_DMA_LOAD:
                out.append(Span(name, f"QPU {a} load", t0, t1, {"qpu": a, "bytes": b}))
            elif kind == U.TK_DMA_STORE:
                out.append(Span(name, f"QPU {a} store", t0, t1, {"qpu": a, "bytes": b}))
            elif kind == U.TK_SDRAM:
                out.append(Span(name, "DMA store" if b else "DMA load", t0, t1, {"bytes_read": a, "bytes_written": b}))
    return out


class Trace:
    """The spans of one job, at its clock."""

    def __init__(self, spans: List[Span], clock_hz: int, dropped: int = 0) -> None:
        self.spans = sorted(spans, key=lambda s: (s.start, s.track))
        self.clock_hz = int(clock_hz)
        self.dropped = int(dropped)      # records lost to a full buffer (0 in practice)

    def on(self, track: str) -> List[Span]:
        return [s for s in self.spans if s.track == track]

    @property
    def tracks(self) -> List[str]:
        return sorted({s.track for s in self.spans}, key=_track_order)

    def to_chrome(self) -> Dict[str, Any]:
        """The Trace Event format's JSON object (times in microseconds)."""
        us = 1e6 / self.clock_hz
        tids = {name: i + 1 for i, name in enumerate(self.tracks)}
        events: List[Dict[str, Any]] = [
            {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "V3D (emulated)"}}]
        for name, tid in tids.items():
            events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}})
            events.append({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid,
                           "args": {"sort_index": _track_order(name)}})
        for s in self.spans:
            args = dict(s.args)
            args.update(start_cycle=s.start, end_cycle=s.end, cycles=s.cycles)
            events.append({"name": s.name, "cat": s.name.split(":")[0].split()[0], "ph": "X", "pid": 1,
                           "tid": tids[s.track], "ts": s.start * us, "dur": s.cycles * us, "args": args})
        meta = {"clock_hz": self.clock_hz, "time_unit": "us", "dropped_records": self.dropped}
        return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": meta}

    def write(self, path: Union[str, os.PathLike[str]]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_chrome(), f)


def build_trace(records: Iterable[np.ndarray], clock_hz: int, programs: Optional[List[Span]] = None,
                dropped: int = 0) -> Trace:
    """A Trace from the loop's records plus the spans of the programs themselves."""
    spans = list(programs or []) + spans_from_records(records)
    return Trace(spans, clock_hz, dropped)
