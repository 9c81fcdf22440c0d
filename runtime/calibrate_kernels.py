"""The micro-benchmarks ``qpu calibrate`` runs: one loop per timing mechanism, loop count as a uniform.

Each benchmark is a program (or two) in assembly text (docs/syntax.md) whose loop
body exercises one mechanism of the timing model (qpu.emulator.timing) as directly
as possible.  The loop count ``n`` is the first uniform, so the same code runs at
two counts and the *slope* (time per iteration) cancels every fixed cost: the
mailbox round trip, the job launch and the program's set-up and end.

==================  ======  ==============================================================
benchmark           QPUs    loop body (one iteration)
==================  ======  ==============================================================
alu                 1       8 instructions of fadd+fmul (no stalls): cycles per instruction
sfu                 1       three SFU ops 3 instructions apart (guide p.23: result in r4
                            after two more instructions): compared only, not fitted
tmu_latency         1       one TMU0 request, then ldtmu0 at once: waits the TMU latency
tmu_throughput      12      4 TMU0 requests back to back, then 4 ldtmu0; two QPUs of each
                            slice share each TMU (guide p.39-40): the TMU's issue time
vpm_read            1       a 1-row VPM read setup, then the read at once (guide p.56:
                            the data comes a minimum of three instructions later)
dma_load_r{1,4,16}  1       VCD load of r rows of 64 bytes, then vr_wait
dma_store_r{1,4,16} 1       VDW store of r rows of 64 bytes, then vw_wait
semaphore           2       ping-pong: QPU 0 releases 0 and acquires 1, QPU 1 the reverse
mutex               1       acquire (read mutex), one instruction, release (write mutex)
mutex_x4            4       the same on 4 QPUs contending: compared only, not fitted
==================  ======  ==============================================================

Not measured: programs with two threads.  The firmware's execute-QPU call starts
general-purpose programs, and only fragment shaders may be threadable (guide p.21:
"The QPU can only run two threads for programs that are marked as threadable"), so
TMU latency hiding by thread switching cannot be timed this way, and neither can
``thread_switch_cycles``.

The TMU benchmarks read the same 64 bytes over and over: they measure the TMU's
cache-hit latency, which is what the model's single latency stands for.
"""

from __future__ import annotations

from typing import Callable, Dict, List, NamedTuple, Tuple

from qpu.macros import dma_load_setup, dma_store_setup, vpm_read_setup, vpm_write_setup

# Program end: a host interrupt (the firmware's job end, as GPU_FFT and py-videocore do),
# then thrend and its two delay slots (guide p.21-22).
END = """
    mov host_int, 1
    nop ; thrend
    nop
    nop
"""

# The loop frame every benchmark shares: ra0 counts down from the first uniform; the flags
# of the decrement decide the branch (brr has three delay slots, guide p.34).
LOOP_TOP = """
loop:
    sub.setf ra0, ra0, 1
"""


def _loop(prologue: str, body: str, delay: str = "nop\nnop\nnop") -> str:
    # a prologue of at least one instruction: ra0 may not be read right after its write (guide p.18)
    return ("mov ra0, unif\n" + (prologue or "nop") + LOOP_TOP + body + "\nbrr.anynz -, loop\n" + delay + "\n"
            + END)


ALU = _loop("mov r1, 1.0\nmov r0, 0", """
    fadd r0, r0, r1 ; fmul r2, r1, r1
    fadd r0, r0, r1 ; fmul r2, r1, r1
    fadd r0, r0, r1 ; fmul r2, r1, r1
""", """
    fadd r0, r0, r1 ; fmul r2, r1, r1
    fadd r0, r0, r1 ; fmul r2, r1, r1
    fadd r0, r0, r1 ; fmul r2, r1, r1
""")

# SFU writes 3 instructions apart: the next SFU write (or an ldtmu) may not come within two
# instructions of one (guide p.23; rule r4-write-after-sfu).
SFU = _loop("mov r1, 2.0", """
    mov sfu_recip, r1
    nop
    nop
    mov sfu_recipsqrt, r1
    nop
    nop
""", """
    mov sfu_log, r1
    nop
    nop
""")

_TMU_PROLOGUE = """
    shl r0, elem_num, 2
    add r2, unif, r0
"""

TMU_LATENCY = _loop(_TMU_PROLOGUE, """
    mov tmu0_s, r2
    nop ; ldtmu0
""")

# Four requests outstanding at most (the vc4asm addendum found more unreliable).
TMU_THROUGHPUT = _loop(_TMU_PROLOGUE, """
    mov tmu0_s, r2
    mov tmu0_s, r2
    mov tmu0_s, r2
    mov tmu0_s, r2
    nop ; ldtmu0
    nop ; ldtmu0
    nop ; ldtmu0
""", """
    nop ; ldtmu0
    nop
    nop
""")

VPM_READ = _loop("""
    mov vw_setup, unif
    mov ra1, unif
    mov vpm, elem_num
""", """
    mov vr_setup, ra1
    mov r0, vpm
""")

DMA_LOAD = _loop("""
    mov ra1, unif
    mov ra2, unif
""", """
    mov vr_setup, ra1
    mov vr_addr, ra2
    mov -, vr_wait
""")

# The VPM rows a store reads must have been written (rule undefined-value): 16 rows first.
DMA_STORE = _loop("""
    mov vw_setup, unif
    mov ra1, unif
    mov ra2, unif
""" + "    mov vpm, elem_num\n" * 16, """
    mov vw_setup, ra1
    mov vw_addr, ra2
    mov -, vw_wait
""")

SEMAPHORE_PING = _loop("", """
    srel 0
    sacq 1
""")

SEMAPHORE_PONG = _loop("", """
    sacq 0
    srel 1
""")

MUTEX = _loop("", """
    mov r0, mutex
    nop
    mov mutex, r0
""")


class Buffers(NamedTuple):
    """Bus addresses of the memory the benchmarks read and write (16 rows of 64 bytes each)."""

    source: int
    target: int


Uniforms = Callable[[int, Buffers], List[List[int]]]


class Benchmark(NamedTuple):
    """One micro-benchmark: its programs, which QPU runs which, and its uniforms for ``n`` loops."""

    name: str
    description: str
    sources: Tuple[str, ...]
    programs: Tuple[int, ...]          # index into ``sources`` for each QPU
    uniforms: Uniforms                 # (n, buffers) -> one uniform list per QPU
    fits: Tuple[str, ...]              # timing parameters it calibrates (empty: compared only)
    sizes: Tuple[int, int] = (8, 24)   # loop counts whose difference gives the slope

    @property
    def num_qpus(self) -> int:
        return len(self.programs)


def _same(num: int, extra: Callable[[Buffers], List[int]] = lambda b: []) -> Uniforms:
    return lambda n, b: [[n] + extra(b) for _ in range(num)]


def _dma_load(rows: int) -> Benchmark:
    setup = dma_load_setup(nrows=rows, ncols=16, y=0, mpitch=3)          # 64-byte rows, 64 bytes apart
    return Benchmark(f"dma_load_r{rows}", f"VCD DMA load of {rows} row(s) of 64 bytes, then vr_wait",
                     (DMA_LOAD,), (0,), _same(1, lambda b: [setup, b.source]),
                     ("vdr_setup_cycles", "vdr_bytes_per_cycle"))


def _dma_store(rows: int) -> Benchmark:
    write = vpm_write_setup(y=0)
    setup = dma_store_setup(nrows=rows, ncols=16, y=0)
    return Benchmark(f"dma_store_r{rows}", f"VDW DMA store of {rows} row(s) of 64 bytes, then vw_wait",
                     (DMA_STORE,), (0,), _same(1, lambda b: [write, setup, b.target]),
                     ("vdw_setup_cycles", "vdw_bytes_per_cycle"))


def benchmarks() -> List[Benchmark]:
    """Every benchmark, in the order the fit uses them."""
    tmu = lambda b: [b.source]  # noqa: E731
    return [
        Benchmark("alu", "8 dual-issue float instructions per iteration", (ALU,), (0,), _same(1),
                  ("cycles_per_instruction",)),
        Benchmark("sfu", "3 SFU operations (recip, recipsqrt, log) 3 instructions apart", (SFU,), (0,), _same(1),
                  ()),
        Benchmark("tmu_latency", "a TMU0 load waited for at once (1 QPU, 1 thread)", (TMU_LATENCY,), (0,),
                  _same(1, tmu), ("tmu_latency",)),
        Benchmark("tmu_throughput", "4 TMU0 loads in flight on each of 12 QPUs (1 thread)", (TMU_THROUGHPUT,),
                  (0,) * 12, _same(12, tmu), ("tmu_issue_cycles",)),
        Benchmark("vpm_read", "a 1-row VPM read setup, read at once", (VPM_READ,), (0,),
                  _same(1, lambda b: [vpm_write_setup(y=0), vpm_read_setup(1, y=0)]), ("vpm_read_latency",)),
        _dma_load(1), _dma_load(4), _dma_load(16),
        _dma_store(1), _dma_store(4), _dma_store(16),
        Benchmark("semaphore", "semaphore ping-pong between 2 QPUs", (SEMAPHORE_PING, SEMAPHORE_PONG), (0, 1),
                  _same(2), ("semaphore_cycles",)),
        Benchmark("mutex", "mutex acquire and release on 1 QPU", (MUTEX,), (0,), _same(1), ("mutex_cycles",)),
        Benchmark("mutex_x4", "mutex acquire and release on 4 contending QPUs", (MUTEX,), (0,) * 4, _same(4), ()),
    ]


def by_name() -> Dict[str, Benchmark]:
    return {b.name: b for b in benchmarks()}
