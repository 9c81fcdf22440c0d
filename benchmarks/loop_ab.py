"""Paired speed comparison of two versions of the emulator's compiled loop (not a test).

On a shared machine two runs minutes apart can differ by 2x for reasons that have nothing
to do with the code, so a change to emulator/core.py (or the modules compiled into its loop)
is judged in one process: this checkout's loop (A) and the loop of another checkout (B,
e.g. a ``git worktree`` holding the change) run the same SGEMM job in turn, A B then B A,
and each pair gives a ratio.  Only the loop calls are timed.  The two loops share the job's
state arrays, so B must keep this checkout's layout (emulator/layout.py); the script checks
that and that both compute the same matrix.  B's loop is compiled on first use (about 2
minutes; numba caches it next to B's sources).

Run: ``.venv/bin/python benchmarks/loop_ab.py /path/to/other/checkout [pairs]``
"""

from __future__ import annotations

import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np
from emulator_speed import SGEMM_SHAPE

ALIAS = "qpu_loop_b"         # package name B's emulator is imported under


def load_other(checkout: Path) -> Any:
    """Import the other checkout's ``emulator`` package as ``qpu_loop_b.emulator`` (its own
    modules, this checkout's ``qpu.isa``) and return its core module."""
    emulator = checkout / "emulator"
    if not (emulator / "core.py").is_file():
        raise SystemExit(f"{checkout}: no emulator/core.py (give the root of a checkout of this project)")
    root = Path(tempfile.mkdtemp(prefix="loop_ab_"))
    (root / ALIAS).mkdir()
    (root / ALIAS / "__init__.py").write_text("")
    (root / ALIAS / "emulator").symlink_to(emulator.resolve())
    sys.path.insert(0, str(root))
    return importlib.import_module(f"{ALIAS}.emulator.core")


def check_layout(other_core: Any) -> None:
    """The two loops run on the same state arrays: every layout constant must agree."""
    from qpu.emulator import layout as mine
    theirs = importlib.import_module(f"{ALIAS}.emulator.layout")
    differ = [name for name in dir(mine) if name.isupper() and not name.startswith("_")
              and getattr(theirs, name, None) != getattr(mine, name)
              and isinstance(getattr(mine, name), int)]
    if differ:
        raise SystemExit("the other checkout's emulator/layout.py differs (" + ", ".join(differ[:8])
                         + "): its loop cannot run on this checkout's state arrays")


def compare(other_core: Any, pairs: int) -> Dict[str, List[float]]:
    """``pairs`` pairs of SGEMM runs, A then B and B then A alternately; M instructions/s."""
    import qpu.emulator.v3d as v3d_module
    from qpu.emulator import core as my_core
    from qpu.kernels.sgemm import sgemm
    from qpu.runtime import Driver

    loops: Dict[str, Callable[..., int]] = {"A": my_core.run_loop, "B": other_core.run_loop}
    current = ["A"]
    spent = {"A": 0.0, "B": 0.0}

    def timed_loop(*args: Any) -> int:
        t = time.perf_counter()
        try:
            return loops[current[0]](*args)
        finally:
            spent[current[0]] += time.perf_counter() - t

    v3d_module.run_loop = timed_loop
    m, k, n = SGEMM_SHAPE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    rates: Dict[str, List[float]] = {"A": [], "B": []}
    results: Dict[str, bytes] = {}
    with Driver(backend="emulator") as drv:
        for who in "AB":      # compile or load both loops before timing anything
            current[0] = who
            sgemm(drv, np.ones((16, 4), np.float32), np.ones((4, 64), np.float32), n_qpus=1)
        for p in range(pairs):
            for who in ("AB" if p % 2 == 0 else "BA"):
                current[0] = who
                spent[who] = 0.0
                c, report = sgemm(drv, a, b, n_qpus=12)
                rates[who].append(report.instructions / spent[who] / 1e6)
                results.setdefault(who, c.tobytes())
    if results["A"] != results["B"]:
        raise SystemExit("the two loops computed different matrices")
    return rates


def main(argv: List[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    other = load_other(Path(argv[0]))
    check_layout(other)
    pairs = int(argv[1]) if len(argv) > 1 else 16
    rates = compare(other, pairs)
    for who, label in (("A", "this checkout"), ("B", argv[0])):
        v = rates[who]
        print(f"{who} ({label}): best {max(v):.2f} M instr/s, median {statistics.median(v):.2f}; "
              + " ".join(f"{x:.2f}" for x in v))
    ratios = [b / a for a, b in zip(rates["A"], rates["B"])]
    print(f"B / A: median of the paired ratios {statistics.median(ratios):.3f}, "
          f"best against best {max(rates['B']) / max(rates['A']):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
