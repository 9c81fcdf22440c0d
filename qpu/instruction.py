"""The instruction model: one QPU instruction as operands, ops, modes and signals.

This is the level at which people think about QPU code ("fadd ra1, r0, r1 ;
fmul r2, r3, r4 ; ldtmu0").  The DSL builds these objects, the text assembler
parses them, the disassembler prints them, and ``qpu.encoding`` turns them into
64-bit words and back.  Field-level choices the model does not express (which
mux reads which file, unused fields) are made by the encoder's canonical rules;
``overrides`` carries raw field values for words whose bits those rules would
not reproduce (don't-care bits, unused muxes, unusual write swaps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

from .isa.formats import LoadImmMode
from .isa.ops import ADD_OPS, MUL_OPS, OpInfo
from .isa.registers import NOP_ADDR
from .isa.signals import BranchCond, Cond, Signal
from .isa.small_imm import ImmKind

FILE_A = "a"
FILE_B = "b"
BOTH_FILES: Tuple[str, ...] = (FILE_A, FILE_B)


@dataclass(frozen=True)
class Accumulator:
    """Read of accumulator r0-r5 through mux 0-5; ``unpack`` is only legal on r4 (pm=1)."""

    index: int
    unpack: int = 0


@dataclass(frozen=True)
class RegisterRead:
    """Read of a register-space address through raddr_a or raddr_b.

    ``files`` holds the file(s) the name may be read through: one for ra0-ra31,
    rb0-rb31 and file-specific I/O, both for I/O present in both (unif, vpm...).
    ``unpack`` is a regfile-A unpack (pm=0): it forces the read through file A.
    """

    addr: int
    files: Tuple[str, ...]
    unpack: int = 0


@dataclass(frozen=True)
class Immediate:
    """A small immediate read through the B mux, as the 32-bit pattern it delivers."""

    bits: int
    kind: ImmKind = ImmKind.INT


Source = Union[Accumulator, RegisterRead, Immediate]


@dataclass(frozen=True)
class Dest:
    """A write address with the file(s) it may be written through, and a pack mode.

    ``pack`` with ``mul_pack`` False is a regfile-A pack (pm=0, the written ALU must
    write file A); with ``mul_pack`` True it is the mul ALU's colour pack (pm=1).
    """

    addr: int
    files: Tuple[str, ...]
    pack: int = 0
    mul_pack: bool = False

    @property
    def is_nop(self) -> bool:
        return self.addr == NOP_ADDR


NO_DEST = Dest(NOP_ADDR, BOTH_FILES)


@dataclass(frozen=True)
class AluHalf:
    """One ALU's part of an ALU instruction.  ``cond`` None means the op's default."""

    op: OpInfo
    dst: Dest = NO_DEST
    a: Optional[Source] = None
    b: Optional[Source] = None
    cond: Optional[Cond] = None

    def effective_cond(self, provides_flags: bool = False) -> Cond:
        """The condition written to the word: the given one, else the canonical default.

        The default is "never" for a nop, and for an op whose result is discarded (no
        destination) unless it sets the flags: the guide's Table 2 notes that "never"
        gates the ALU, which saves power (GPU_FFT's shaders do this), and a discarded
        result with no flag update is unobservable.
        """
        if self.cond is not None:
            return self.cond
        if self.op.is_nop or (self.dst.is_nop and not provides_flags):
            return Cond.NEVER
        return Cond.ALWAYS

    def sources(self) -> Tuple[Source, ...]:
        """The operands the op consumes (a for unary ops; b defaults to a)."""
        if self.op.arity == 0:
            return ()
        a = self.a
        if a is None:
            raise ValueError(f"{self.op.name} needs an operand")
        if self.op.arity == 1:
            return (a,)
        b = self.b
        if b is None:
            raise ValueError(f"{self.op.name} needs two operands")
        return (a, b)


ADD_NOP = AluHalf(ADD_OPS[0])
MUL_NOP = AluHalf(MUL_OPS[0])

Overrides = Tuple[Tuple[str, int], ...]


@dataclass(frozen=True)
class AluInstruction:
    """An ALU word, with or without small immediate: two ops, a signal, flags, rotation.

    ``rotation``: None, 0 for "by r5", or 1..15 elements upwards (mul output).
    ``reads``: register/immediate reads that no mux consumes (vc4asm's ``read``):
    they still happen (a uniform is popped, a wait register stalls).
    """

    add: AluHalf = ADD_NOP
    mul: AluHalf = MUL_NOP
    signal: Signal = Signal.NONE
    setf: bool = False
    rotation: Optional[int] = None
    reads: Tuple[Source, ...] = ()
    overrides: Overrides = ()


@dataclass(frozen=True)
class LoadImmInstruction:
    """Load immediate: the 32-bit ``value`` field, replicated or per element (``mode``).

    Both ALUs output the immediate; ``add_dst``/``mul_dst`` say where each writes it.
    A half without a destination gets the condition "never" (it saves power).
    """

    value: int
    mode: LoadImmMode = LoadImmMode.U32
    add_dst: Dest = NO_DEST
    mul_dst: Dest = NO_DEST
    cond: Optional[Cond] = None  # for each half with a destination; default always
    setf: bool = False
    overrides: Overrides = ()


@dataclass(frozen=True)
class SemaphoreInstruction:
    """Increment (release, ``acquire`` False) or decrement (acquire) a counting semaphore."""

    acquire: bool
    semaphore: int
    add_dst: Dest = NO_DEST
    mul_dst: Dest = NO_DEST
    cond: Optional[Cond] = None  # for each half with a destination; default always
    setf: bool = False
    overrides: Overrides = ()


@dataclass(frozen=True)
class Label:
    """A branch target by name; the assembler resolves it to an instruction index."""

    name: str


@dataclass(frozen=True)
class BranchInstruction:
    """A branch: target = immediate (+ PC + 4 instructions if relative) (+ ra[reg] element 15).

    ``target`` is the raw 32-bit immediate (an int) or a Label that the assembler
    turns into the immediate.  ``add_dst``/``mul_dst`` receive the link address
    (the branch's address + 4 instructions) when the branch is taken.
    """

    target: Union[int, Label]
    cond: BranchCond = BranchCond.ALWAYS
    relative: bool = True
    reg: Optional[int] = None
    add_dst: Dest = NO_DEST
    mul_dst: Dest = NO_DEST
    setf: bool = False
    overrides: Overrides = ()


@dataclass(frozen=True)
class RawWord:
    """A word kept as is: reserved encodings, or words written as ``.word`` in text."""

    word: int
    reason: str = field(default="", compare=False)


Instruction = Union[AluInstruction, LoadImmInstruction, SemaphoreInstruction, BranchInstruction, RawWord]
