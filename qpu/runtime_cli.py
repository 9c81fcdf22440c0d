"""``qpu run``: assemble a kernel, put arrays in GPU memory, run it, print the results.

    qpu run kernel.py:name --threads 2 \\
        --array x=arange:16:float32 --array y=zeros:16:float32 \\
        --uniforms @x,@y,16 [--save y=out.npy]

``--array NAME=SPEC`` allocates an array in GPU memory; SPEC is
``zeros:SHAPE[:DTYPE]``, ``ones:...``, ``arange:...``, ``random:...`` (uniform in
[0, 1), seeded) or ``file:PATH.npy``; SHAPE is ``16`` or ``4x16``.  In
``--uniforms`` (comma-separated) ``@NAME`` is the bus address of an array,
``{thread}`` the thread index, and numbers are 32-bit ints (``0x`` hex allowed)
or floats (with a ``.``).  The same list is used for every thread.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Dict, List, Tuple

import numpy as np

from .errors import QPUError


class RunArgumentError(QPUError):
    """A ``qpu run`` option that cannot be understood."""


_SPEC = re.compile(r"^(zeros|ones|arange|random|file):([^:]+)(?::(\w+))?$")


def parse_array_spec(text: str) -> Tuple[str, np.ndarray]:
    name, sep, spec = text.partition("=")
    if not sep or not name.isidentifier():
        raise RunArgumentError(f"--array expects NAME=SPEC (e.g. x=arange:16:float32), got {text!r}")
    m = _SPEC.match(spec)
    if not m:
        raise RunArgumentError(f"--array {name}: SPEC must be zeros|ones|arange|random:SHAPE[:DTYPE] or file:PATH.npy, "
                               f"got {spec!r}")
    kind, arg, dtype_name = m.groups()
    if kind == "file":
        return name, np.load(arg)
    try:
        shape = tuple(int(s) for s in arg.lower().split("x"))
        dtype = np.dtype(dtype_name or "float32")
    except (ValueError, TypeError) as exc:
        raise RunArgumentError(f"--array {name}: bad shape or dtype in {spec!r}: {exc}") from None
    count = int(np.prod(shape))
    if kind == "zeros":
        data = np.zeros(shape, dtype)
    elif kind == "ones":
        data = np.ones(shape, dtype)
    elif kind == "arange":
        data = np.arange(count).reshape(shape).astype(dtype)
    else:
        data = np.random.default_rng(0).random(shape).astype(dtype)
    return name, data


def parse_uniforms(text: str, arrays: Dict[str, Any], thread: int) -> List[int]:
    values: List[int] = []
    for token in filter(None, (t.strip() for t in text.split(","))):
        token = token.replace("{thread}", str(thread))
        if token.startswith("@"):
            arr = arrays.get(token[1:])
            if arr is None:
                raise RunArgumentError(f"uniform {token}: no --array named {token[1:]!r}")
            values.append(int(arr.address))
            continue
        try:
            if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", token):
                values.append(int(token, 0) & 0xFFFFFFFF)
            else:
                values.append(int(np.float32(float(token)).view(np.uint32)))
        except ValueError:
            raise RunArgumentError(f"uniform {token!r} is not a number, @array or {{thread}}") from None
    return values


def _load_program(spec: str, kwargs: Dict[str, Any]) -> Any:
    from .cli import _guess_format, assemble_kernel_file, read_program

    fmt = _guess_format(spec, False, False, False)
    if fmt == "kernel":
        return assemble_kernel_file(spec, kwargs)
    return read_program(spec, fmt)


def print_profile(report: Any, loaded: Any, n: int) -> None:
    """The ``n`` costliest instructions of the emulator's per-address profile: executions, stall
    cycles, share of all QPU cycles, the instruction and its kernel source line."""
    from .disassembler import disassemble_word

    job = getattr(report, "job", None)
    if job is None or not getattr(job, "profile", None):
        raise RunArgumentError("--profile needs the emulator backend (a real V3D keeps no per-instruction profile)")
    total = sum(4 * ex + st for ex, st in job.profile.values()) or 1
    print(f"hot spots (cycles = executions x 4 + stalls; {total} QPU cycles in all):")
    print(f"  {'address':>10} {'index':>5} {'executions':>10} {'stalls':>10} {'share':>6}  instruction")
    for addr, ex, st in job.hot_spots(n):
        index = (addr - loaded.address) // 8
        if 0 <= index < len(loaded.program.words):
            text = disassemble_word(loaded.program.words[index])
            loc = loaded.program.location(index)
            where = f"  ({loc.file}:{loc.line})" if loc is not None and loc.line else ""
        else:
            text, where = "(outside this program)", ""
        print(f"  {addr:#010x} {index:5d} {ex:10d} {st:10d} {(4 * ex + st) / total:6.1%}  {text}{where}")


def run_command(args: argparse.Namespace) -> int:
    from qpu.runtime import Driver

    from .cli import parse_kernel_args

    program = _load_program(args.kernel, parse_kernel_args(args.arg))
    backend = None if args.backend == "auto" else args.backend
    if not 1 <= args.threads <= 12:
        raise RunArgumentError(f"--threads must be 1..12 (one program per QPU), got {args.threads}")
    options = {"remote": args.remote} if getattr(args, "remote", None) else {}
    with Driver(backend=backend, **options) as drv:
        arrays: Dict[str, Any] = {}
        for spec in args.array:
            name, data = parse_array_spec(spec)
            arrays[name] = drv.copy(data)
        uniforms = [parse_uniforms(args.uniforms, arrays, t) for t in range(args.threads)]
        width = max((len(u) for u in uniforms), default=0)
        table = np.zeros((args.threads, max(width, 1)), dtype=np.uint32)
        for t, u in enumerate(uniforms):
            table[t, :len(u)] = u
        loaded = drv.program(program)
        trace = getattr(args, "trace", None)
        report = drv.execute(args.threads, loaded, uniforms=table if width else None,
                             timeout=args.timeout, trace=trace)
        print(f"backend: {drv.backend_name}")
        print(report)
        if trace:
            print(f"trace written to {trace} (open it in https://ui.perfetto.dev or chrome://tracing)")
        if getattr(args, "profile", 0):
            print_profile(report, loaded, args.profile)
        for name, arr in arrays.items():
            with np.printoptions(threshold=64, precision=6):
                print(f"{name} = {np.array(arr)!r}")
        for spec in args.save:
            name, _, path = spec.partition("=")
            if name not in arrays or not path:
                raise RunArgumentError(f"--save expects NAME=PATH.npy for an --array, got {spec!r}")
            np.save(path, np.array(arrays[name]))
    return 0
