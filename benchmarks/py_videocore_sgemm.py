"""py-videocore's SGEMM example on the emulator, against the one published figure: "8 GFLOPS".

py-videocore (Idein/nineties) ships ``examples/sgemm.py``, a hand-written SGEMM for 12
QPUs, and its README records "Achieved 8GFlops with sgemm".  That is the only published
measurement of a hand-written SGEMM on this GPU, so it is a check of the emulator's
timing model on a workload unlike GPU_FFT (on which the model is calibrated).  Facts
used, from py-videocore's ``examples/sgemm.py`` ``main()`` and README.rst (read at run
time, never copied here):

* C (96x3072) = alpha * A (96x363) @ B (363x3072) + beta * C, alpha = beta = 1, float32,
  row-major arrays, inputs ``randn`` after ``np.random.seed(0)`` in the order A, B, C;
* 12 threads on a 2 x 6 grid of C blocks (p_div = 2 row blocks of 16-row strips,
  r_div = 6 column blocks of 64-column strips);
* 14 uniforms per thread (``fill_uniforms``): the row's own address, the numbers of
  16-row and 64-column strips of the block, q, the block's addresses in A, B and C, the
  three row strides in bytes, alpha and beta as float bits, the thread index and the
  number of threads;
* GFLOPS = (2*p*q*r + 3*p*r) / seconds, with ``seconds`` the wall time around
  ``drv.execute`` (the firmware's "execute QPU" mailbox call).  GPU_FFT's gpu_fft.txt
  ("Throughput") puts the cost of that call at about 100 us, added here to the
  emulator's predicted QPU time to compare like with like.

The README names neither the board nor its V3D clock, so predictions are given at
250 MHz (Pi 1/2) and 300 MHz (Pi Zero/3).  The timing model counts V3D cycles only
(memory latency included, in cycles), so the 300 MHz figure is the same cycles over
the higher clock.

The kernel (``sgemm_gpu_code``, decorated with py-videocore's ``@qpu``) is assembled
by this project's compatibility layer ``qpu.compat.videocore``: the example's source is
executed in a fresh module namespace in which ``videocore.assembler`` is that layer and
``videocore.driver`` / ``rpi_vcsm`` are stand-ins; its ``main`` is not run.

Three runs (the kernel's timing does not depend on the data): the published case,
which gives the prediction; the same shape with beta = 0; 96x363 @ 363x1536 with
alpha = beta = 1.  C is checked against numpy in float64 each time.  Two findings of this
benchmark, both reported in its output:

* The published case's C is wrong where beta != 0 on the emulator: the kernel loads the
  old C by DMA with the extended pitch register, whose MPITCHB field is 13 bits
  (guide Table 37, p.59; qpu/isa/vpm.py), and C's pitch is 12288 bytes.  The other two
  runs are right.  The vc4asm addendum corrects the width of the store's stride field
  (Table 35, 13 -> 16 bits) but not this one: which is right on hardware is open.
* py-videocore writes every ``nop()`` as "add-ALU nop, destination r0, condition
  always", and thread 0's final count-down (``sema_down; nop(); iadd(r0, r0, -1)``)
  relies on r0 surviving it.  This benchmark found that the emulator used to give such a
  nop the addendum's "previous ALU result" write (documented for the mul ALU only) and so
  deadlocked; the emulator's add-ALU nop now writes nothing (docs/emulator.md).

Run: ``.venv/bin/python benchmarks/py_videocore_sgemm.py [PATH] [--quick] [--out FILE]``
with PATH (or $QPU_PY_VIDEOCORE) a py-videocore checkout or bare git mirror; without
one it prints that it skipped and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:         # benchmarks/ is not a package
    sys.path.insert(0, HERE)

from source_tree import is_bare_git, read_text  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "results", "py_videocore_sgemm.json")
ENV = "QPU_PY_VIDEOCORE"
EXAMPLE = "examples/sgemm.py"
KERNEL = "sgemm_gpu_code"

# examples/sgemm.py main(): the shape and the thread grid
P, Q, R = 96, 363, 3072
P_DIV, R_DIV = 2, 6
UNIFORMS_PER_THREAD = 14
PUBLISHED_GFLOPS = 8.0                   # README.rst "Records": "Achieved 8GFlops with sgemm"
MAILBOX_CALL_SECONDS = 100e-6            # hello_fft gpu_fft.txt "Throughput": ~100 us per mailbox call
CLOCKS_HZ = (250_000_000, 300_000_000)   # Pi 1/2 and Pi Zero/3 V3D clocks; the README names no board
FLOAT32_UNIT_ROUNDOFF = 2.0 ** -24
CHECK_R = 1536                           # a multiple of 64 * R_DIV whose C pitch (6144 bytes) fits MPITCHB


class PyVideocoreNotFound(Exception):
    """The path is neither a py-videocore checkout nor a bare git mirror holding examples/sgemm.py."""


class PyVideocoreSource:
    """py-videocore's files from a checkout (a plain directory) or a bare git repository.

    A bare repository (no work tree, as the mirrors this project reads) is read with
    ``git show <rev>:<path>``.
    """

    def __init__(self, root: str, rev: str = "HEAD") -> None:
        self.root = os.path.abspath(root)
        self.rev = rev
        if not os.path.isdir(self.root):
            raise PyVideocoreNotFound(f"{root}: no such directory")
        self.bare = not os.path.isfile(os.path.join(self.root, EXAMPLE))
        if self.bare and not is_bare_git(self.root):
            raise PyVideocoreNotFound(f"{root}: neither a py-videocore checkout (no {EXAMPLE}) nor a bare git "
                                      "repository")
        self.read(EXAMPLE)  # fails early, with the reason, when the example is missing

    @classmethod
    def open(cls, root: Optional[str]) -> Optional[PyVideocoreSource]:
        """The source at ``root``, or None when the path is empty, missing or holds no example."""
        if not root:
            return None
        try:
            return cls(root)
        except PyVideocoreNotFound:
            return None

    def describe(self) -> str:
        return f"{self.root} ({f'bare git repository, {self.rev}' if self.bare else 'directory'})"

    def read(self, rel: str) -> str:
        """Text of one file of the repository (``rel`` relative to its top)."""
        return read_text(self.root, rel, bare=self.bare, rev=self.rev, error=PyVideocoreNotFound)


# ----------------------------------------------------------------------------------------------
# Loading the kernel through qpu.compat.videocore
# ----------------------------------------------------------------------------------------------

def _stand_in_modules() -> Dict[str, types.ModuleType]:
    """``videocore.assembler`` = qpu.compat.videocore; ``videocore.driver`` and ``rpi_vcsm`` stubs."""
    import qpu.compat.videocore as compat

    package = types.ModuleType("videocore")
    package.__path__ = []        # a package, so that ``videocore.assembler`` imports
    driver = types.ModuleType("videocore.driver")

    class Driver:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("py-videocore's Driver is a stand-in here: use qpu.runtime.Driver")

    driver.Driver = Driver       # type: ignore[attr-defined]
    vcsm = types.ModuleType("rpi_vcsm")
    # sgemm.py's main() takes cache_mode=rpi_vcsm.CACHE_NONE as a default argument, evaluated at def time
    for i, name in enumerate(("CACHE_NONE", "CACHE_HOST", "CACHE_VC", "CACHE_BOTH")):
        setattr(vcsm, name, i)
    package.assembler = compat   # type: ignore[attr-defined]
    package.driver = driver      # type: ignore[attr-defined]
    return {"videocore": package, "videocore.assembler": compat, "videocore.driver": driver, "rpi_vcsm": vcsm}


class _StandIns:
    """Install the stand-in modules in sys.modules for the ``with`` block, then restore what was there."""

    def __enter__(self) -> None:
        self._mods = _stand_in_modules()
        self._saved = {name: sys.modules.get(name) for name in self._mods}
        sys.modules.update(self._mods)

    def __exit__(self, *exc: Any) -> None:
        for name, old in self._saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def load_kernel(source_text: str, filename: str, name: str = KERNEL) -> Callable[..., Any]:
    """The ``@qpu`` kernel ``name`` of a py-videocore example, defined through qpu.compat.videocore.

    The example's text runs in a fresh module namespace (``__name__`` is not
    ``"__main__"``, so its ``main()`` does not run).
    """
    namespace: Dict[str, Any] = {"__name__": "py_videocore_example", "__file__": filename}
    with _StandIns():
        exec(compile(source_text, filename, "exec"), namespace)
    kernel = namespace.get(name)
    if not callable(kernel):
        raise PyVideocoreNotFound(f"{filename} defines no kernel {name!r}")
    return kernel  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------
# The example's data and uniforms
# ----------------------------------------------------------------------------------------------

def example_inputs(p: int = P, q: int = Q, r: int = R) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A, B, C as the example makes them: randn after seed 0, in the order A, B, C."""
    rng = np.random.RandomState(0)
    a = rng.randn(p, q).astype(np.float32)
    b = rng.randn(q, r).astype(np.float32)
    c = rng.randn(p, r).astype(np.float32)
    return a, b, c


def thread_blocks(p: int, r: int, p_div: int = P_DIV, r_div: int = R_DIV) -> List[Tuple[int, int, int, int]]:
    """(first row, 16-row strips, first column, 64-column strips) of each thread's block of C.

    Threads go row block by row block; the last block in each direction takes what is left.
    """
    h = -(-p // (16 * p_div))
    w = -(-r // (64 * r_div))
    blocks = []
    for i in range(p_div):
        for j in range(r_div):
            rows = h if i != p_div - 1 else (p - i * h * 16) // 16
            cols = w if j != r_div - 1 else (r - j * w * 64) // 64
            blocks.append((i * h * 16, rows, j * w * 64, cols))
    return blocks


def float_bits(x: float) -> int:
    return int(np.array(x, dtype=np.float32).view(np.uint32))


def fill_uniforms(unif: Any, a: Any, b: Any, c: Any, alpha: float, beta: float, p_div: int = P_DIV,
                  r_div: int = R_DIV) -> None:
    """Write the kernel's uniforms into ``unif`` (an (n_threads, 14) uint32 GPU array), one row per thread.

    Word 0 is the row's own address: the kernel reads it first and later points
    ``uniforms_address`` at word 10 (alpha, beta, thread index, thread count).
    """
    p, q = a.shape
    r = b.shape[1]
    blocks = thread_blocks(p, r, p_div, r_div)
    n = len(blocks)
    if unif.shape != (n, UNIFORMS_PER_THREAD):
        raise ValueError(f"the uniforms array must have shape ({n}, {UNIFORMS_PER_THREAD}), not {unif.shape}")
    for t, (row, strips, col, col_strips) in enumerate(blocks):
        unif[t] = [unif.addresses()[t, 0], strips, q, col_strips,
                   a.addresses()[row, 0], b.addresses()[0, col], c.addresses()[row, col],
                   a.strides[0], b.strides[0], c.strides[0],
                   float_bits(alpha), float_bits(beta), t, n]


def gflops(seconds: float, p: int = P, q: int = Q, r: int = R) -> float:
    """The example's figure: (2pqr + 3pr) floating-point operations per second, in units of 1e9."""
    return (2 * p * q * r + 3 * p * r) / seconds * 1e-9


# ----------------------------------------------------------------------------------------------
# Running it
# ----------------------------------------------------------------------------------------------

def _run_on_emulator(prog: Any, a0: np.ndarray, b0: np.ndarray, c0: np.ndarray,
                     alpha: float, beta: float, strict: bool) -> Tuple[Any, np.ndarray]:
    from qpu.runtime import Driver

    with Driver(backend="emulator", strict=strict) as drv:
        c = drv.copy(c0)
        a = drv.copy(a0)
        b = drv.copy(b0)
        unif = drv.alloc((P_DIV * R_DIV, UNIFORMS_PER_THREAD), np.uint32)
        fill_uniforms(unif, a, b, c, alpha, beta)
        code = drv.program(prog)
        report = drv.execute(P_DIV * R_DIV, code, unif)
        return report, np.array(c)


def check_result(a: np.ndarray, b: np.ndarray, c0: np.ndarray, c: np.ndarray, alpha: float,
                 beta: float) -> Dict[str, Any]:
    """C against a float64 reference, with a float32 error bound for sums of q products.

    Each product rounds once and q + 1 additions follow (the beta term last): the
    classic bound |error| <= (q + 2) u sum|terms| (u = 2**-24), doubled because the
    QPU's float units are not documented to round to nearest.
    """
    exact = alpha * (a.astype(np.float64) @ b.astype(np.float64)) + beta * c0.astype(np.float64)
    scale = abs(alpha) * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)) \
        + abs(beta) * np.abs(c0).astype(np.float64)
    q = a.shape[1]
    bound = 2 * (q + 2) * FLOAT32_UNIT_ROUNDOFF
    ratio = np.abs(c.astype(np.float64) - exact) / np.maximum(scale, 1e-30)
    return {"correct": bool(np.all(np.isfinite(c)) and float(ratio.max()) <= bound),
            "max_error_over_sum_abs_terms": float(ratio.max()), "bound": bound,
            "max_abs_error": float(np.max(np.abs(c - exact)))}


def _findings(report: Any) -> List[str]:
    job = getattr(report, "job", None)
    out = []
    for f in getattr(job, "hazards", None) or []:
        where = f"{f.location}" if f.location is not None else f"instruction {f.index}"
        out.append(f"{f.level} [{f.rule}] x{f.count} at {where}: {f.message.splitlines()[0]}")
    return out


def mpitchb_max() -> int:
    """Largest pitch of the VCD DMA load extended stride setup's MPITCHB field (qpu/isa/vpm.py:
    bits 12:0 per guide Table 37, p.59), through which the kernel loads C."""
    from qpu.isa.vpm import SetupFormat, field_map

    return field_map(SetupFormat.VDR_STRIDE)["mpitchb"].max_value


def c_pitch_fits(r: int) -> bool:
    """Whether C's row pitch (4r bytes) fits MPITCHB."""
    return 4 * r <= mpitchb_max()


def run_case(prog: Any, p: int, q: int, r: int, alpha: float, beta: float, strict: bool) -> Dict[str, Any]:
    """One run of the kernel on the example's kind of data; the report and the check of C."""
    a, b, c0 = example_inputs(p, q, r)
    report, c = _run_on_emulator(prog, a, b, c0, alpha, beta, strict)
    check = check_result(a, b, c0, c, alpha, beta)
    check.update({"shape": f"{p}x{q} @ {q}x{r}", "alpha": alpha, "beta": beta, "c_pitch_fits": c_pitch_fits(r)})
    return {"report": report, "check": check}


def _first_run(prog: Any, notes: List[str]) -> Tuple[Dict[str, Any], bool]:
    """The published case, strict; a rule violation (not a deadlock: that is an error) gets a
    lenient rerun and a note.  Returns (case, strict)."""
    from qpu.emulator.errors import DeadlockError, RuleViolation

    try:
        return run_case(prog, P, Q, R, 1.0, 1.0, strict=True), True
    except DeadlockError:
        raise
    except RuleViolation as exc:
        notes.append(f"strict mode: {str(exc).splitlines()[0]}; rerun lenient")
        return run_case(prog, P, Q, R, 1.0, 1.0, strict=False), False


def run_example(source: PyVideocoreSource) -> Dict[str, Any]:
    """Assemble, run and check the example; the prediction and the comparison as a JSON-ready dict.

    Three runs: the published case (the timing); the same shape with beta = 0, whose C
    does not depend on the C loaded; and 96x363 @ 363x1536 with alpha = beta = 1, whose C
    pitch fits the 13-bit DMA load pitch (the published shape's 12288 bytes do not:
    ``c_pitch_fits``, so its C is not expected to be right; the kernel's timing does not
    depend on the data).
    """
    from qpu.compat.videocore import program as compat_program

    kernel = load_kernel(source.read(EXAMPLE), os.path.join(source.root, EXAMPLE))
    notes: List[str] = []
    start = time.perf_counter()
    prog = compat_program(kernel)
    main_case, strict = _first_run(prog, notes)
    report = main_case["report"]
    checks = [main_case["check"],
              run_case(prog, P, Q, R, 1.0, 0.0, strict)["check"],
              run_case(prog, P, Q, CHECK_R, 1.0, 1.0, strict)["check"]]
    wall = time.perf_counter() - start
    if not c_pitch_fits(R):
        notes.append(f"the published shape's C pitch ({4 * R} bytes) exceeds the DMA load's MPITCHB field "
                     f"(bits 12:0, guide Table 37 p.59): the emulator loads the old C with pitch "
                     f"{4 * R & mpitchb_max()} bytes, so C is wrong where beta != 0.  The vc4asm addendum widens "
                     "the VDW store stride of Table 35 from 13 to 16 bits and says nothing of Table 37; if the "
                     "load's field is as wide on hardware, the example's C was right on the Pi")
    per_clock: Dict[str, Dict[str, float]] = {}
    for hz in CLOCKS_HZ:
        qpu_s = report.cycles / hz
        with_call = qpu_s + MAILBOX_CALL_SECONDS
        per_clock[f"{hz // 1_000_000}MHz"] = {
            "predicted_seconds": qpu_s, "predicted_seconds_with_mailbox": with_call,
            "predicted_gflops": gflops(with_call), "predicted_gflops_qpu_only": gflops(qpu_s),
            "ratio_to_published": gflops(with_call) / PUBLISHED_GFLOPS}
    stalls = {k: int(v) for k, v in sorted(report.stalls.items(), key=lambda kv: -kv[1]) if v}
    at250, at300 = per_clock["250MHz"], per_clock["300MHz"]
    verdicts = ", ".join(f"{c['shape']} beta={c['beta']:g} {'correct' if c['correct'] else 'WRONG'}"
                         for c in checks)
    summary = (f"{P}x{Q} @ {Q}x{R}, 12 QPUs: {report.instructions} instr, {report.cycles} cycles; predicted "
               f"{at250['predicted_gflops']:.2f} GFLOPS at 250 MHz / {at300['predicted_gflops']:.2f} at 300 MHz "
               f"(with the 100 us mailbox call) vs published {PUBLISHED_GFLOPS:g} "
               f"(ratio {at250['ratio_to_published']:.2f} / {at300['ratio_to_published']:.2f}); C: {verdicts}"
               )
    return {
        "benchmark": "py_videocore_sgemm", "source": source.describe(), "kernel": f"{EXAMPLE}:{KERNEL}",
        "shape": {"p": P, "q": Q, "r": R, "threads": P_DIV * R_DIV}, "published_gflops": PUBLISHED_GFLOPS,
        "published_board": "not named in the README",
        "gflops_formula": "(2*p*q*r + 3*p*r) / seconds, seconds = predicted QPU time + 100 us mailbox call "
                          "(gpu_fft.txt 'Throughput'), as the example times drv.execute",
        "instructions": report.instructions, "cycles": report.cycles, "program_words": len(prog.words),
        "per_clock": per_clock, "stalls": stalls,
        "dual_issue_rate": getattr(report.job, "dual_issue_rate", None),
        "strict": strict, "notes": notes, "findings": _findings(report),
        "checks": checks, "emulator_wall_seconds": wall, "summary": summary,
    }


def run(quick: bool) -> Dict[str, Any]:
    """For benchmarks/run_all.py: the example's one shape either way (seconds on the emulator).

    Reads py-videocore from $QPU_PY_VIDEOCORE; without it the result says it skipped."""
    path = os.environ.get(ENV, "")
    source = PyVideocoreSource.open(path)
    if source is None:
        why = f"set {ENV} to a py-videocore checkout or mirror" if not path else f"no {EXAMPLE} at {path!r}"
        return {"skipped": why, "summary": f"skipped ({why})"}
    result = run_example(source)
    result["quick"] = quick
    return result


def _print(result: Dict[str, Any]) -> None:
    print(f"py-videocore {result['kernel']} from {result['source']}")
    print(f"  {result['shape']['p']}x{result['shape']['q']} @ {result['shape']['q']}x{result['shape']['r']} on "
          f"{result['shape']['threads']} QPUs: {result['program_words']} instruction words, "
          f"{result['instructions']} executed, {result['cycles']} cycles")
    for clock, v in result["per_clock"].items():
        print(f"  at {clock}: {v['predicted_seconds'] * 1e3:.3f} ms on the QPUs, "
              f"{v['predicted_seconds_with_mailbox'] * 1e3:.3f} ms with the 100 us mailbox call -> "
              f"{v['predicted_gflops']:.2f} GFLOPS ({v['predicted_gflops_qpu_only']:.2f} QPU time only); "
              f"predicted / published {PUBLISHED_GFLOPS:g} GFLOPS = {v['ratio_to_published']:.2f}")
    print("  (the README names no board: 250 MHz is a Pi 1/2's V3D clock, 300 MHz a Pi Zero/3's)")
    print("  stall cycles, all QPUs: " + (", ".join(f"{k} {v}" for k, v in result["stalls"].items()) or "none"))
    for ch in result["checks"]:
        print(f"  C of {ch['shape']}, alpha={ch['alpha']:g} beta={ch['beta']:g}: "
              f"{'correct' if ch['correct'] else 'WRONG'}, max |error| / sum|terms| = "
              f"{ch['max_error_over_sum_abs_terms']:.3g} (bound {ch['bound']:.3g}), "
              f"max |error| {ch['max_abs_error']:.3g}")
    for note in result["notes"]:
        print(f"  note: {note}")
    for f in result["findings"]:
        print(f"  finding: {f}")
    print(f"  emulated in {result['emulator_wall_seconds']:.1f} s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=None,
                        help=f"py-videocore checkout or bare git mirror (default ${ENV})")
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry: the shape is the same")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    path = args.path if args.path is not None else os.environ.get(ENV, "")
    source = PyVideocoreSource.open(path)
    if source is None:
        why = f"set {ENV} or pass a path" if not path else f"no {EXAMPLE} at {path!r}"
        print(f"py_videocore_sgemm: skipped ({why})")
        return 0
    result = run_example(source)
    result["quick"] = args.quick
    _print(result)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")
    expected = [c for c in result["checks"] if c["c_pitch_fits"] or c["beta"] == 0]
    return 0 if all(c["correct"] for c in expected) else 1


if __name__ == "__main__":
    sys.exit(main())
