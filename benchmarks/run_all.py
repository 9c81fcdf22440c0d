"""``make bench``: run every benchmark side by side in one process and record the results.

Each benchmark module has ``run(quick: bool) -> dict``.  Results go to
``benchmarks/results/all.json`` and a summary table; the measured section of
docs/emulator.md (between the ``<!-- bench:begin -->`` and ``<!-- bench:end -->``
markers) is regenerated from them, so the documented numbers are the last run's.

Speed goals are reported as ratios measured in the same run (e.g. emulated
instructions per second against the goal, checks on against checks off), never as
assertions: this machine is shared and noisy.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--no-docs]

The GPU_FFT calibration runs when QPU_USERLAND points at a raspberrypi/userland
checkout, py-videocore's SGEMM example when QPU_PY_VIDEOCORE points at a py-videocore
checkout or mirror (their files are read at run time, never copied here).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "emulator.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# name -> module in benchmarks/
BENCHMARKS = {
    "emulator_speed": "emulator_speed",
    "sgemm": "sgemm_bench",
    "gpu_fft": "calibrate_gpu_fft",
    "py_videocore_sgemm": "py_videocore_sgemm",
}


def _load(module: str) -> Optional[Callable[[bool], Dict[str, Any]]]:
    sys.path.insert(0, str(HERE))
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        print(f"  ({module}: not available: {exc})")
        return None
    finally:
        sys.path.pop(0)
    return getattr(mod, "run", None)


def _table(results: Dict[str, Any]) -> List[str]:
    lines = ["| benchmark | result |", "|---|---|"]
    for name, res in results.items():
        if not isinstance(res, dict):
            continue
        summary = res.get("summary")
        if summary is None:
            summary = ", ".join(f"{k}={v}" for k, v in res.items() if isinstance(v, (int, float, str)))[:300]
        lines.append(f"| {name} | {summary} |")
    return lines


def update_doc(results: Dict[str, Any], meta: Dict[str, Any]) -> bool:
    if not DOC.is_file():
        return False
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        return False
    body = [BEGIN, "",
            f"Last `make bench`: {meta['date']} on {meta['machine']} (Python {meta['python']}, "
            f"{'numba ' + meta['numba'] if meta['numba'] else 'no numba'}); shared machine, numbers are indicative.",
            ""] + _table(results)
    for res in results.values():
        extra = res.get("markdown") if isinstance(res, dict) else None
        if extra:
            body += ["", extra.rstrip()]
    body += ["", END]
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + "\n".join(body) + text[end:])
    return True


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast look")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/emulator.md")
    args = parser.parse_args(argv)

    try:
        import numba
        numba_version = numba.__version__
    except ImportError:
        numba_version = ""
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()} ({os.cpu_count()} cpus)",
            "python": platform.python_version(), "numba": numba_version, "quick": args.quick}
    results: Dict[str, Any] = {}
    failures = 0
    for name, module in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}")
        run = _load(module)
        if run is None:
            continue
        t0 = time.perf_counter()
        try:
            res = run(args.quick)
        except Exception as exc:  # a broken benchmark must not hide the others' results
            print(f"  FAILED: {type(exc).__name__}: {exc}")
            results[name] = {"summary": f"FAILED: {type(exc).__name__}: {exc}"}
            failures += 1
            continue
        if res is None:
            continue
        res.setdefault("wall_seconds", round(time.perf_counter() - t0, 1))
        results[name] = res
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "all.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    print()
    print("\n".join(_table(results)))
    if not args.no_docs and not args.only and update_doc(results, meta):
        print(f"\n{DOC.relative_to(HERE.parent)} updated")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
