"""The ``qpu`` command: assemble, disassemble, check, run and inspect QPU programs.

    qpu asm KERNEL.py[:name] [-o out.bin] [--hex] [--arg NAME=VALUE ...]
    qpu asm --text FILE.qasm [-o out.bin] [--hex]
    qpu dis FILE [--hex] [--no-labels]
    qpu check FILE [--hex | --text | --kernel] [--threaded]
    qpu run KERNEL.py[:name] [--backend emulator] [--threads N] [--array x=arange:16] [--uniforms @x,16]
    qpu info
    qpu selftest [--backend B] [--remote URL]
    qpu serve (--tcp HOST:PORT | --serial DEVICE [--baud N]) [--backend mailbox|emulator]
    qpu calibrate [--backend mailbox|remote] [--remote URL] [-o timing.json]

Errors a user can fix print one line (``qpu: error: ...``) and exit with status 1;
``qpu check`` exits with 1 when it finds an error-level rule violation.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import QPUError
from .program import Program


class CLIError(QPUError):
    """A command-line usage problem (bad file, missing kernel name...)."""


# ---------------------------------------------------------------------------------------------
# Loading programs
# ---------------------------------------------------------------------------------------------

_HEX_TOKEN = re.compile(r"0[xX]([0-9a-fA-F]+)|\b([0-9a-fA-F]{16})\b")


def parse_hex(text: str) -> List[int]:
    """Words from hex text: one 64-bit word per token (16 hex digits), or C-array style pairs
    of 32-bit halves ``0xLOW, 0xHIGH,`` as GPU_FFT's .hex files and ``qpu asm --hex`` write.
    ``//`` and ``#`` start comments."""
    tokens: List[Tuple[str, int]] = []
    for line in text.splitlines():
        line = re.split(r"//|#", line, maxsplit=1)[0]
        for m in _HEX_TOKEN.finditer(line):
            digits = m.group(1) or m.group(2)
            tokens.append((digits, int(digits, 16)))
    if not tokens:
        return []
    if all(len(d.lstrip("0") or "0") <= 8 and len(d) <= 8 for d, _ in tokens):
        if len(tokens) % 2:
            raise CLIError(f"hex input has {len(tokens)} 32-bit values: expected pairs (low, high) per instruction")
        return [tokens[i + 1][1] << 32 | tokens[i][1] for i in range(0, len(tokens), 2)]
    words = [v for _, v in tokens]
    for w in words:
        if w >= 1 << 64:
            raise CLIError(f"hex value {w:#x} is wider than 64 bits")
    return words


def format_hex(program: Program) -> str:
    """C-array text, two 32-bit halves per instruction with its disassembly as a comment."""
    from .disassembler import disassemble

    lines = disassemble(program)
    return "".join(f"0x{w & 0xFFFFFFFF:08x}, 0x{w >> 32:08x}, // {text}\n"
                   for w, text in zip(program.words, lines))


def load_module(path: str) -> ModuleType:
    file = Path(path)
    if not file.is_file():
        raise CLIError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(file.stem, str(file))
    if spec is None or spec.loader is None:
        raise CLIError(f"cannot import {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def find_kernel(module: ModuleType, name: Optional[str]) -> Callable[..., Any]:
    """The kernel function ``name`` of a module, or its only kernel function."""
    if name:
        fn = getattr(module, name, None)
        if not callable(fn):
            raise CLIError(f"{module.__file__} has no function {name!r}")
        return fn  # type: ignore[no-any-return]
    own = [obj for _, obj in vars(module).items()
           if inspect.isfunction(obj) and obj.__module__ == module.__name__ and not obj.__name__.startswith("_")]
    marked = [f for f in own if getattr(f, "__qpu_kernel__", False)]
    candidates = marked or own
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(sorted(f.__name__ for f in candidates)) or "none"
    raise CLIError(f"{module.__file__}: say which kernel to use as FILE.py:name (functions: {names})")


def parse_kernel_args(pairs: Sequence[str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise CLIError(f"--arg expects NAME=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def assemble_kernel_file(spec: str, kwargs: Dict[str, Any]) -> Program:
    from .builder import assemble

    path, _, name = spec.partition(":")
    module = load_module(path)
    return assemble(find_kernel(module, name or None), **kwargs)


def read_program(path: str, fmt: str) -> Program:
    """A program from a file: raw binary, hex text, assembly text or a Python kernel."""
    if fmt == "kernel":
        return assemble_kernel_file(path, {})
    file = Path(path)
    if not file.is_file():
        raise CLIError(f"no such file: {path}")
    if fmt == "text":
        from .text_assembler import assemble_text

        return assemble_text(file.read_text(), name=path)
    if fmt == "hex":
        return Program.from_words(parse_hex(file.read_text()), name=path)
    return Program.from_bytes(file.read_bytes(), name=path)


def _guess_format(path: str, hex_flag: bool, text_flag: bool, kernel_flag: bool) -> str:
    if hex_flag:
        return "hex"
    if text_flag:
        return "text"
    if kernel_flag or path.partition(":")[0].endswith(".py"):
        return "kernel"
    if path.endswith((".qasm", ".s", ".asm")):
        return "text"
    if path.endswith(".hex"):
        return "hex"
    return "bin"


def write_program(program: Program, out: Optional[str], as_hex: bool) -> None:
    if as_hex:
        text = format_hex(program)
        if out:
            Path(out).write_text(text)
        else:
            sys.stdout.write(text)
        return
    data = program.to_bytes()
    if out:
        Path(out).write_bytes(data)
    elif sys.stdout.isatty():
        raise CLIError("refusing to write binary code to a terminal: give -o FILE or --hex")
    else:
        sys.stdout.buffer.write(data)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def cmd_asm(args: argparse.Namespace) -> int:
    if args.text:
        program = read_program(args.source, "text")
    else:
        program = assemble_kernel_file(args.source, parse_kernel_args(args.arg))
    write_program(program, args.output, args.hex)
    if args.output:
        print(f"{args.output}: {len(program)} instructions, {len(program) * 8} bytes", file=sys.stderr)
    return 0


def cmd_dis(args: argparse.Namespace) -> int:
    from .disassembler import disassemble

    program = read_program(args.file, _guess_format(args.file, args.hex, False, False))
    for line in disassemble(program, labels=not args.no_labels):
        print(line)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .checker import check

    program = read_program(args.file, _guess_format(args.file, args.hex, args.text, args.kernel))
    report = check(program, threaded=args.threaded)
    text = str(report)
    if text:
        print(text)
    n_err, n_warn = len(report.errors), len(report.warnings)
    print(f"{args.file}: {len(program)} instructions, {n_err} error(s), {n_warn} warning(s)", file=sys.stderr)
    return 1 if n_err else 0


def cmd_run(args: argparse.Namespace) -> int:
    from .runtime_cli import run_command

    return run_command(args)


def cmd_info(args: argparse.Namespace) -> int:
    from qpu.runtime import info

    print(info())
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from qpu.runtime.selftest import selftest

    options = {"remote": args.remote} if args.remote else {}
    ok = selftest(backend=args.backend, verbose=True, **options)
    return 0 if ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from qpu.runtime.remote_server import serve

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    options: Dict[str, Any] = {}
    if args.backend == "emulator":
        options = {"gpu_mem": args.gpu_mem << 20, "timing": args.timing, "pi_model": args.pi_model}
    elif args.timing or args.pi_model:
        raise CLIError("--timing and --pi-model only apply to --backend emulator")
    serve(args.backend, tcp=args.tcp, serial=args.serial, baud=args.baud,
          ready=lambda line: print(line, flush=True), **options)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from qpu.emulator.timing import load_timing
    from qpu.runtime import Driver
    from qpu.runtime.calibrate import calibrate

    start = load_timing(args.start) if args.start else None
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    options = {"remote": args.remote} if args.remote else {}
    with Driver(args.backend, data_area_size=1 << 20, code_area_size=256 << 10, **options) as drv:
        print(f"qpu calibrate: {drv.backend_name} backend ({drv.backend_reason})", flush=True)
        if drv.backend_name == "emulator":
            print("qpu calibrate: note: this measures the emulator itself (a dry run): the fit returns the "
                  "starting parameters", flush=True)
        result = calibrate(drv, start=start, repeats=args.repeats, target_seconds=args.target_ms / 1000.0,
                           only=only, progress=lambda line: print(f"  {line}", flush=True))
    print(result.text())
    result.save(args.output)
    print(f"\nwrote {args.output}: use it with Driver(timing={args.output!r}) or "
          f"`export QPU_TIMING_FILE={args.output}`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qpu", description="VideoCore IV QPU toolkit")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("asm", help="assemble a Python kernel (FILE.py[:name]) or, with --text, an assembly file")
    a.add_argument("source")
    a.add_argument("-o", "--output", help="output file (default: standard output)")
    a.add_argument("--hex", action="store_true", help="write C-array hex text with disassembly comments")
    a.add_argument("--text", action="store_true", help="SOURCE is assembly text (docs/syntax.md)")
    a.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                   help="keyword argument passed to the kernel function (Python literal)")
    a.set_defaults(func=cmd_asm)

    d = sub.add_parser("dis", help="disassemble machine code")
    d.add_argument("file")
    d.add_argument("--hex", action="store_true", help="input is hex text (words, or GPU_FFT-style pairs)")
    d.add_argument("--no-labels", action="store_true", help="print raw branch immediates, no labels")
    d.set_defaults(func=cmd_dis)

    c = sub.add_parser("check", help="check a program against the hardware's programming rules")
    c.add_argument("file", help="binary, --hex text, --text assembly, or FILE.py[:name] kernel")
    c.add_argument("--hex", action="store_true")
    c.add_argument("--text", action="store_true")
    c.add_argument("--kernel", action="store_true")
    c.add_argument("--threaded", action="store_true", help="the program runs with 2 threads per QPU")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("run", help="assemble and run a kernel (emulator by default)")
    r.add_argument("kernel", help="FILE.py[:name], a .qasm file, or a .bin/.hex file")
    r.add_argument("--backend", default="emulator", choices=["emulator", "mailbox", "remote", "auto"])
    r.add_argument("--threads", type=int, default=1, help="number of QPU programs to start (1-12)")
    r.add_argument("--uniforms", default="", help="comma-separated uniforms: ints, floats, @NAME (address of an "
                                                   "--array), {thread} (thread index); the same for each thread")
    r.add_argument("--array", action="append", default=[], metavar="NAME=SPEC",
                   help="array in GPU memory: zeros|ones|arange|random:SHAPE[:DTYPE] or file:PATH.npy")
    r.add_argument("--save", action="append", default=[], metavar="NAME=PATH.npy", help="save an array after the run")
    r.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--timeout", type=int, default=10000, help="timeout in ms")
    r.add_argument("--remote", default=None, metavar="URL",
                   help="with --backend remote: tcp://HOST:PORT or serial:///dev/DEVICE?baud=N (or $QPU_REMOTE)")
    r.add_argument("--profile", type=int, default=0, metavar="N",
                   help="emulator: print the N instructions that cost the most cycles, with their source lines")
    r.add_argument("--trace", default=None, metavar="FILE.json",
                   help="emulator: write the job's timeline as Chrome Trace Event JSON (Perfetto, chrome://tracing)")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("info", help="which backend works here, Pi model, V3D clock, memory")
    i.set_defaults(func=cmd_info)

    s = sub.add_parser("selftest", help="run a small kernel end to end and check the result")
    s.add_argument("--backend", default=None)
    s.add_argument("--remote", default=None, metavar="URL", help="a Pi running `qpu serve` (backend remote)")
    s.set_defaults(func=cmd_selftest)

    sv = sub.add_parser("serve", help="run QPU jobs for a Driver on another machine (backend 'remote')")
    link = sv.add_mutually_exclusive_group(required=True)
    link.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP address, e.g. 0.0.0.0:5555")
    link.add_argument("--serial", metavar="DEVICE", help="serve a serial line, e.g. /dev/ttyAMA0")
    sv.add_argument("--baud", type=int, default=115200, help="serial line speed (default 115200)")
    sv.add_argument("--backend", default="mailbox", choices=["mailbox", "emulator"],
                    help="what runs the jobs: this Pi's QPUs (default) or the emulator")
    sv.add_argument("--gpu-mem", type=int, default=256, metavar="MIB", help="emulator: GPU memory in MiB")
    sv.add_argument("--timing", default=None, metavar="FILE", help="emulator: timing file (qpu calibrate)")
    sv.add_argument("--pi-model", default=None, help="emulator: board to emulate (zero, 1, 2, 3...)")
    sv.add_argument("-v", "--verbose", action="store_true", help="log sessions and requests")
    sv.set_defaults(func=cmd_serve)

    cb = sub.add_parser("calibrate", help="time micro-benchmarks on a Pi and write a timing file for the emulator")
    cb.add_argument("--backend", default="mailbox", choices=["mailbox", "remote", "emulator"])
    cb.add_argument("--remote", default=None, metavar="URL", help="with --backend remote: the Pi's qpu serve")
    cb.add_argument("-o", "--output", default="qpu-timing.json", help="timing file to write (qpu-timing.json)")
    cb.add_argument("--start", default=None, metavar="FILE", help="timing file to start the fit from")
    cb.add_argument("--repeats", type=int, default=5, help="runs per measurement; the fastest counts (5)")
    cb.add_argument("--target-ms", type=float, default=2.0, help="length of each timed job on the board (2 ms)")
    cb.add_argument("--only", default=None, metavar="NAMES", help="comma-separated benchmarks to run")
    cb.set_defaults(func=cmd_calibrate)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except QPUError as exc:
        print(f"qpu: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"qpu: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
