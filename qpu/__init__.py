"""qpu: write, check, emulate and run VideoCore IV QPU kernels (Raspberry Pi Zero/1/2/3).

Layers (docs/architecture.md):

* ``qpu.isa``          the instruction set as data: formats, opcodes, registers, rules
* ``qpu.instruction``  the instruction model; ``qpu.encoding`` turns it into words and back
* ``qpu.builder``      the Python DSL that kernels are written in
* ``qpu.text_assembler`` / ``qpu.disassembler``  the text syntax, both ways
* ``qpu.checker``      static check of the hardware's programming rules
* ``qpu.emulator``     the V3D emulator; ``qpu.runtime`` the Driver (Pi or emulator)
* ``qpu.kernels``      hand-written kernels

The most used names are importable from here: ``assemble``, ``assemble_text``,
``disassemble``, ``check``, ``Program``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names and the module that defines them, imported on first use so that importing
# ``qpu`` stays cheap (the emulator pulls in numba).
_LAZY = {
    "Program": "qpu.program",
    "disassemble": "qpu.disassembler",
    "assemble_text": "qpu.text_assembler",
    "assemble": "qpu.builder",
    "Kernel": "qpu.builder",
    "check": "qpu.checker",
    "QPUError": "qpu.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qpu' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
