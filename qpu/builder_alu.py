"""ALU instructions of the DSL: one documented method per add-ALU and mul-ALU op, nop, mov,
read-only reads, load immediate and raw words.

Add-ALU methods return an :class:`~qpu.builder_base.Issued` handle whose methods put a
mul-ALU op into the same instruction (dual issue).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple, Union

from .builder_base import Issued, KernelBase, Rotation, _call_text
from .errors import AssemblyError, SourceLocation
from .instruction import (
    NO_DEST,
    AluInstruction,
    LoadImmInstruction,
    RawWord,
)
from .isa.formats import LoadImmMode
from .isa.signals import Cond, Signal
from .isa.small_imm import float_bits
from .registers import (
    Operand,
    Register,
    kernel_location,
    operand_name,
)


class AluOps(KernelBase):
    """ALU operations, load immediate, reads and raw words."""

    # ---------------------------------------------------------------------------------------
    # ALU operations (add ALU, each returns a handle for the mul op)
    # ---------------------------------------------------------------------------------------

    def nop(self, *, sig: Optional[Signal] = None) -> Issued:
        """An add nop (with a mul nop unless one is chained): ``nop`` [``; signal``]."""
        where = kernel_location()
        return self._emit_alu(AluInstruction(signal=self._signal(sig, where, "nop")), where)

    def mov(self, dst: Register, src: Operand, *, cond: Optional[Cond] = None, set_flags: bool = False,
            sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """``mov dst, src`` on the add ALU (``or dst, src, src``)."""
        return self._add_op("mov", dst, (src,), cond, set_flags, sig, rotate)

    def fadd(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Float add: ``fadd dst, a, b`` (add opcode 1, Table 12 p.35)."""
        return self._add_op("fadd", dst, (a, b), cond, set_flags, sig, rotate)

    def fsub(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Float subtract: ``fsub dst, a, b`` (add opcode 2, Table 12 p.35)."""
        return self._add_op("fsub", dst, (a, b), cond, set_flags, sig, rotate)

    def fmin(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Float minimum: ``fmin dst, a, b`` (add opcode 3, Table 12 p.35)."""
        return self._add_op("fmin", dst, (a, b), cond, set_flags, sig, rotate)

    def fmax(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Float maximum: ``fmax dst, a, b`` (add opcode 4, Table 12 p.35)."""
        return self._add_op("fmax", dst, (a, b), cond, set_flags, sig, rotate)

    def fminabs(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
                set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Float minimum of absolute values: ``fminabs dst, a, b`` (add opcode 5, Table 12 p.35)."""
        return self._add_op("fminabs", dst, (a, b), cond, set_flags, sig, rotate)

    def fmaxabs(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
                set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Float maximum of absolute values: ``fmaxabs dst, a, b`` (add opcode 6, Table 12 p.35)."""
        return self._add_op("fmaxabs", dst, (a, b), cond, set_flags, sig, rotate)

    def ftoi(self, dst: Register, a: Operand, *, cond: Optional[Cond] = None, set_flags: bool = False,
             sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Float to signed integer: ``ftoi dst, a`` (add opcode 7, Table 12 p.35)."""
        return self._add_op("ftoi", dst, (a,), cond, set_flags, sig, rotate)

    def itof(self, dst: Register, a: Operand, *, cond: Optional[Cond] = None, set_flags: bool = False,
             sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Signed integer to float: ``itof dst, a`` (add opcode 8, Table 12 p.35)."""
        return self._add_op("itof", dst, (a,), cond, set_flags, sig, rotate)

    def iadd(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Integer add: ``add dst, a, b`` (add opcode 12, Table 12 p.35)."""
        return self._add_op("iadd", dst, (a, b), cond, set_flags, sig, rotate)

    def isub(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Integer subtract: ``sub dst, a, b`` (add opcode 13, Table 12 p.35)."""
        return self._add_op("isub", dst, (a, b), cond, set_flags, sig, rotate)

    def shr(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
            set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Logical shift right (by the low 5 bits of b): ``shr dst, a, b`` (add opcode 14, Table 12 p.35)."""
        return self._add_op("shr", dst, (a, b), cond, set_flags, sig, rotate)

    def asr(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
            set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Arithmetic shift right (by the low 5 bits of b): ``asr dst, a, b`` (add opcode 15, Table 12 p.35)."""
        return self._add_op("asr", dst, (a, b), cond, set_flags, sig, rotate)

    def ror(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
            set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Rotate right (by the low 5 bits of b): ``ror dst, a, b`` (add opcode 16, Table 12 p.35)."""
        return self._add_op("ror", dst, (a, b), cond, set_flags, sig, rotate)

    def shl(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
            set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Shift left (by the low 5 bits of b): ``shl dst, a, b`` (add opcode 17, Table 12 p.35)."""
        return self._add_op("shl", dst, (a, b), cond, set_flags, sig, rotate)

    def imin(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Signed integer minimum: ``min dst, a, b`` (add opcode 18, Table 12 p.35)."""
        return self._add_op("imin", dst, (a, b), cond, set_flags, sig, rotate)

    def imax(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Signed integer maximum: ``max dst, a, b`` (add opcode 19, Table 12 p.35)."""
        return self._add_op("imax", dst, (a, b), cond, set_flags, sig, rotate)

    def band(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Bitwise and: ``and dst, a, b`` (add opcode 20, Table 12 p.35)."""
        return self._add_op("band", dst, (a, b), cond, set_flags, sig, rotate)

    def bor(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
            set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Bitwise or: ``or dst, a, b`` (add opcode 21, Table 12 p.35)."""
        return self._add_op("bor", dst, (a, b), cond, set_flags, sig, rotate)

    def bxor(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Bitwise exclusive or: ``xor dst, a, b`` (add opcode 22, Table 12 p.35)."""
        return self._add_op("bxor", dst, (a, b), cond, set_flags, sig, rotate)

    def bnot(self, dst: Register, a: Operand, *, cond: Optional[Cond] = None, set_flags: bool = False,
             sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Bitwise not: ``not dst, a`` (add opcode 23, Table 12 p.35)."""
        return self._add_op("bnot", dst, (a,), cond, set_flags, sig, rotate)

    def clz(self, dst: Register, a: Operand, *, cond: Optional[Cond] = None, set_flags: bool = False,
            sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Count leading zeros: ``clz dst, a`` (add opcode 24, Table 12 p.35)."""
        return self._add_op("clz", dst, (a,), cond, set_flags, sig, rotate)

    def v8adds(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Per-byte unsigned add with saturation: ``v8adds dst, a, b`` (add opcode 30, Table 12 p.35)."""
        return self._add_op("v8adds", dst, (a, b), cond, set_flags, sig, rotate)

    def v8subs(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: None = None) -> Issued:
        """Per-byte unsigned subtract with saturation: ``v8subs dst, a, b`` (add opcode 31, Table 12 p.35)."""
        return self._add_op("v8subs", dst, (a, b), cond, set_flags, sig, rotate)

    # ---------------------------------------------------------------------------------------
    # Mul-only operations alone (add nop ; mul op)
    # ---------------------------------------------------------------------------------------

    def fmul(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Float multiply: ``nop ; fmul dst, a, b`` (mul opcode 1, Table 13)."""
        return self._mul_op("fmul", dst, (a, b), cond, set_flags, sig, rotate)

    def imul24(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """24-bit multiply, low 32 bits of the product: ``nop ; mul24 dst, a, b`` (mul opcode 2, Table 13)."""
        return self._mul_op("imul24", dst, (a, b), cond, set_flags, sig, rotate)

    def v8muld(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte multiply of values in [0, 1.0]: ``nop ; v8muld dst, a, b`` (mul opcode 3, Table 13)."""
        return self._mul_op("v8muld", dst, (a, b), cond, set_flags, sig, rotate)

    def v8min(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
              set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte unsigned minimum: ``nop ; v8min dst, a, b`` (mul opcode 4, Table 13)."""
        return self._mul_op("v8min", dst, (a, b), cond, set_flags, sig, rotate)

    def v8max(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
              set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte unsigned maximum: ``nop ; v8max dst, a, b`` (mul opcode 5, Table 13)."""
        return self._mul_op("v8max", dst, (a, b), cond, set_flags, sig, rotate)

    # ---------------------------------------------------------------------------------------
    # Other instructions
    # ---------------------------------------------------------------------------------------

    def read(self, src: Operand) -> Issued:
        """``nop ; read src``: read a register without feeding an ALU (vc4asm's ``read``).

        Emits its own instruction; to read in an existing instruction use the handle:
        ``k.fadd(...).read(vpm)``.
        """
        where = kernel_location()
        text = "read " + operand_name(src)
        s = self._read_source(src, where, text)
        return self._emit_alu(AluInstruction(reads=(s,)), where)

    def ldi(self, dst: Register, value: Union[int, float, Sequence[int]], dst2: Optional[Register] = None, *,
            cond: Optional[Cond] = None, set_flags: bool = False, signed: Optional[bool] = None) -> None:
        """Load immediate (guide p.33): ``dst`` (add ALU) and optionally ``dst2`` (mul ALU) get ``value``.

        ``value``: a 32-bit int (-2**31 .. 2**32-1), a float (its IEEE pattern), or 16
        per-element 2-bit ints: signed -2..1 if any is negative (or ``signed=True``),
        else unsigned 0..3.
        """
        where = kernel_location()
        text = _call_text("ldi", *([dst] + ([dst2] if dst2 is not None else []) + [value]))
        if isinstance(value, Register):
            raise AssemblyError(f"ldi value {value.name} is a register: the value comes second and an optional "
                                "second destination third, k.ldi(dst, value, dst2)", where, text)
        add_dst = self._dest(dst, where, text)
        mul_dst = NO_DEST if dst2 is None else self._dest(dst2, where, text)
        bits, mode = self._ldi_value(value, signed, where, text)
        ins = LoadImmInstruction(bits, mode, add_dst, mul_dst, self._cond(cond, where, text), bool(set_flags))
        self._append(ins, where)

    @staticmethod
    def _ldi_value(value: object, signed: Optional[bool], where: Optional[SourceLocation],
                   text: str) -> Tuple[int, LoadImmMode]:
        if isinstance(value, bool):
            raise AssemblyError("ldi value True/False: write 1 or 0", where, text)
        if isinstance(value, float):
            if signed is not None:
                raise AssemblyError("signed= only applies to per-element values", where, text)
            return float_bits(value), LoadImmMode.U32
        if isinstance(value, int):
            if signed is not None:
                raise AssemblyError("signed= only applies to per-element values", where, text)
            if not -(1 << 31) <= value < (1 << 32):
                raise AssemblyError(f"ldi value {value} does not fit in 32 bits (-2**31 .. 2**32-1)", where, text)
            return value & 0xFFFFFFFF, LoadImmMode.U32
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise AssemblyError(f"ldi value must be an int, a float or 16 per-element ints, not {value!r}",
                                where, text)
        values = list(value)
        if len(values) != 16 or any(isinstance(v, bool) or not isinstance(v, int) and not hasattr(v, "__index__")
                                    for v in values):
            raise AssemblyError(f"per-element ldi takes exactly 16 ints, got {values!r}", where, text)
        ints = [int(v) for v in values]
        if signed is None:
            signed = any(v < 0 for v in ints)
        lo, hi = (-2, 1) if signed else (0, 3)
        bad = [v for v in ints if not lo <= v <= hi]
        if bad:
            kind = "signed" if signed else "unsigned"
            raise AssemblyError(f"per-element {kind} values must be in {lo}..{hi}, got {bad}", where, text)
        # Figure 5 (p.33): the MS bit of element i is bit 16+i, the LS bit is bit i.
        bits = 0
        for i, v in enumerate(ints):
            bits |= ((v >> 1) & 1) << (16 + i) | (v & 1) << i
        return bits, (LoadImmMode.PER_ELEMENT_SIGNED if signed else LoadImmMode.PER_ELEMENT_UNSIGNED)

    def word(self, value: int) -> None:
        """Emit a raw 64-bit instruction word as is (``.word`` in text)."""
        where = kernel_location()
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
            raise AssemblyError(f"{value!r} is not a 64-bit word", where, ".word")
        self._append(RawWord(value), where)

