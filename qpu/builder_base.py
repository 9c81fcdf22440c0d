"""The builder's machinery: instruction slots, labels, operand checking, emission, dual issue.

``qpu.builder.Kernel`` is this class plus the op methods of ``builder_alu``,
``builder_control`` and ``builder_io``.  Every emitted instruction is encoded at
once (``qpu.encoding.encode``) so impossible combinations fail at the kernel line
that made them; :meth:`KernelBase.build` resolves labels into a Program.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .disassembler import format_instruction
from .encoding import encode
from .errors import AssemblyError, EncodingError, SourceLocation
from .instruction import (
    ADD_NOP,
    MUL_NOP,
    Accumulator,
    AluHalf,
    AluInstruction,
    BranchInstruction,
    Dest,
    Immediate,
    Instruction,
    Source,
)
from .instruction import Label as _ModelLabel
from .isa.ops import ADD_OPS_BY_DSL, MOV_ADD, MOV_MUL, MUL_OPS_BY_DSL, OpInfo
from .isa.registers import NAMES as _REG_NAMES
from .isa.signals import BranchCond, Cond, Signal
from .program import Program
from .registers import (
    Operand,
    Register,
    kernel_location,
    operand_name,
    r4,
    r5,
    small_immediate,
)

Target = Union["Label", int]
Rotation = Union[int, Register]

_LABEL_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*\Z")
_RESERVED_LABEL_NAMES = frozenset(n.lower() for names in _REG_NAMES.values() for n in names)



def _text(ins: Instruction) -> str:
    """The instruction in the text syntax, for messages ('' if it cannot be rendered)."""
    try:
        return format_instruction(ins)
    except Exception:  # a half-built model may not render; the message still has the reason
        return ""


def _call_text(name: str, *operands: object) -> str:
    return f"{name} " + ", ".join(operand_name(o) for o in operands) if operands else name


class Label:
    """A branch target.  Create with :meth:`Kernel.label`, place with :meth:`Kernel.bind`
    (or both at once with :meth:`Kernel.here`); branches may refer to it before it is bound."""

    __slots__ = ("name", "index", "created_at", "bound_at", "_kernel")

    def __init__(self, name: str, kernel: KernelBase, created_at: Optional[SourceLocation]) -> None:
        self.name = name
        self.index: Optional[int] = None  # instruction index once bound
        self.created_at = created_at
        self.bound_at: Optional[SourceLocation] = None
        self._kernel = kernel

    @property
    def is_bound(self) -> bool:
        return self.index is not None

    def __repr__(self) -> str:
        where = "unbound" if self.index is None else f"at instruction {self.index}"
        return f"Label({self.name!r}, {where})"


class _Slot:
    """One emitted instruction: the model, where it was written, the label a branch targets."""

    __slots__ = ("ins", "location", "label")

    def __init__(self, ins: Instruction, location: Optional[SourceLocation], label: Optional[Label]) -> None:
        self.ins = ins
        self.location = location
        self.label = label



class Issued:
    """Handle on an ALU instruction just emitted: add its mul-ALU op (dual issue) or a read.

    ``k.fadd(ra1, r0, r1).fmul(r2, r3, r4)`` is ONE instruction.  The handle must be used
    before the next instruction is emitted, and takes one mul op.
    """

    __slots__ = ("_kernel", "_index")

    def __init__(self, kernel: KernelBase, index: int) -> None:
        self._kernel = kernel
        self._index = index

    @property
    def index(self) -> int:
        """Position of the instruction in the kernel."""
        return self._index

    @property
    def instruction(self) -> Instruction:
        """The instruction model as it is now."""
        return self._kernel._slots[self._index].ins

    def fmul(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
             set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Float multiply (mul ALU): ``fmul dst, a, b`` (mul opcode 1, Table 13)."""
        return self._kernel._dual(self, "fmul", dst, (a, b), cond, set_flags, sig, rotate)

    def imul24(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """24-bit multiply, low 32 bits of the product (mul ALU): ``mul24 dst, a, b`` (mul opcode 2, Table 13)."""
        return self._kernel._dual(self, "imul24", dst, (a, b), cond, set_flags, sig, rotate)

    def v8muld(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte multiply of values in [0, 1.0] (mul ALU): ``v8muld dst, a, b`` (mul opcode 3, Table 13)."""
        return self._kernel._dual(self, "v8muld", dst, (a, b), cond, set_flags, sig, rotate)

    def v8min(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
              set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte unsigned minimum (mul ALU): ``v8min dst, a, b`` (mul opcode 4, Table 13)."""
        return self._kernel._dual(self, "v8min", dst, (a, b), cond, set_flags, sig, rotate)

    def v8max(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
              set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte unsigned maximum (mul ALU): ``v8max dst, a, b`` (mul opcode 5, Table 13)."""
        return self._kernel._dual(self, "v8max", dst, (a, b), cond, set_flags, sig, rotate)

    def v8adds(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte unsigned add with saturation (mul ALU): ``v8adds dst, a, b`` (mul opcode 6, Table 13)."""
        return self._kernel._dual(self, "v8adds", dst, (a, b), cond, set_flags, sig, rotate)

    def v8subs(self, dst: Register, a: Operand, b: Operand, *, cond: Optional[Cond] = None,
               set_flags: bool = False, sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """Per-byte unsigned subtract with saturation (mul ALU): ``v8subs dst, a, b`` (mul opcode 7, Table 13)."""
        return self._kernel._dual(self, "v8subs", dst, (a, b), cond, set_flags, sig, rotate)

    def mov(self, dst: Register, src: Operand, *, cond: Optional[Cond] = None, set_flags: bool = False,
            sig: Optional[Signal] = None, rotate: Optional[Rotation] = None) -> Issued:
        """``mov dst, src`` on the mul ALU (``v8min dst, src, src``); ``rotate=n`` rotates the result
        up by n elements (guide Table 5, p.29-30)."""
        return self._kernel._dual(self, "mov", dst, (src,), cond, set_flags, sig, rotate)

    def nop(self, *, sig: Optional[Signal] = None) -> Issued:
        """An explicit mul nop (changes nothing; ``sig=`` adds a signal to the instruction)."""
        return self._kernel._dual_signal(self, sig)

    def read(self, src: Operand) -> Issued:
        """Also read ``src`` in this instruction without feeding an ALU (vc4asm's ``read``):
        the read still happens (a uniform is consumed, a wait register stalls)."""
        return self._kernel._add_read(self, src)



class KernelBase:
    """State, operand checking, emission and dual-issue machinery of :class:`qpu.builder.Kernel`.

    ``name`` names the Program; ``base_address`` (the program's bus address) is only
    needed for absolute branches (``bra``) to labels.
    """

    def __init__(self, name: str = "kernel", *, base_address: Optional[int] = None) -> None:
        self.name = name
        self.base_address = base_address
        self._slots: List[_Slot] = []
        self._labels: List[Label] = []
        self._label_names: Dict[str, Label] = {}

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def instructions(self) -> Tuple[Instruction, ...]:
        """The instruction models emitted so far."""
        return tuple(s.ins for s in self._slots)

    @property
    def locations(self) -> Tuple[Optional[SourceLocation], ...]:
        """Where each instruction was written (the kernel's file:line)."""
        return tuple(s.location for s in self._slots)

    # ---------------------------------------------------------------------------------------
    # Operands
    # ---------------------------------------------------------------------------------------

    @staticmethod
    def _dest(dst: object, where: Optional[SourceLocation], text: str) -> Dest:
        if isinstance(dst, Register):
            if dst.write is None:
                if dst.read is not None and dst.read == r5.read:
                    hint = "write r5 through r5quad (element 0 of each quad) or r5rep (element 0 to all)"
                elif dst.read is not None and dst.read == r4.read:
                    hint = "r4 receives SFU results and TMU/TLB loads only"
                else:
                    hint = dst.doc
                raise AssemblyError(f"{dst.name} cannot be written ({hint})", where, text)
            return dst.write
        raise AssemblyError(f"destination must be a register (such as r0, ra1, vpm, null), not {dst!r}",
                            where, text)

    @staticmethod
    def _source(src: object, where: Optional[SourceLocation], text: str) -> Source:
        if isinstance(src, Register):
            if src.read is None:
                raise AssemblyError(f"{src.name} cannot be read ({src.doc})", where, text)
            return src.read
        if isinstance(src, Immediate):
            return src
        if isinstance(src, (int, float)) and not isinstance(src, bool):
            try:
                return small_immediate(src)
            except AssemblyError as exc:
                raise AssemblyError(exc.message, where, text) from None
        raise AssemblyError(f"operand must be a register or a small-immediate number, not {src!r}", where, text)

    @staticmethod
    def _cond(cond: object, where: Optional[SourceLocation], text: str) -> Optional[Cond]:
        if cond is None or isinstance(cond, Cond):
            return cond
        if isinstance(cond, BranchCond):
            raise AssemblyError(f"cond={cond!r} is a branch condition; ALU writes take a Cond "
                                "(Cond.ZS, Cond.ZC, Cond.NS, Cond.NC, Cond.CS, Cond.CC, Cond.ALWAYS, Cond.NEVER)",
                                where, text)
        raise AssemblyError(f"cond={cond!r}: use a qpu.isa.signals.Cond, e.g. Cond.ZS "
                            f"(one of {', '.join('Cond.' + c.name for c in Cond)})", where, text)

    @staticmethod
    def _signal(sig: object, where: Optional[SourceLocation], text: str) -> Signal:
        if sig is None:
            return Signal.NONE
        if isinstance(sig, Signal):
            return sig
        raise AssemblyError(f"sig={sig!r}: use a qpu.isa.signals.Signal, e.g. Signal.LOAD_TMU0", where, text)

    @staticmethod
    def _rotation(rotate: object, where: Optional[SourceLocation], text: str) -> Optional[int]:
        if rotate is None:
            return None
        if isinstance(rotate, Register):
            if rotate.read == r5.read:
                return 0  # small-immediate code 48: rotate by r5 element 0 (guide Table 5)
            raise AssemblyError(f"rotate={rotate.name}: only r5 can give the rotation amount", where, text)
        if isinstance(rotate, int) and not isinstance(rotate, bool) and 1 <= rotate <= 15:
            return rotate
        raise AssemblyError(f"rotate={rotate!r}: the mul output rotates up by 1..15 elements, or by r5 "
                            "(guide Table 5); for a rotation down by n write 16 - n", where, text)

    def _half(self, op: OpInfo, dst: object, srcs: Sequence[object], cond: object,
              where: Optional[SourceLocation], text: str) -> AluHalf:
        d = self._dest(dst, where, text)
        sources = [self._source(s, where, text) for s in srcs]
        if op in (MOV_ADD, MOV_MUL) and len(sources) == 1:
            a: Optional[Source] = sources[0]
            b: Optional[Source] = sources[0]
        elif op.arity == 1:
            a, b = sources[0], None
        else:
            a, b = sources[0], sources[1]
        return AluHalf(op, d, a, b, self._cond(cond, where, text))

    # ---------------------------------------------------------------------------------------
    # Emission
    # ---------------------------------------------------------------------------------------

    @staticmethod
    def _check(ins: Instruction, where: Optional[SourceLocation]) -> None:
        """Encode now so that impossible combinations fail at the call that made them."""
        probe = ins
        if isinstance(ins, BranchInstruction) and isinstance(ins.target, _ModelLabel):
            probe = replace(ins, target=0)  # the offset is only known in build()
        try:
            encode(probe)
        except EncodingError as exc:
            raise AssemblyError(str(exc), where, _text(ins)) from None

    def _append(self, ins: Instruction, where: Optional[SourceLocation], label: Optional[Label] = None) -> int:
        self._check(ins, where)
        self._slots.append(_Slot(ins, where, label))
        return len(self._slots) - 1

    def _emit_alu(self, ins: AluInstruction, where: Optional[SourceLocation]) -> Issued:
        return Issued(self, self._append(ins, where))

    def _add_op(self, dsl: str, dst: Register, srcs: Tuple[Operand, ...], cond: Optional[Cond], set_flags: bool,
                sig: Optional[Signal], rotate: object) -> Issued:
        where = kernel_location()
        text = _call_text(dsl, dst, *srcs)
        if rotate is not None:
            raise AssemblyError("rotate= rotates the mul ALU's output only: use a mul op, e.g. "
                                "k.nop().mov(dst, src, rotate=n) or .fmul(..., rotate=n)", where, text)
        op = MOV_ADD if dsl == "mov" else ADD_OPS_BY_DSL[dsl]
        half = self._half(op, dst, srcs, cond, where, text)
        ins = AluInstruction(add=half, mul=MUL_NOP, signal=self._signal(sig, where, text), setf=bool(set_flags))
        return self._emit_alu(ins, where)

    def _mul_op(self, dsl: str, dst: Register, srcs: Tuple[Operand, ...], cond: Optional[Cond], set_flags: bool,
                sig: Optional[Signal], rotate: object) -> Issued:
        where = kernel_location()
        text = "nop ; " + _call_text(dsl, dst, *srcs)
        half = self._half(MUL_OPS_BY_DSL[dsl], dst, srcs, cond, where, text)
        ins = AluInstruction(add=ADD_NOP, mul=half, signal=self._signal(sig, where, text), setf=bool(set_flags),
                             rotation=self._rotation(rotate, where, text))
        return self._emit_alu(ins, where)

    def _open_handle(self, handle: Issued, where: Optional[SourceLocation], text: str) -> AluInstruction:
        if handle._kernel is not self:
            raise AssemblyError("this handle belongs to another Kernel", where, text)
        if handle._index != len(self._slots) - 1:
            raise AssemblyError(
                f"dual issue must directly follow its add op: instruction {handle._index} is no longer the last "
                "one (chain the call: k.fadd(...).fmul(...))", where, text)
        ins = self._slots[handle._index].ins
        assert isinstance(ins, AluInstruction)
        return ins

    def _replace_last(self, ins: AluInstruction, where: Optional[SourceLocation]) -> None:
        self._check(ins, where)
        self._slots[-1].ins = ins

    def _dual(self, handle: Issued, dsl: str, dst: Register, srcs: Tuple[Operand, ...], cond: Optional[Cond],
              set_flags: bool, sig: Optional[Signal], rotate: object) -> Issued:
        where = kernel_location()
        base = self._slots[handle._index].ins if 0 <= handle._index < len(self._slots) else None
        text = (_text(base) if base is not None else "?") + " ; " + _call_text(dsl, dst, *srcs)
        ins = self._open_handle(handle, where, text)
        if not ins.mul.op.is_nop:
            raise AssemblyError("this instruction already has a mul op: one mul op per instruction", where, text)
        op = MOV_MUL if dsl == "mov" else MUL_OPS_BY_DSL[dsl]
        half = self._half(op, dst, srcs, cond, where, text)
        setf = ins.setf
        if set_flags:
            if not ins.add.op.is_nop:
                raise AssemblyError(
                    "set_flags on the mul op: the flags come from the add ALU unless it is a nop (guide Table 1 "
                    "p.27, vc4asm addendum); put set_flags=True on the add op instead", where, text)
            setf = True
        signal = ins.signal
        new_sig = self._signal(sig, where, text)
        if new_sig is not Signal.NONE:
            if signal is not Signal.NONE:
                raise AssemblyError(f"signal given on both halves ({signal.name} and {new_sig.name}): an instruction "
                                    "carries one signal", where, text)
            signal = new_sig
        rotation = self._rotation(rotate, where, text)
        self._replace_last(replace(ins, mul=half, setf=setf, signal=signal, rotation=rotation), where)
        return handle

    def _dual_signal(self, handle: Issued, sig: Optional[Signal]) -> Issued:
        where = kernel_location()
        ins = self._open_handle(handle, where, "nop")
        new_sig = self._signal(sig, where, _text(ins))
        if new_sig is not Signal.NONE:
            if ins.signal is not Signal.NONE:
                raise AssemblyError(f"signal given on both halves ({ins.signal.name} and {new_sig.name})",
                                    where, _text(ins))
            self._replace_last(replace(ins, signal=new_sig), where)
        return handle

    def _read_source(self, src: object, where: Optional[SourceLocation], text: str) -> Source:
        s = self._source(src, where, text)
        if isinstance(s, Accumulator):
            raise AssemblyError(f"read {operand_name(src)}: accumulators need no read port; read only "
                                "register-space locations or small immediates", where, text)
        return s

    def _add_read(self, handle: Issued, src: Operand) -> Issued:
        where = kernel_location()
        ins = self._open_handle(handle, where, "read " + operand_name(src))
        text = _text(ins) + " ; read " + operand_name(src)
        s = self._read_source(src, where, text)
        self._replace_last(replace(ins, reads=ins.reads + (s,)), where)
        return handle

    # ---------------------------------------------------------------------------------------
    # Result
    # ---------------------------------------------------------------------------------------

    def build(self) -> Program:
        """Resolve labels and encode every instruction into a Program (with source locations)."""
        labels = {lbl.name: lbl.index for lbl in self._labels if lbl.index is not None}
        words: List[int] = []
        for i, slot in enumerate(self._slots):
            if slot.label is not None and slot.label.index is None:
                raise AssemblyError(
                    f"label {slot.label.name!r} (created at {slot.label.created_at}) is never bound: call "
                    "k.bind(label) where the branch should land", slot.location, _text(slot.ins))
            try:
                words.append(encode(slot.ins, i, labels, self.base_address))
            except EncodingError as exc:
                raise AssemblyError(str(exc), slot.location, _text(slot.ins)) from None
        return Program(words, labels=dict(labels), source=[s.location for s in self._slots], name=self.name)

