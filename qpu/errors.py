"""Exception types of the qpu package.

Every error a user can cause is one of these, with a message that names the
instruction and, when known, the kernel source line, and says what to do.
"""

from __future__ import annotations

from typing import NamedTuple, Optional


class SourceLocation(NamedTuple):
    """Where an instruction came from: a Python kernel line or a line of a text file."""

    file: str
    line: int
    function: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where} (in {self.function})" if self.function else where


class QPUError(Exception):
    """Base class of every error raised by this package."""


class EncodingError(QPUError):
    """The requested operands, modes or signals cannot be combined in one 64-bit word."""


class AssemblyError(QPUError):
    """An instruction could not be assembled; says where it was written."""

    def __init__(self, message: str, location: Optional[SourceLocation] = None,
                 instruction: str = "") -> None:
        self.message = message
        self.location = location
        self.instruction = instruction
        parts = []
        if location is not None:
            parts.append(f"{location}:")
        if instruction:
            parts.append(f"{instruction}:")
        parts.append(message)
        super().__init__(" ".join(parts))


class TextSyntaxError(AssemblyError):
    """A line of QPU assembly text does not parse."""


class DecodeError(QPUError):
    """A byte string is not a whole number of 64-bit instruction words."""
