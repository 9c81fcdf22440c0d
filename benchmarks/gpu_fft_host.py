"""GPU_FFT 3.0's host side, re-implemented in Python so its unmodified QPU shaders run on the emulator.

GPU_FFT (Andrew Holme, 2015; raspberrypi/userland,
``host_applications/linux/apps/hello_pi/hello_fft``) is a set of QPU programs proven on
real Pis, with published run times and accuracy (``gpu_fft.txt``).  This module does
what its C host code does -- allocate one block of GPU memory, lay out data, code,
twiddle factors, uniforms and the control list in it, launch 8 QPUs -- but over the
emulated firmware mailbox (qpu.emulator.firmware) and the emulated V3D
(qpu.emulator.v3d).  Nothing of GPU_FFT is stored in this repository: the shaders are
read at run time from a userland checkout or from a bare git mirror of it
(``UserlandSource``).

Facts used, all from hello_fft in userland (file named in brackets):

* 8 QPUs run every transform; QPU ``q`` gets instance number ``q``; QPU 0 is the
  master of the semaphore handshakes (gpu_fft.h, qasm/gpu_fft.qinc).
* Shader per length: ``hex/shader_<N>.hex`` with N = 256, 512, 1k ... 4096k; 2, 3 or
  4 passes between ping-pong buffers for log2 N = 8-11, 12-16, 17-22 (gpu_fft_twiddles.c).
* One allocation, 4096-byte aligned, flags 0xC on a Pi 1 (VideoCore-L2-cached alias
  0x40000000), laid out as: a 4096-byte header page (ARM-side bookkeeping only), the
  data buffers, the code, the twiddles, the uniforms, 8 control-list pairs (gpu_fft.c,
  gpu_fft_base.c).
* Each data buffer is the transform's 8N bytes rounded up to the next multiple of
  4096 *plus* a guard: ``(8N | 4095) + 1`` bytes.  The first ``jobs`` buffers hold the
  inputs, the next ``jobs`` the other half of each ping-pong pair; the result is in
  place after an even number of passes, in the second half after an odd one
  (gpu_fft.c, gpu_fft.txt "Data format").
* Twiddles: a block of "shared" tables followed by one "unique" table per QPU, each
  table a whole number of 16-entry blocks of complex float32; what each table
  contains is documented at ``twiddle_tables`` (gpu_fft_twiddles.c).
* Uniforms per QPU: shared-twiddle address, that QPU's unique-twiddle address, the
  instance number, then an (input, output) address pair per transform, then 0 (ends
  the shader's job loop) and 1 for QPU 0 / 0 for the others (the value the shader
  writes to ``host_int`` on exit: only the master raises the host interrupt) (gpu_fft.c;
  qasm/gpu_fft_256.qasm ``:loop`` and ``exit``).
* Launch: when ``jobs << log2_N <= 5 << 12`` (about 1 ms of work) the ARM pokes the
  V3D's user-program request registers directly and busy-waits; otherwise it calls
  the firmware's "execute QPU" with noflush=1 and a 2000 ms timeout, which costs about
  100 us per call (gpu_fft.c, gpu_fft_base.c, gpu_fft.txt "Throughput").
* Direction: forward transforms use e^(-2 pi i nk/N), inverse e^(+2 pi i nk/N); the
  output is not scaled (gpu_fft_twiddles.c, gpu_fft.txt "Accuracy").

The emulator has no model of the V3D's register file, so the direct-register launch
hands the same 8 (uniforms, code) pairs to ``V3D.execute`` through a control list
written in the message area that GPU_FFT always reserves, after clearing the V3D's
caches as the register pokes do (``V3D.clear_caches``); the ARM's time is
``HostCosts``.  On a Pi 1 the ARM reaches memory through the VideoCore L2, so what
hello_fft writes (shader, twiddles, uniforms, input) is in that cache when the QPUs
start (``EmulatedPi.arm_wrote``).
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:     # benchmarks/ is not a package
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from source_tree import is_bare_git, read_text  # noqa: E402

HELLO_FFT_DIR = "host_applications/linux/apps/hello_pi/hello_fft"

NUM_QPUS = 8                 # gpu_fft.h GPU_FFT_QPUS
FORWARD = 0                  # gpu_fft.h GPU_FFT_FWD
INVERSE = 1                  # gpu_fft.h GPU_FFT_REV
MIN_LOG2_N, MAX_LOG2_N = 8, 22
BUSY_WAIT_LIMIT = 5 << 12    # gpu_fft.c: points per batch below which the ARM launches directly
MAILBOX_TIMEOUT_MS = 2000    # gpu_fft_base.c
MAILBOX_NOFLUSH = 1          # gpu_fft_base.c
HEADER_BYTES = 4096          # gpu_fft.c: ARM-side header page at the start of the block
COMPLEX_BYTES = 8            # struct GPU_FFT_COMPLEX {float re, im}
BLOCK_ENTRIES = 16           # twiddle tables are whole 16-entry (one SIMD vector) blocks
# Allocation flags GPU_FFT uses on a Pi 1 with the VideoCore L2 (gpu_fft_base.c): bits 3:2 = 3,
# the 0x40000000 alias that allocates in the V3D's L2 cache.
PI1_MEM_FLAGS = 0xC
# The ARM's 100 us per mailbox call: gpu_fft.txt "Throughput".
MAILBOX_CALL_SECONDS = 100e-6
# The ARM's direct launch (gpu_fft_base.c gpu_fft_base_exec_direct): 22 writes to V3D registers
# (IRQ and cache control, error/count reset, 8 x 2 queue writes) and the poll that sees the job
# done, plus the two clock_gettime calls around it.  Unpublished: an estimate of ~0.1 us per
# uncached peripheral access on the Pi 1's ARM, i.e. about 3 us (not fitted).
DIRECT_LAUNCH_SECONDS = 3e-6


class UserlandNotFound(Exception):
    """The path is not a userland checkout or mirror holding hello_fft."""


# ----------------------------------------------------------------------------------------------
# Reading GPU_FFT from a userland checkout or a bare git mirror
# ----------------------------------------------------------------------------------------------

class UserlandSource:
    """The hello_fft files of a userland tree: a plain directory or a bare git repository.

    A bare repository (no work tree, as the mirrors this project reads) is read with
    ``git show <rev>:<path>``.  ``root`` may also be the hello_fft directory itself.
    """

    def __init__(self, root: str, rev: str = "HEAD") -> None:
        self.root = os.path.abspath(root)
        self.rev = rev
        if not os.path.isdir(self.root):
            raise UserlandNotFound(f"{root}: no such directory")
        self._git = False
        self._prefix = ""
        if os.path.isfile(os.path.join(self.root, "gpu_fft.txt")):
            self._prefix = ""                                  # the hello_fft directory itself
        elif os.path.isfile(os.path.join(self.root, HELLO_FFT_DIR, "gpu_fft.txt")):
            self._prefix = HELLO_FFT_DIR
        elif is_bare_git(self.root):
            self._git = True
            self._prefix = HELLO_FFT_DIR
            try:
                self.read("gpu_fft.txt")
            except UserlandNotFound as exc:
                raise UserlandNotFound(f"{root}: a git repository without {HELLO_FFT_DIR}/gpu_fft.txt "
                                       f"at {rev}") from exc
        else:
            raise UserlandNotFound(f"{root}: neither a userland checkout (no {HELLO_FFT_DIR}/gpu_fft.txt) "
                                   "nor a bare git repository")

    @classmethod
    def open(cls, root: Optional[str]) -> Optional[UserlandSource]:
        """The source at ``root``, or None when the path is missing or holds no hello_fft."""
        if not root:
            return None
        try:
            return cls(root)
        except UserlandNotFound:
            return None

    def describe(self) -> str:
        kind = f"bare git repository, {self.rev}" if self._git else "directory"
        return f"{self.root} ({kind})"

    def read(self, name: str) -> str:
        """Text of a file of hello_fft (``name`` relative to the hello_fft directory)."""
        rel = f"{self._prefix}/{name}" if self._prefix else name
        return read_text(self.root, rel, bare=self._git, rev=self.rev, error=UserlandNotFound)

    def shader(self, log2_n: int) -> np.ndarray:
        """The QPU code for one length, as little-endian uint32 words in memory order."""
        return parse_shader_hex(self.read(f"hex/shader_{length_name(log2_n)}.hex"))


def length_name(log2_n: int) -> str:
    """The suffix hello_fft names a length's shader with: 256, 512, 1k, 2k ... 4096k."""
    check_log2_n(log2_n)
    n = 1 << log2_n
    return str(n) if n < 1024 else f"{n >> 10}k"


def check_log2_n(log2_n: int) -> None:
    if not MIN_LOG2_N <= log2_n <= MAX_LOG2_N:
        raise ValueError(f"log2_n must be {MIN_LOG2_N}..{MAX_LOG2_N} (GPU_FFT's shaders), not {log2_n}")


_HEX_WORD = re.compile(r"0x([0-9a-fA-F]{1,8})\b")


def parse_shader_hex(text: str) -> np.ndarray:
    """Words of a hello_fft ``.hex`` file: a C initialiser list of 32-bit hex numbers, low word first.

    Each line holds one 64-bit instruction as two numbers (the low word, holding e.g. a
    load-immediate's value, then the high word) followed by a ``//`` comment with the
    disassembly; comments are stripped before the numbers are read.
    """
    words: List[int] = []
    for line in text.splitlines():
        code = line.split("//", 1)[0]
        words.extend(int(m.group(1), 16) for m in _HEX_WORD.finditer(code))
    if not words or len(words) % 2:
        raise ValueError(f"a shader .hex file must hold an even, non-zero number of words, got {len(words)}")
    return np.array(words, dtype=np.uint32)


# ----------------------------------------------------------------------------------------------
# Twiddle tables
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """How GPU_FFT transforms 2**log2_n points (gpu_fft_twiddles.c).

    ``base``: size (16, 32 or 64 entries) of the first shared table, a ``base`` table at
    angle 0.  ``steps``: the shared rotation tables that follow, as (size, angle) with the
    angle in units of 2*pi/N.  ``unique``: size of each QPU's own base table, at angle
    q * 2*pi/N for QPU q.
    """

    log2_n: int
    passes: int
    base: int
    steps: Tuple[Tuple[int, int], ...]
    unique: int

    @property
    def n(self) -> int:
        return 1 << self.log2_n

    @property
    def shared_blocks(self) -> int:
        return (self.base + sum(size for size, _ in self.steps)) // BLOCK_ENTRIES

    @property
    def unique_blocks(self) -> int:
        return self.unique // BLOCK_ENTRIES


def _plans() -> Dict[int, Plan]:
    q = NUM_QPUS
    rows = {
        # log2 N: passes, first shared base, shared rotation steps (size, angle / (2 pi / N)), unique base
        8: (2, 16, ((16, q),), 16),
        9: (2, 32, ((16, q),), 16),
        10: (2, 32, ((32, q),), 32),
        11: (2, 64, ((32, q),), 32),
        12: (3, 16, ((16, 16), (16, q)), 16),
        13: (3, 32, ((16, 16), (16, q)), 16),
        14: (3, 32, ((32, 16), (16, q)), 16),
        15: (3, 32, ((32, 32), (32, q)), 32),
        16: (3, 64, ((32, 32), (32, q)), 32),
        17: (4, 32, ((16, 256), (16, 16), (16, q)), 16),
        18: (4, 32, ((16, 512), (16, 32), (32, q)), 32),
        19: (4, 32, ((16, 1024), (32, 32), (32, q)), 32),
        20: (4, 32, ((32, 1024), (32, 32), (32, q)), 32),
        21: (4, 64, ((32, 1024), (32, 32), (32, q)), 32),
        22: (4, 64, ((64, 1024), (32, 32), (32, q)), 32),
    }
    return {k: Plan(k, *v) for k, v in rows.items()}


PLANS: Dict[int, Plan] = _plans()


def codelet_lanes() -> Tuple[np.ndarray, np.ndarray]:
    """(k, m) per lane of the 16-point codelet's twiddle vector.

    The codelet (qasm/gpu_fft.qinc ``body_fft_16``) does 4 radix-2 stages across the
    16 SIMD lanes; stage s uses lanes 2**s .. 2**(s+1)-1, where lane l's twiddle is
    ``exp(i (2 pi/16 * k * m + theta * k))`` with k = 8 / 2**s (the stage's angle
    scale) and m = l - 2**s (its position in the stage).  Lane 0 is unused (k = 0).
    """
    k = np.zeros(16)
    m = np.zeros(16)
    for lane in range(1, 16):
        s = lane.bit_length() - 1
        k[lane] = 8 >> s
        m[lane] = lane - (1 << s)
    return k, m


def base_angles(size: int, theta: float, two_pi: float) -> np.ndarray:
    """Angles of a ``size``-entry base table (16, 32 or 64 entries).

    16: the codelet's lane twiddles at angle theta.  32 and 64: ``size/2`` entries
    ``two_pi/size * i + theta``, then the half-size table at twice the angle (the
    radix-32/64 combining step followed by the codelets it feeds).
    """
    if size == 16:
        k, m = codelet_lanes()
        return two_pi / 16 * k * m + theta * k
    if size not in (32, 64):
        raise ValueError(f"base tables have 16, 32 or 64 entries, not {size}")
    head = two_pi / size * np.arange(size // 2) + theta
    return np.concatenate([head, base_angles(size // 2, 2 * theta, two_pi)])


def step_angles(size: int, delta: float) -> np.ndarray:
    """Rotation angles of a ``size``-entry step table: each entry rotates the base entry it pairs with."""
    if size == 16:
        k, _ = codelet_lanes()
        return delta * k
    if size not in (32, 64):
        raise ValueError(f"step tables have 16, 32 or 64 entries, not {size}")
    return np.concatenate([np.full(size // 2, delta), step_angles(size // 2, 2 * delta)])


def base_table(size: int, theta: float, two_pi: float) -> np.ndarray:
    """(re, im) = (cos, sin) of ``base_angles``, as float32 pairs, shape (size, 2)."""
    a = base_angles(size, theta, two_pi)
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def step_table(size: int, delta: float) -> np.ndarray:
    """(alpha, beta) = (2 sin^2(x/2), sin x) of ``step_angles``, float32 pairs, shape (size, 2).

    The shader rotates a twiddle t by x as t - (alpha t - i beta t) with an
    error-compensated subtraction (qasm/gpu_fft.qinc ``rotate``, ``df64_sub32``):
    alpha = 1 - cos x is stored in the form that keeps its precision for small x.
    """
    x = step_angles(size, delta)
    return np.stack([2 * np.sin(x / 2) ** 2, np.sin(x)], axis=1).astype(np.float32)


def twiddle_tables(log2_n: int, direction: int) -> Tuple[np.ndarray, np.ndarray]:
    """(shared, unique) twiddle tables as float32 arrays of shape (entries, 2).

    ``unique`` holds the ``NUM_QPUS`` per-QPU tables one after the other.  The angle unit
    is ``two_pi = -2 pi`` for a forward transform, ``+2 pi`` for an inverse one.
    """
    plan = PLANS[log2_n]
    if direction not in (FORWARD, INVERSE):
        raise ValueError("direction must be FORWARD (0) or INVERSE (1)")
    two_pi = (-2.0 if direction == FORWARD else 2.0) * math.pi
    unit = two_pi / plan.n
    shared = [base_table(plan.base, 0.0, two_pi)]
    shared += [step_table(size, unit * mult) for size, mult in plan.steps]
    unique = [base_table(plan.unique, unit * q, two_pi) for q in range(NUM_QPUS)]
    return np.concatenate(shared), np.concatenate(unique)


# ----------------------------------------------------------------------------------------------
# Memory layout and uniforms
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Byte offsets inside GPU_FFT's single allocation (see the module docstring)."""

    log2_n: int
    jobs: int
    code_bytes: int
    data_bytes: int          # one buffer, with its guard
    data: int                # first input buffer
    code: int
    twiddles: int
    uniforms: int
    uniforms_per_qpu: int    # words
    control: int             # 8 (uniforms, code) pairs
    size: int                # bytes to allocate
    out_of_place: bool       # odd number of passes: results in the second half

    def input_offset(self, job: int) -> int:
        return self.data + job * self.data_bytes

    def output_offset(self, job: int) -> int:
        return self.data + (job + (self.jobs if self.out_of_place else 0)) * self.data_bytes

    def pong_offset(self, job: int) -> int:
        """The second buffer of a transform's ping-pong pair."""
        return self.data + (self.jobs + job) * self.data_bytes


def buffer_bytes(log2_n: int) -> int:
    """One data buffer: 8N bytes rounded up to whole pages, plus a guard (gpu_fft.c)."""
    return ((COMPLEX_BYTES << log2_n) | 4095) + 1


def make_layout(log2_n: int, jobs: int, code_bytes: int) -> Layout:
    check_log2_n(log2_n)
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    plan = PLANS[log2_n]
    data_bytes = buffer_bytes(log2_n)
    twiddle_bytes = COMPLEX_BYTES * BLOCK_ENTRIES * (plan.shared_blocks + NUM_QPUS * plan.unique_blocks)
    per_qpu = 5 + 2 * jobs
    data = HEADER_BYTES
    code = data + 2 * jobs * data_bytes
    twiddles = code + code_bytes
    uniforms = twiddles + twiddle_bytes
    control = uniforms + 4 * NUM_QPUS * per_qpu
    size = control + 4 * 2 * NUM_QPUS
    return Layout(log2_n, jobs, code_bytes, data_bytes, data, code, twiddles, uniforms, per_qpu, control, size,
                  out_of_place=bool(plan.passes & 1))


def uniform_streams(layout: Layout, bus: int) -> np.ndarray:
    """Uniforms of the 8 QPUs, shape (8, 5 + 2*jobs), for the block at bus address ``bus``."""
    plan = PLANS[layout.log2_n]
    table_bytes = COMPLEX_BYTES * BLOCK_ENTRIES
    u = np.zeros((NUM_QPUS, layout.uniforms_per_qpu), dtype=np.uint32)
    for q in range(NUM_QPUS):
        row: List[int] = [bus + layout.twiddles,
                          bus + layout.twiddles + table_bytes * (plan.shared_blocks + q * plan.unique_blocks),
                          q]
        for j in range(layout.jobs):
            row += [bus + layout.input_offset(j), bus + layout.pong_offset(j)]
        row += [0, 1 if q == 0 else 0]      # end of the job list; host interrupt from the master only
        u[q] = row
    return u


def uses_mailbox(log2_n: int, jobs: int) -> bool:
    """GPU_FFT's choice: direct register launch for short batches, mailbox for long ones."""
    return (jobs << log2_n) > BUSY_WAIT_LIMIT


# ----------------------------------------------------------------------------------------------
# The emulated Pi and a prepared batch
# ----------------------------------------------------------------------------------------------

@dataclass
class HostCosts:
    """ARM-side time a transform batch costs on top of the V3D job (seconds per call).

    ``mailbox``: the firmware "execute QPU" round trip, about 100 us (gpu_fft.txt).
    ``direct``: the register pokes (IRQ and cache control, 8 queue writes) and the first
    poll that sees the job done; not published: an estimate (DIRECT_LAUNCH_SECONDS).
    """

    mailbox: float = MAILBOX_CALL_SECONDS
    direct: float = DIRECT_LAUNCH_SECONDS


class EmulatedPi:
    """Emulated GPU memory, V3D and firmware, with the property mailbox the ARM would use."""

    def __init__(self, *, strict: bool = True, timing: Optional[object] = None, gpu_mem: int = 128 << 20,
                 clock_hz: int = 250_000_000, arm_through_l2: bool = True) -> None:
        from qpu.emulator.firmware import Firmware
        from qpu.emulator.memory import GPUMemory
        from qpu.emulator.v3d import V3D
        from qpu.runtime.mailbox import PropertyMailbox

        self.memory = GPUMemory(gpu_mem)
        self.v3d = V3D(self.memory, strict=strict, clock_hz=clock_hz, timing=timing)
        self.firmware = Firmware(self.memory, self.v3d, clock_hz=clock_hz)
        self.mailbox = PropertyMailbox(self.firmware.property)
        # A Pi 1's ARM reaches memory through the VideoCore L2 (gpu_fft_base.c: from the Pi 2 on
        # "ARM cannot see VC4 L2"), so what hello_fft writes is in that cache when the QPUs start.
        self.arm_through_l2 = arm_through_l2

    def arm_wrote(self, bus: int, nbytes: int) -> None:
        """The ARM wrote ``nbytes`` at ``bus`` (timing only: the VideoCore L2 now holds them)."""
        if self.arm_through_l2:
            self.v3d.system_l2_write(bus, nbytes)

    def fresh_process(self) -> None:
        """Caches as a new hello_fft process finds them: nothing of its data is cached."""
        self.v3d.clear_caches(v3d=True, system_l2=True)

    @property
    def clock_hz(self) -> int:
        return int(self.v3d.clock_hz)

    def set_timing(self, timing: object) -> None:
        """Use other timing parameters for the following jobs."""
        self.v3d.timing = timing


@dataclass
class FFTRun:
    """One execution of a prepared batch."""

    outputs: np.ndarray            # (jobs, N) complex64, copied out of GPU memory
    report: object                 # qpu.emulator.report.JobReport
    path: str                      # "direct" or "mailbox"
    gpu_seconds: float             # the V3D job at the emulated clock
    host_seconds: float            # ARM-side launch cost (HostCosts)

    @property
    def seconds(self) -> float:
        """What hello_fft's timer around gpu_fft_execute() would measure for the batch."""
        return self.gpu_seconds + self.host_seconds


@dataclass
class GPUFFT:
    """A prepared batch (gpu_fft_prepare): inputs are written through ``inputs``."""

    pi: EmulatedPi
    log2_n: int
    direction: int
    jobs: int
    layout: Layout
    handle: int
    bus: int
    path: str
    host_costs: HostCosts = field(default_factory=HostCosts)

    @property
    def n(self) -> int:
        return 1 << self.log2_n

    def _buffer(self, offset: int) -> np.ndarray:
        return self.pi.memory.array(self.bus + offset, (self.n,), np.complex64)

    @property
    def inputs(self) -> List[np.ndarray]:
        """Views (no copy) of the input buffers in GPU memory; write the data here."""
        return [self._buffer(self.layout.input_offset(j)) for j in range(self.jobs)]

    @property
    def outputs(self) -> List[np.ndarray]:
        """Views of the buffers the results land in."""
        return [self._buffer(self.layout.output_offset(j)) for j in range(self.jobs)]

    def write_inputs(self, data: np.ndarray) -> None:
        data = np.asarray(data, dtype=np.complex64).reshape(self.jobs, self.n)
        for j, buf in enumerate(self.inputs):
            buf[:] = data[j]
            self.pi.arm_wrote(self.bus + self.layout.input_offset(j), 8 * self.n)

    def execute(self) -> FFTRun:
        """Run the batch (gpu_fft_execute) and copy the results out."""
        if self.handle == 0:
            raise RuntimeError("this GPU_FFT batch has been released")
        control = self.bus + self.layout.control
        if self.path == "mailbox":
            status = self.pi.mailbox.execute_qpu(NUM_QPUS, control, MAILBOX_NOFLUSH, MAILBOX_TIMEOUT_MS)
            if status != 0:
                raise RuntimeError(f"execute QPU answered {status:#x}: the emulated job timed out "
                                   f"({self.pi.firmware.last_error})")
            report = self.pi.firmware.last_report
            host = self.host_costs.mailbox
        else:
            # Stand-in for the register pokes (see the module docstring): clear the V3D L2 and
            # the slices' caches (V3D_L2CACTL, V3D_SLCACTL), then queue the 8 programs.
            self.pi.v3d.clear_caches()
            report = self.pi.v3d.execute(NUM_QPUS, control, MAILBOX_TIMEOUT_MS)
            host = self.host_costs.direct
        if not getattr(report, "completed", True):
            raise RuntimeError("the emulated GPU_FFT job did not complete")
        outputs = np.stack([o.copy() for o in self.outputs])
        return FFTRun(outputs=outputs, report=report, path=self.path, gpu_seconds=float(report.seconds),
                      host_seconds=host)

    def release(self) -> None:
        """Unlock and free the GPU memory and disable the QPUs, as gpu_fft_release does."""
        if self.handle:
            self.pi.mailbox.mem_unlock(self.handle)
            self.pi.mailbox.mem_release(self.handle)
            self.pi.mailbox.enable_qpu(False)
            self.handle = 0


def prepare(source: UserlandSource, log2_n: int, direction: int, jobs: int, *, pi: Optional[EmulatedPi] = None,
            mem_flags: int = PI1_MEM_FLAGS, host_costs: Optional[HostCosts] = None,
            path: Optional[str] = None) -> GPUFFT:
    """Build everything in emulated GPU memory for a batch of ``jobs`` transforms (gpu_fft_prepare).

    ``path`` forces "direct" or "mailbox" launch; by default GPU_FFT's own choice.
    """
    check_log2_n(log2_n)
    if pi is None:
        pi = EmulatedPi()
    code = source.shader(log2_n)
    layout = make_layout(log2_n, jobs, 4 * len(code))
    if pi.mailbox.enable_qpu(True) != 0:
        raise RuntimeError("the emulated firmware refused to enable the QPUs")
    handle = pi.mailbox.mem_alloc(layout.size, 4096, mem_flags)
    if not handle:
        raise MemoryError(f"GPU_FFT needs {layout.size} bytes of GPU memory; the emulated share is too small "
                          "(EmulatedPi(gpu_mem=...))")
    bus = pi.mailbox.mem_lock(handle)
    mem = pi.memory
    mem.array(bus + layout.code, (len(code),), np.uint32)[:] = code
    shared, unique = twiddle_tables(log2_n, direction)
    mem.array(bus + layout.twiddles, shared.shape, np.float32)[:] = shared
    mem.array(bus + layout.twiddles + 4 * shared.size, unique.shape, np.float32)[:] = unique
    unifs = uniform_streams(layout, bus)
    mem.array(bus + layout.uniforms, unifs.shape, np.uint32)[:] = unifs
    ctl = np.zeros((NUM_QPUS, 2), dtype=np.uint32)
    for q in range(NUM_QPUS):
        ctl[q] = (bus + layout.uniforms + 4 * layout.uniforms_per_qpu * q, bus + layout.code)
    mem.array(bus + layout.control, ctl.shape, np.uint32)[:] = ctl
    pi.arm_wrote(bus + layout.code, layout.size - layout.code)     # code, twiddles, uniforms, control list
    if path is None:
        path = "mailbox" if uses_mailbox(log2_n, jobs) else "direct"
    if path not in ("direct", "mailbox"):
        raise ValueError("path must be 'direct' or 'mailbox'")
    return GPUFFT(pi, log2_n, direction, jobs, layout, handle, bus, path, host_costs or HostCosts())


# ----------------------------------------------------------------------------------------------
# Checking against numpy
# ----------------------------------------------------------------------------------------------

def reference(inputs: np.ndarray, direction: int) -> np.ndarray:
    """numpy's transform with GPU_FFT's conventions: unscaled, forward sign -1, inverse +1."""
    x = np.asarray(inputs, dtype=np.complex128)
    if direction == FORWARD:
        return np.fft.fft(x, axis=-1)
    return np.fft.ifft(x, axis=-1) * x.shape[-1]


def rel_rms_ppm(outputs: np.ndarray, expected: np.ndarray) -> float:
    """Relative root-mean-square error in parts per million, as hello_fft.c measures it."""
    out = np.asarray(outputs, dtype=np.complex128)
    ref = np.asarray(expected, dtype=np.complex128)
    return float(np.sqrt(np.sum(np.abs(out - ref) ** 2) / np.sum(np.abs(ref) ** 2)) * 1e6)


def random_inputs(log2_n: int, jobs: int, seed: int = 0) -> np.ndarray:
    """Complex inputs with real and imaginary parts uniform in [-1, 1)."""
    rng = np.random.default_rng(seed + 1000 * log2_n + jobs)
    shape = (jobs, 1 << log2_n)
    return (rng.uniform(-1, 1, shape) + 1j * rng.uniform(-1, 1, shape)).astype(np.complex64)


def hello_fft_inputs(log2_n: int, jobs: int) -> np.ndarray:
    """hello_fft.c's test signal: transform j holds 0.5 at bins f and N-f, f = (j+1) mod N/2.

    Its inverse transform is cos(2 pi f n / N), the signal gpu_fft.txt's accuracy figures
    were measured on.
    """
    n = 1 << log2_n
    x = np.zeros((jobs, n), dtype=np.complex64)
    for j in range(jobs):
        f = (j + 1) & (n // 2 - 1)
        x[j, f] += 0.5
        x[j, (n - f) & (n - 1)] += 0.5
    return x


@dataclass
class Check:
    """One batch run and checked against numpy."""

    log2_n: int
    jobs: int
    direction: int
    ppm: float                  # relative rms error over the whole batch
    run: FFTRun
    findings: Sequence[object]  # the job report's hazards (warnings in lenient mode)


def run_and_check(source: UserlandSource, log2_n: int, jobs: int, *, direction: int = INVERSE,
                  pi: Optional[EmulatedPi] = None, inputs: Optional[np.ndarray] = None,
                  host_costs: Optional[HostCosts] = None) -> Check:
    """Prepare, run once, compare with numpy, release."""
    if pi is None:
        pi = EmulatedPi()
    pi.fresh_process()
    fft = prepare(source, log2_n, direction, jobs, pi=pi, host_costs=host_costs)
    try:
        x = random_inputs(log2_n, jobs) if inputs is None else np.asarray(inputs, dtype=np.complex64)
        fft.write_inputs(x)
        run = fft.execute()
    finally:
        fft.release()
    ppm = rel_rms_ppm(run.outputs, reference(x, direction))
    return Check(log2_n, jobs, direction, ppm, run, list(getattr(run.report, "hazards", [])))


# ----------------------------------------------------------------------------------------------
# The published table (gpu_fft.txt)
# ----------------------------------------------------------------------------------------------

def _table_rows(text: str, section: str) -> List[List[str]]:
    start = text.find(section)
    if start < 0:
        raise ValueError(f"gpu_fft.txt has no section {section!r}")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("***"):
            break
        if "|" in line:
            rows.append([cell.strip() for cell in line.split("|")])
    return rows


def _numbers(cells: Sequence[str]) -> List[Optional[float]]:
    out: List[Optional[float]] = []
    for c in cells:
        m = re.match(r"^\s*([0-9]*\.?[0-9]+)", c)
        out.append(float(m.group(1)) if m else None)
    return out


def published_times(text: str) -> Dict[Tuple[int, str], float]:
    """Per-transform times in seconds, keyed (log2 N, "1" | "10" | "FFTW"), from gpu_fft.txt "Throughput".

    The table comes in blocks: a header row ``log2(N) | 8 | 9 ...`` followed by rows
    labelled with the batch size (or FFTW); times are in milliseconds.
    """
    table: Dict[Tuple[int, str], float] = {}
    sizes: List[Optional[float]] = []
    for cells in _table_rows(text, "*** Throughput ***"):
        label = cells[0]
        values = _numbers(cells[1:])
        if label.startswith("log2"):
            sizes = values
            continue
        for size, value in zip(sizes, values):
            if size is not None and value is not None:
                table[(int(size), label)] = value * 1e-3
    return table


def published_accuracy(text: str) -> Dict[int, float]:
    """Typical rms error in ppm per log2 N, from gpu_fft.txt "Accuracy"."""
    acc: Dict[int, float] = {}
    sizes: List[Optional[float]] = []
    for cells in _table_rows(text, "*** Accuracy ***"):
        values = _numbers(cells[1:])
        if cells[0].startswith("log2"):
            sizes = values
        elif cells[0].startswith("ppm"):
            for size, value in zip(sizes, values):
                if size is not None and value is not None:
                    acc[int(size)] = value
    return acc


def published_plan_table(text: str) -> Dict[int, Tuple[int, int, int]]:
    """(passes, shared blocks, unique blocks) per log2 N parsed from gpu_fft_twiddles.c's shader table.

    Used by the tests as an independent check of ``PLANS``.
    """
    rows = re.findall(r"\{\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*twiddles_\w+\s*\}", text)
    return {MIN_LOG2_N + i: (int(p), int(s), int(u)) for i, (p, s, u) in enumerate(rows)}
