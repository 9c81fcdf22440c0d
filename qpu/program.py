"""A QPU program: machine words plus what is known about where they came from.

Everything that produces code (the DSL, the text assembler, loading a .bin)
produces a ``Program``; everything that consumes code (the checker, the
disassembler, the emulator, the runtime) accepts one, or plain bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from .encoding import bytes_from_words, decode, words_from_bytes
from .errors import SourceLocation
from .instruction import Instruction


@dataclass
class Program:
    """Machine code with optional labels and per-instruction source locations.

    ``words[i]`` is instruction i (byte offset 8*i).  ``source[i]`` is where it was
    written (kernel file and line) when known.  ``labels`` maps label names to
    instruction indices.
    """

    words: List[int]
    labels: Dict[str, int] = field(default_factory=dict)
    source: List[Optional[SourceLocation]] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        self.words = [int(w) for w in self.words]
        for w in self.words:
            if not 0 <= w < 1 << 64:
                raise ValueError(f"not a 64-bit instruction word: {w!r}")
        if len(self.source) < len(self.words):
            self.source = list(self.source) + [None] * (len(self.words) - len(self.source))

    def __len__(self) -> int:
        return len(self.words)

    def to_bytes(self) -> bytes:
        return bytes_from_words(self.words)

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def instructions(self) -> List[Instruction]:
        return [decode(w) for w in self.words]

    def location(self, index: int) -> Optional[SourceLocation]:
        if 0 <= index < len(self.source):
            return self.source[index]
        return None

    def label_at(self, index: int) -> Optional[str]:
        for name, i in self.labels.items():
            if i == index:
                return name
        return None

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview], name: str = "") -> Program:
        return cls(words_from_bytes(data), name=name)

    @classmethod
    def from_words(cls, words: Sequence[int], name: str = "") -> Program:
        return cls(list(words), name=name)


ProgramLike = Union[Program, bytes, bytearray, memoryview, Sequence[int]]


def as_program(code: ProgramLike, name: str = "") -> Program:
    """Accept a Program, a byte string, or a sequence of 64-bit words."""
    if isinstance(code, Program):
        return code
    if isinstance(code, (bytes, bytearray, memoryview)):
        return Program.from_bytes(code, name)
    return Program.from_words(list(code), name)
