"""``Driver``: allocate GPU memory, load programs and run them on the QPUs, on a Pi or on the emulator.

The interface follows py-videocore's Driver so its users feel at home::

    with Driver() as drv:
        a = drv.copy(np.arange(16, dtype=np.float32))
        out = drv.alloc(16, np.float32)
        report = drv.execute(1, drv.program(kernel), uniforms=[a.address, out.address])

``backend=None`` uses the firmware mailbox on a Raspberry Pi Zero/1/2/3 where it
works and the emulator everywhere else; ``drv.backend_name`` and a log line
("qpu.runtime" logger) say which and why.

Memory: the Driver makes two firmware allocations when it starts (GPU_FFT and
py-videocore do the same): an uncached *control* block holding the control list,
a scratch area for uniforms given as Python lists, and the code area; and a *data*
block for arrays, with the cache alias the board needs (pi.py).  Arrays and
programs are carved out of these and live until ``close()``, which unlocks and
releases both blocks and disables the QPUs.  ``close()`` also runs when the ``with``
block ends (normally or by an exception), when the Driver is garbage collected, and
at interpreter exit: GPU memory that is not released is lost until reboot.
"""

from __future__ import annotations

import logging
import os
import struct
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from qpu.program import Program

from .array import Area, Array, GPUBlock, normalise_shape
from .backends import EmulatorBackend, MailboxBackend
from .errors import (
    BackendUnavailableError,
    DriverClosedError,
    DriverConfigError,
    GPUAllocationError,
    NotInGPUMemoryError,
    RuntimeQPUError,
)
from .host import PAGE_SIZE, LinuxHost
from .pi import BCM2835, PiInfo, pi_from_name
from .report import RunReport

log = logging.getLogger("qpu.runtime")

DEFAULT_DATA_AREA_SIZE = 32 * 1024 * 1024
DEFAULT_CODE_AREA_SIZE = 1024 * 1024
DEFAULT_MAX_THREADS = 12
MAX_QPUS = 12
CONTROL_LIST_BYTES = 256                 # 12 (uniforms, code) pairs = 96 bytes, rounded up
UNIFORMS_SCRATCH_BYTES = 64 * 1024       # uniforms given as lists are written here at each execute
DEFAULT_ARRAY_ALIGN = 64

# Firmware memory flags (raspberrypi/firmware wiki, "Allocate Memory"; GPU_FFT gpu_fft_base.c).
MEM_FLAG_DIRECT = 1 << 2                 # uncached alias 0xC0000000
MEM_FLAG_COHERENT = 2 << 2               # alias 0x80000000, L2 non-allocating but coherent
MEM_FLAG_L1_NONALLOCATING = 3 << 2       # alias 0x40000000, allocating in the VideoCore L2
CACHE_MODES = {
    "uncached": MEM_FLAG_DIRECT, "direct": MEM_FLAG_DIRECT,
    "l2cached": MEM_FLAG_L1_NONALLOCATING, "l2": MEM_FLAG_L1_NONALLOCATING,
    "coherent": MEM_FLAG_COHERENT,
}
BACKENDS = ("mailbox", "emulator", "remote")
REMOTE_ENV = "QPU_REMOTE"                # Driver() with no backend drives the Pi at this URL


class LoadedProgram:
    """A program copied into the Driver's code area: ``address`` is its bus address."""

    def __init__(self, address: int, program: Program, code: bytes) -> None:
        self.address = address
        self.program = program
        self.code = code
        self.size = len(code)

    def __repr__(self) -> str:
        name = f" {self.program.name}" if self.program.name else ""
        return f"<LoadedProgram{name} at {self.address:#010x}, {self.size // 8} instructions>"


def data_flags_for(pi: PiInfo, cache_mode: Union[None, str, int]) -> int:
    """Allocation flags of the data area for a board and a ``cache_mode`` argument."""
    if cache_mode is None or cache_mode == "auto":
        # GPU_FFT gpu_fft_base.c: L2-cached on a BCM2835, uncached where "ARM cannot see VC4 L2".
        return MEM_FLAG_L1_NONALLOCATING if pi.soc == BCM2835 else MEM_FLAG_DIRECT
    if isinstance(cache_mode, str):
        flags = CACHE_MODES.get(cache_mode.lower())
        if flags is None:
            raise DriverConfigError(f"unknown cache_mode {cache_mode!r}: use None (per board), "
                                    f"{', '.join(repr(k) for k in CACHE_MODES)} or the firmware's flag bits")
    else:
        flags = int(cache_mode)
        if flags & ~0x7F:
            raise DriverConfigError(f"cache_mode {cache_mode:#x} sets bits the firmware's memory flags do not have")
    if flags & (3 << 2) == MEM_FLAG_L1_NONALLOCATING and pi.soc != BCM2835:
        raise DriverConfigError(
            f"cache_mode {cache_mode!r} (VideoCore L2-cached alias) is unsafe on a {pi.soc} board: its ARM cannot "
            "see the VideoCore L2, so it would read stale data (GPU_FFT gpu_fft_base.c); use 'uncached'")
    return flags


def _float_bits(value: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


def _uniform_word(value: Any) -> int:
    if isinstance(value, Array):
        return value.address
    if isinstance(value, LoadedProgram):
        return value.address
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if not -(1 << 31) <= v < (1 << 32):
            raise DriverConfigError(f"uniform {v} does not fit in 32 bits")
        return v & 0xFFFFFFFF
    if isinstance(value, (float, np.floating)):
        return _float_bits(float(value))
    raise DriverConfigError(f"a uniform must be an int, a float, or an Array (its address), got {value!r}")


def uniform_words(uniforms: Any) -> np.ndarray:
    """Uniform values as uint32 words: ints as 32-bit patterns, floats as float32 bits, Arrays as addresses."""
    if isinstance(uniforms, np.ndarray) and not isinstance(uniforms, Array):
        kind = uniforms.dtype.kind
        if kind == "f":
            return np.ascontiguousarray(uniforms.astype("<f4")).view("<u4").astype(np.uint32)
        if kind in "iub":
            wide = uniforms.astype(np.int64)
            if wide.size and (wide.min() < -(1 << 31) or wide.max() >= (1 << 32)):
                raise DriverConfigError("a uniform does not fit in 32 bits")
            return (wide & 0xFFFFFFFF).astype(np.uint32)
        raise DriverConfigError(f"uniforms of dtype {uniforms.dtype} cannot be sent to the QPUs")

    def convert(obj: Any) -> Any:
        if isinstance(obj, (list, tuple)):
            return [convert(x) for x in obj]
        if isinstance(obj, np.ndarray) and not isinstance(obj, Array):
            return uniform_words(obj).tolist()
        return _uniform_word(obj)

    try:
        return np.array(convert(uniforms), dtype=np.uint64).astype(np.uint32)
    except ValueError as exc:
        raise DriverConfigError(f"uniforms must be a flat list or one equally long list per thread: {exc}") from None


class Driver:
    """Run QPU programs: ``Driver(backend=None|"mailbox"|"emulator"|"remote", ...)``, a context manager.

    Parameters: ``data_area_size`` / ``code_area_size`` bytes of GPU memory for arrays and for
    code; ``cache_mode`` the data area's alias (None: per board; "uncached", "l2cached",
    "coherent", or firmware flag bits); ``pi_model`` the board ("zero", "1", "2", "3",
    "zero2w"...; None: detect it on a Pi, a Pi 3 on the emulator).  Keyword-only:
    ``max_threads`` (1-12), ``clock_hz`` (emulator V3D clock; default the timing
    table's, 250 MHz unless a timing file says otherwise),
    ``strict`` (emulator: stop at the first rule violation), ``gpu_mem`` (emulator memory
    size), ``counters`` (Pi: read the V3D performance counters around each job), ``host``
    (the OS access object of the mailbox backend; tests pass a fake), ``remote`` (the
    "remote" backend's server: "tcp://host:5555" or "serial:///dev/ttyUSB0?baud=115200";
    default $QPU_REMOTE, which also makes ``backend=None`` pick the remote backend),
    ``timing`` (emulator: a timing file written by ``qpu calibrate`` or a
    TimingParameters; default $QPU_TIMING_FILE, else the built-in table; ignored by the
    other backends).  ``backend`` may also be a backend object (e.g. a configured
    qpu.runtime.remote.RemoteBackend).
    """

    def __init__(self, backend: Any = None,
                 data_area_size: int = DEFAULT_DATA_AREA_SIZE,
                 code_area_size: int = DEFAULT_CODE_AREA_SIZE,
                 cache_mode: Union[None, str, int] = None,
                 pi_model: Optional[str] = None, *,
                 max_threads: int = DEFAULT_MAX_THREADS,
                 clock_hz: Optional[int] = None,
                 strict: bool = True,
                 gpu_mem: int = 256 << 20,
                 counters: bool = True,
                 host: Optional[LinuxHost] = None,
                 remote: Optional[str] = None,
                 timing: Any = None) -> None:
        if not 1 <= int(max_threads) <= MAX_QPUS:
            raise DriverConfigError(f"max_threads must be 1..{MAX_QPUS} (the V3D has {MAX_QPUS} QPUs), "
                                    f"got {max_threads}")
        if data_area_size <= 0 or code_area_size <= 0:
            raise DriverConfigError("data_area_size and code_area_size must be positive")
        self.max_threads = int(max_threads)
        self.last_report: Optional[RunReport] = None
        self._blocks: List[GPUBlock] = []
        self._programs: Dict[bytes, LoadedProgram] = {}
        self._closed = False
        self.backend, self.backend_reason = _select_backend(
            backend, pi_model=pi_model, clock_hz=clock_hz, strict=strict, gpu_mem=gpu_mem,
            counters=counters, host=host, remote=remote, timing=timing)
        self.backend_name: str = self.backend.name
        self.pi: PiInfo = self.backend.pi
        self.clock_hz: int = self.backend.clock_hz
        self._finalizer = weakref.finalize(self, _release, self.backend, self._blocks)
        log.info("qpu.runtime: using the %s backend (%s)", self.backend_name, self.backend_reason)
        try:
            self.data_flags = data_flags_for(self.pi, cache_mode)
            control_bytes = CONTROL_LIST_BYTES + UNIFORMS_SCRATCH_BYTES + int(code_area_size)
            ctl = self._allocate("code area", control_bytes, MEM_FLAG_DIRECT)
            dat = self._allocate("data area", int(data_area_size), self.data_flags)
        except BaseException:
            self.close()
            raise
        self._control = np.frombuffer(ctl.bytes, dtype="<u4", count=2 * MAX_QPUS)
        self._control_bus = ctl.bus
        self._uniforms_area = Area(ctl, "uniforms scratch", CONTROL_LIST_BYTES, UNIFORMS_SCRATCH_BYTES)
        self._code_area = Area(ctl, "code_area", CONTROL_LIST_BYTES + UNIFORMS_SCRATCH_BYTES, int(code_area_size))
        self._data_area = Area(dat, "data_area")

    # -- lifetime ----------------------------------------------------------------------------------

    def _allocate(self, name: str, size: int, flags: int) -> GPUBlock:
        mailbox = self.backend.mailbox
        size = -(-size // PAGE_SIZE) * PAGE_SIZE
        handle = mailbox.mem_alloc(size, PAGE_SIZE, flags)
        if not handle:
            raise GPUAllocationError(
                f"the firmware could not allocate {size} bytes ({size / (1 << 20):g} MiB) for the Driver's {name}: "
                f"{self.backend.describe_memory()}, and the display, camera and codecs use part of it. "
                f"{self.backend.gpu_mem_hint()}")
        try:
            bus = mailbox.mem_lock(handle)
            if not bus:
                raise GPUAllocationError(f"the firmware could not lock the {name} allocation (handle {handle})")
            try:
                buffer, unmap = self.backend.map(bus, size)
            except BaseException:
                mailbox.mem_unlock(handle)
                raise
        except BaseException:
            mailbox.mem_release(handle)
            raise
        block = GPUBlock(name, handle, bus, size, flags, buffer, unmap)
        self._blocks.append(block)
        return block

    def close(self) -> None:
        """Release everything: unlock and release the GPU memory, disable the QPUs."""
        self._closed = True
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        elif getattr(self, "backend", None) is not None:
            _release(self.backend, self._blocks)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise DriverClosedError("this Driver is closed: its GPU memory was released; create a new Driver")

    # -- memory ------------------------------------------------------------------------------------

    def alloc(self, shape: Any, dtype: Any = np.float32, *, align: int = DEFAULT_ARRAY_ALIGN) -> Array:
        """An uninitialised array in GPU memory (like numpy.empty); 64-byte aligned by default."""
        self._check_open()
        shape = normalise_shape(shape)
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize if shape else dt.itemsize
        offset = self._data_area.take(nbytes, align, f"an array of shape {shape} and dtype {dt}")
        return Array(shape, dt, self._data_area.block, offset)

    def copy(self, arr: Any) -> Array:
        """A copy of an array in GPU memory (same shape and dtype)."""
        src = np.asarray(arr)
        out = self.alloc(src.shape, src.dtype)
        out[...] = src
        return out

    def array(self, obj: Any, dtype: Any = None) -> Array:
        """Like numpy.array, but in GPU memory."""
        src = np.asarray(obj, dtype=dtype)
        out = self.alloc(src.shape, src.dtype)
        out[...] = src
        return out

    # -- programs ----------------------------------------------------------------------------------

    def program(self, kernel_or_bytes: Any, *args: Any, **kwargs: Any) -> LoadedProgram:
        """Load a program into the code area.

        Accepts a kernel function (assembled with qpu.builder.assemble(fn, *args, **kwargs);
        a py-videocore ``@qpu`` kernel of qpu.compat.videocore with that module), a
        qpu.program.Program, bytes of machine code, a sequence of 64-bit words, or a
        string of assembly text (docs/syntax.md).  Loading the same code twice reuses it.
        """
        self._check_open()
        program = _as_program(kernel_or_bytes, args, kwargs)
        code = program.to_bytes()
        if not code:
            raise DriverConfigError("the program is empty")
        loaded = self._programs.get(code)
        if loaded is not None:
            self.backend.register_program(loaded.address, program)
            return loaded
        offset = self._code_area.take(len(code), 8, f"a program of {len(code) // 8} instructions")
        block = self._code_area.block
        block.bytes[offset:offset + len(code)] = np.frombuffer(code, dtype=np.uint8)
        loaded = LoadedProgram(block.bus + offset, program, code)
        self.backend.register_program(loaded.address, program)
        self._programs[code] = loaded
        return loaded

    def load_bin(self, path: str) -> LoadedProgram:
        """Load raw machine code from a file (py-videocore's load_bin)."""
        with open(path, "rb") as f:
            return self.program(Program.from_bytes(f.read(), name=path))

    # -- running -----------------------------------------------------------------------------------

    def execute(self, n_threads: int, program: Any, uniforms: Any = None, timeout: int = 10000, *,
                trace: Any = None) -> RunReport:
        """Start ``n_threads`` copies of ``program`` (one per QPU) and wait for them all.

        ``uniforms``: None (no uniforms); an Array in GPU memory, split into ``n_threads``
        equal rows (thread i reads row i: py-videocore's convention); or values (a list,
        or one list per thread) written to a scratch area, ints as 32-bit patterns,
        floats as float32, Arrays as their addresses.  ``timeout`` in ms goes to the
        firmware.  Returns the run report (also kept as ``drv.last_report``).

        ``trace`` (emulator only): True to record the job's timeline (``report.job.trace``),
        or a path to write it to as Chrome Trace Event JSON (Perfetto, chrome://tracing).
        """
        self._check_open()
        n = int(n_threads)
        if not 1 <= n <= self.max_threads:
            raise DriverConfigError(f"n_threads must be 1..{self.max_threads} (one program per QPU), got {n_threads}")
        loaded = program if isinstance(program, LoadedProgram) else self.program(program)
        unif = self._uniform_addresses(n, uniforms)
        return self.execute_control_list([(u, loaded.address) for u in unif], timeout=timeout, trace=trace)

    def _uniform_addresses(self, n: int, uniforms: Any) -> List[int]:
        if uniforms is None:
            return [0] * n
        if isinstance(uniforms, Array):
            addrs = uniforms.addresses().reshape(-1)
            if addrs.size % n:
                raise DriverConfigError(f"the uniforms array has {addrs.size} elements: it cannot be split into "
                                        f"{n} equal per-thread rows; give it shape ({n}, k)")
            return [int(a) for a in addrs.reshape(n, -1)[:, 0]]
        words = uniform_words(uniforms).reshape(-1)
        if words.size % n:
            raise DriverConfigError(f"{words.size} uniforms cannot be split into {n} equal per-thread lists: "
                                    f"give one list per thread (shape ({n}, k)) or a multiple of {n} values")
        area = self._uniforms_area
        area.used = 0          # reused at every execute: jobs are synchronous
        if words.size * 4 > area.size:
            block_offset = self._data_area.take(words.size * 4, 64, f"{words.size} uniforms")
            block = self._data_area.block
        else:
            block_offset = area.take(words.size * 4, 4, "uniforms")
            block = area.block
        view = block.bytes[block_offset:block_offset + 4 * words.size].view("<u4")
        view[:] = words
        per = words.size // n
        return [block.bus + block_offset + 4 * per * i for i in range(n)]

    def execute_control_list(self, control: Any, timeout: int = 10000, *, trace: Any = None) -> RunReport:
        """Run a job from a control list: one (uniforms address, code address) pair per QPU.

        ``control`` is a sequence of pairs (each item an int bus address, an Array - its
        address - or a LoadedProgram), which is written to the Driver's control list, or
        an Array of shape (n, 2) and dtype uint32 already in GPU memory, whose address
        is handed to the firmware as it is (GPU_FFT-style).  Different pairs may run
        different programs.  ``trace`` as for ``execute``.
        """
        self._check_open()
        if isinstance(control, Array):
            if control.ndim != 2 or control.shape[1] != 2 or control.dtype.itemsize != 4 \
                    or not control.flags.c_contiguous:
                raise DriverConfigError("a control-list Array must be C-contiguous with shape (n, 2) and a 32-bit "
                                        f"dtype, got shape {control.shape}, dtype {control.dtype}")
            n = control.shape[0]
            address = control.address
        else:
            pairs = [tuple(p) for p in control]
            n = len(pairs)
            for p in pairs:
                if len(p) != 2:
                    raise DriverConfigError(f"a control-list entry is a (uniforms, code) pair, got {p!r}")
            address = self._control_bus
            if 1 <= n <= MAX_QPUS:
                for i, (unif, code) in enumerate(pairs):
                    self._control[2 * i] = 0 if unif is None else _uniform_word(unif)
                    self._control[2 * i + 1] = _uniform_word(code)
        if not 1 <= n <= self.max_threads:
            raise DriverConfigError(f"a control list holds 1..{self.max_threads} (uniforms, code) pairs, got {n}")
        if trace is not None and trace is not False:
            v3d = getattr(self.backend, "v3d", None)
            if v3d is None or not hasattr(v3d, "trace_next"):
                raise DriverConfigError(f"trace= needs the emulator backend (this Driver runs on "
                                        f"{self.backend_name}): a real V3D has no timeline to record")
            v3d.trace_next = trace
        try:
            report = self.backend.execute(n, address, int(timeout))
        finally:
            if trace is not None and trace is not False:
                self.backend.v3d.trace_next = None      # a job that failed before starting takes none
        self.last_report = report
        return report

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Driver {self.backend_name} {self.pi.model}, V3D {self.clock_hz / 1e6:g} MHz, {state}>"


def _as_program(obj: Any, args: Sequence[Any], kwargs: Dict[str, Any]) -> Program:
    if isinstance(obj, LoadedProgram):
        return obj.program
    if isinstance(obj, Program):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return Program.from_bytes(bytes(obj))
    if isinstance(obj, str):
        from qpu.text_assembler import assemble_text

        return assemble_text(obj, name="<string>")
    if callable(obj) and getattr(obj, "__qpu_compat_videocore__", False):
        from qpu.compat.videocore import program as videocore_program  # a py-videocore @qpu kernel

        return videocore_program(obj, *args, **kwargs)
    if callable(obj):
        from qpu.builder import assemble

        return assemble(obj, *args, **kwargs)  # type: ignore[no-any-return]
    if isinstance(obj, np.ndarray) and obj.dtype == np.uint64:
        return Program.from_words([int(w) for w in obj.reshape(-1)])
    try:
        return Program.from_words([int(w) for w in obj])
    except (TypeError, ValueError):
        raise DriverConfigError(f"cannot make a QPU program from {type(obj).__name__}: pass a kernel function, "
                                "a Program, machine-code bytes or assembly text") from None


def _release(backend: Any, blocks: List[GPUBlock]) -> None:
    """Unmap, unlock and release every block, then let the backend disable the QPUs and close."""
    mailbox = getattr(backend, "mailbox", None)
    while blocks:
        block = blocks.pop()
        for step in ("unmap", "unlock", "release"):
            try:
                if step == "unmap":
                    block.unmap()
                elif mailbox is not None and step == "unlock":
                    mailbox.mem_unlock(block.handle)
                elif mailbox is not None:
                    mailbox.mem_release(block.handle)
            except Exception as exc:   # keep going: everything not released is lost until reboot
                log.warning("qpu.runtime: could not %s the %s: %s", step, block.name, exc)
    try:
        backend.close()
    except Exception as exc:
        log.warning("qpu.runtime: could not close the %s backend: %s", getattr(backend, "name", "?"), exc)


def _select_backend(backend: Any, *, pi_model: Optional[str], clock_hz: Optional[int], strict: bool,
                    gpu_mem: int, counters: bool, host: Optional[LinuxHost], remote: Optional[str] = None,
                    timing: Any = None) -> Tuple[Any, str]:
    """The backend object and a sentence saying why it was chosen."""
    if backend is not None and not isinstance(backend, str):
        return backend, "backend object given"
    choice = (backend or "auto").lower()
    emulator = {"clock_hz": clock_hz, "strict": strict, "gpu_mem": gpu_mem, "timing": timing}
    if choice == "emulator":
        return EmulatorBackend(pi_model, **emulator), "asked for"
    if choice == "mailbox":
        return MailboxBackend(pi_model, host=host, counters=counters), "asked for"
    url = remote or os.environ.get(REMOTE_ENV, "")
    if choice == "remote" or (choice == "auto" and url):
        if not url:
            raise DriverConfigError(
                "backend='remote' needs the server's address: Driver(backend='remote', remote='tcp://PI:5555') "
                "or remote='serial:///dev/ttyUSB0?baud=115200' (or set $QPU_REMOTE); start the server on the "
                "Pi with `qpu serve` (docs/remote.md)")
        from .remote import RemoteBackend

        why = "asked for" if choice == "remote" else ("remote= given" if remote else f"${REMOTE_ENV} is set")
        backend_obj = RemoteBackend(url)
        return backend_obj, f"{why}: {backend_obj.describe()}"
    if choice != "auto":
        raise DriverConfigError(f"unknown backend {backend!r}: use None, 'mailbox', 'emulator' or 'remote'")
    host = host if host is not None else LinuxHost()
    if not host.exists(host.vcio_path):
        reason = f"no {host.vcio_path}: not a Raspberry Pi with the firmware mailbox"
        return EmulatorBackend(pi_model, **emulator), reason
    try:
        return MailboxBackend(pi_model, host=host, counters=counters), "Raspberry Pi firmware mailbox works"
    except BackendUnavailableError as exc:
        log.warning("qpu.runtime: the mailbox backend is unavailable, using the emulator: %s", exc)
        reason = f"mailbox unavailable: {exc}"
    except RuntimeQPUError as exc:
        log.warning("qpu.runtime: the mailbox backend failed, using the emulator: %s", exc)
        reason = f"mailbox failed: {exc}"
    # Emulate the board asked for, unless it is one the emulator cannot be (a Pi 4/5).
    emulated = pi_model if pi_model is not None and pi_from_name(pi_model).supported else None
    return EmulatorBackend(emulated, **emulator), reason


__all__ = ["Driver", "LoadedProgram", "uniform_words", "data_flags_for", "NotInGPUMemoryError"]
