"""The Python DSL's builder: ``Kernel`` emits QPU instructions, ``assemble`` makes a Program.

A kernel is a plain Python function that receives a :class:`Kernel` and calls one
method per instruction (in the style of llvmlite's IRBuilder)::

    from qpu.dsl import *

    def add_one(k: Kernel) -> None:
        k.mov(ra0, uniform)                    # or ra0, unif, unif
        k.iadd(r0, ra0, 1).fmul(r1, r2, r3)    # add ALU and mul ALU in ONE instruction
        k.exit()

    program = assemble(add_one)                # -> qpu.program.Program

Every method builds a ``qpu.instruction`` model and encodes it right away through
``qpu.encoding.encode`` (the canonical rules shared with the text assembler), so a
combination that does not fit in one 64-bit word raises :class:`~qpu.errors.AssemblyError`
at the call that made it impossible, with the kernel's file:line, the instruction's
text and the encoder's reason.  Branch targets are resolved by :meth:`Kernel.build`.

Add-ALU methods return an :class:`Issued` handle whose methods are the mul-ALU ops:
``k.fadd(ra1, r0, r1).fmul(r2, r3, r4)`` dual-issues both into the same instruction.

Options are keyword-only: ``cond=`` (:class:`~qpu.isa.signals.Cond`), ``set_flags=``,
``sig=`` (:class:`~qpu.isa.signals.Signal`), ``rotate=`` (mul ops only: 1..15 or ``r5``).
Flags come from the add ALU unless it is a nop (guide Table 1, p.27; vc4asm addendum),
so ``set_flags`` on a mul op is only accepted when the add half is a nop.

Text mnemonic <-> DSL method (docs/syntax.md has the text syntax):

=======================  ==============================================================
text                     DSL
=======================  ==============================================================
nop                      k.nop() / handle.nop()
fadd fsub fmin fmax      k.fadd k.fsub k.fmin k.fmax
fminabs fmaxabs          k.fminabs k.fmaxabs
ftoi itof                k.ftoi k.itof
add sub                  k.iadd k.isub
shr asr ror shl          k.shr k.asr k.ror k.shl
min max                  k.imin k.imax
and or xor not clz       k.band k.bor k.bxor k.bnot k.clz
v8adds v8subs            k.v8adds k.v8subs (add ALU) / handle.v8adds handle.v8subs (mul ALU)
mov (add / mul)          k.mov / handle.mov
fmul mul24 v8muld        k.fmul k.imul24 k.v8muld (alone) / handle.fmul ... (dual issue)
v8min v8max              k.v8min k.v8max / handle.v8min handle.v8max
x >> n (mul rotation)    rotate=n on a mul op (``rotate=r5`` for ``>> r5``)
.cond / .setf            cond=Cond.ZS / set_flags=True
; ldtmu0, ; thrend ...   sig=Signal.LOAD_TMU0 ... ; or k.ldtmu0(), k.exit(), k.thread_switch()
read SRC                 k.read(src) (own instruction) / handle.read(src) (same instruction)
ldi                      k.ldi(dst, value[, dst2])
sacq n / srel n          k.sema_down(n) / k.sema_up(n)
brr / bra                k.brr(label) / k.bra(reg or label)
LABEL:                   k.here("name"), or lbl = k.label(); ...; k.bind(lbl)
.word 0x...              k.word(0x...)
=======================  ==============================================================

Thread safety: there is no module-level mutable state; each Kernel is independent.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import macros as _macros
from .disassembler import format_instruction
from .encoding import encode
from .errors import AssemblyError, EncodingError, SourceLocation
from .instruction import (
    ADD_NOP,
    MUL_NOP,
    NO_DEST,
    Accumulator,
    AluHalf,
    AluInstruction,
    BranchInstruction,
    Dest,
    Immediate,
    Instruction,
    LoadImmInstruction,
    RawWord,
    RegisterRead,
    SemaphoreInstruction,
    Source,
)
from .instruction import Label as _ModelLabel
from .isa.formats import LoadImmMode
from .isa.ops import ADD_OPS_BY_DSL, MOV_ADD, MOV_MUL, MUL_OPS_BY_DSL, OpInfo
from .isa.registers import NAMES as _REG_NAMES
from .isa.signals import BranchCond, Cond, Signal
from .isa.small_imm import float_bits
from .program import Program
from .registers import (
    Operand,
    Register,
    host_interrupt,
    kernel_location,
    mutex,
    null,
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

    def __init__(self, name: str, kernel: Kernel, created_at: Optional[SourceLocation]) -> None:
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

    def __init__(self, kernel: Kernel, index: int) -> None:
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


class CountedLoop:
    """The context manager returned by :meth:`Kernel.loop`."""

    __slots__ = ("_kernel", "_counter", "_count", "_name", "_top")

    def __init__(self, kernel: Kernel, counter: Register, count: Union[int, Register, None],
                 name: Optional[str]) -> None:
        self._kernel = kernel
        self._counter = counter
        self._count = count
        self._name = name
        self._top: Optional[Label] = None

    def __enter__(self) -> Label:
        k = self._kernel
        if isinstance(self._count, int):
            k.ldi(self._counter, self._count)
        elif isinstance(self._count, Register):
            k.mov(self._counter, self._count)
        self._top = k.here(self._name)
        return self._top

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None or self._top is None:
            return  # the body failed: emit nothing more, let the error through
        k = self._kernel
        k.isub(self._counter, self._counter, 1, set_flags=True)
        k.brr(self._top, cond=BranchCond.ANY_ZC, delay="nop")


class Kernel:
    """Builder of one QPU program; pass it to your kernel function, or use :func:`assemble`.

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

    # Semaphores, mutex, interrupt, program end, signals

    def _semaphore(self, acquire: bool, n: int) -> None:
        where = kernel_location()
        text = ("sacq " if acquire else "srel ") + repr(n)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 15:
            raise AssemblyError(f"semaphore {n!r}: there are 16 semaphores, 0..15 (guide p.33)", where, text)
        self._append(SemaphoreInstruction(acquire, n), where)

    def sema_up(self, n: int) -> None:
        """Increment semaphore ``n`` (0..15); stalls at 15 (``srel n``, guide p.33)."""
        self._semaphore(False, n)

    def sema_down(self, n: int) -> None:
        """Decrement semaphore ``n`` (0..15); stalls at 0 (``sacq n``, guide p.33)."""
        self._semaphore(True, n)

    def mutex_acquire(self) -> Issued:
        """``mov -, mutex``: reading the mutex stalls until it is granted (guide p.24)."""
        return self.mov(null, mutex)

    def mutex_release(self) -> Issued:
        """``mov mutex, null``: any write releases the mutex (guide p.24)."""
        return self.mov(mutex, null)

    def interrupt(self) -> Issued:
        """``mov host_int, 1``: interrupt the host; the value must be non-zero (vc4asm addendum)."""
        return self.mov(host_interrupt, 1)

    def exit(self, interrupt: bool = True) -> None:
        """End the program: [host interrupt,] ``nop ; thrend``, then its two delay slots as nops.

        The program-end instruction must not write regfile A or B, and the last three
        instructions must not touch location 14 or the uniforms (guide p.22).
        """
        if interrupt:
            self.interrupt()
        self.nop(sig=Signal.PROGRAM_END)
        self.nop()
        self.nop()

    def thread_switch(self) -> Issued:
        """``nop ; thrsw``: thread switch after two delay slots (guide p.21)."""
        return self.nop(sig=Signal.THREAD_SWITCH)

    def last_thread_switch(self) -> Issued:
        """``nop ; lthrsw``: the final thread switch of a shader (guide p.21)."""
        return self.nop(sig=Signal.LAST_THREAD_SWITCH)

    def ldtmu0(self) -> Issued:
        """``nop ; ldtmu0``: TMU0 data arrives in r4 for the next instruction (guide p.23)."""
        return self.nop(sig=Signal.LOAD_TMU0)

    def ldtmu1(self) -> Issued:
        """``nop ; ldtmu1``: TMU1 data arrives in r4 for the next instruction."""
        return self.nop(sig=Signal.LOAD_TMU1)

    # ---------------------------------------------------------------------------------------
    # Labels and branches
    # ---------------------------------------------------------------------------------------

    def label(self, name: Optional[str] = None) -> Label:
        """A new, unbound label (``name`` defaults to a fresh ``_L<n>``); bind it with :meth:`bind`."""
        where = kernel_location()
        if name is None:
            n = len(self._labels)
            while f"_L{n}" in self._label_names:
                n += 1
            name = f"_L{n}"
        elif not isinstance(name, str) or not _LABEL_NAME.match(name):
            raise AssemblyError(f"label name {name!r}: use letters, digits, '_' and '.' (not starting with a digit)",
                                where, f"{name}:")
        elif name.lower() in _RESERVED_LABEL_NAMES:
            raise AssemblyError(f"label name {name!r} is a register name; choose another", where, f"{name}:")
        if name in self._label_names:
            other = self._label_names[name]
            raise AssemblyError(f"duplicate label {name!r} (first created at {other.created_at})", where, f"{name}:")
        lbl = Label(name, self, where)
        self._labels.append(lbl)
        self._label_names[name] = lbl
        return lbl

    def bind(self, label: Label) -> Label:
        """Place ``label`` here: it names the next instruction emitted."""
        where = kernel_location()
        if not isinstance(label, Label) or label._kernel is not self:
            raise AssemblyError(f"{label!r} is not a label of this kernel (create it with k.label())", where)
        if label.index is not None:
            raise AssemblyError(f"label {label.name!r} is already bound (at {label.bound_at})", where,
                                f"{label.name}:")
        label.index = len(self._slots)
        label.bound_at = where
        return label

    def here(self, name: Optional[str] = None) -> Label:
        """Create a label and bind it here (``name:`` in text)."""
        return self.bind(self.label(name))

    def brr(self, target: Target, cond: BranchCond = BranchCond.ALWAYS, link: Optional[Register] = None,
            reg: Optional[Register] = None, *, set_flags: bool = False, delay: Optional[str] = None) -> None:
        """Relative branch to a label (or a raw byte offset from the branch + 4 instructions).

        ``cond``: a BranchCond over the 16 elements' flags (guide Table 11 p.34-35).  ``link``
        receives the return address (branch + 4 instructions).  ``reg`` (ra0..ra31) adds its
        element 15 (vc4asm addendum) to the target.  The three following instructions always
        execute (guide p.34); fill them yourself or pass ``delay="nop"`` for three nops.
        """
        self._branch(True, target, cond, link, reg, set_flags, delay)

    def bra(self, target: Union[Target, Register] = 0, cond: BranchCond = BranchCond.ALWAYS,
            link: Optional[Register] = None, reg: Optional[Register] = None, *, set_flags: bool = False,
            delay: Optional[str] = None) -> None:
        """Absolute branch to an address in a register (``k.bra(ra1)``), a register plus an
        immediate (``k.bra(0x40, reg=ra1)``), or a label if the Kernel has a ``base_address``.
        Options as :meth:`brr`."""
        if isinstance(target, Register):
            if reg is not None:
                raise AssemblyError("bra: give the register either as target or as reg=, not both",
                                    kernel_location(), "bra")
            self._branch(False, 0, cond, link, target, set_flags, delay)
        else:
            self._branch(False, target, cond, link, reg, set_flags, delay)

    def _branch(self, relative: bool, target: object, cond: object, link: Optional[Register],
                reg: Optional[Register], set_flags: bool, delay: Optional[str]) -> None:
        where = kernel_location()
        name = "brr" if relative else "bra"
        shown = target.name if isinstance(target, Label) else repr(target)
        text = f"{name} {shown}" + (f" + {reg.name}" if isinstance(reg, Register) else "")
        if not isinstance(cond, BranchCond):
            raise AssemblyError(f"branch cond={cond!r}: use a BranchCond (all/any of the 16 elements' flags), "
                                "e.g. BranchCond.ANY_ZC", where, text)
        reg_addr = None
        if reg is not None:
            src = reg.read if isinstance(reg, Register) else None
            if not (isinstance(src, RegisterRead) and src.files == ("a",) and src.addr < 32 and not src.unpack):
                raise AssemblyError(f"branch register {operand_name(reg)}: a branch adds a regfile-A register "
                                    "(ra0..ra31)", where, text)
            reg_addr = src.addr
        link_dst = NO_DEST if link is None else self._dest(link, where, text)
        label: Optional[Label] = None
        model_target: Union[int, _ModelLabel]
        if isinstance(target, Label):
            if target._kernel is not self:
                raise AssemblyError(f"label {target.name!r} belongs to another kernel", where, text)
            if not relative and self.base_address is None:
                raise AssemblyError(f"bra to label {target.name!r} needs the program's bus address: create the "
                                    "Kernel with base_address=..., or use brr", where, text)
            label, model_target = target, _ModelLabel(target.name)
        elif isinstance(target, int) and not isinstance(target, bool):
            model_target = target
        else:
            raise AssemblyError(f"branch target {target!r}: use a Label (k.label()) or an int", where, text)
        if delay not in (None, "nop"):
            raise AssemblyError(f"delay={delay!r}: use delay='nop' for three nop delay slots, or None to fill "
                                "them yourself", where, text)
        ins = BranchInstruction(model_target, cond, relative, reg_addr, link_dst, NO_DEST, bool(set_flags))
        self._append(ins, where, label)
        if delay == "nop":
            for _ in range(3):
                self.nop()

    def loop(self, counter: Register, count: Union[int, Register, None] = None, *,
             name: Optional[str] = None) -> CountedLoop:
        """A counted loop, as a context manager: the body runs ``count`` times (``count`` >= 1)::

            with k.loop(ra5, 16) as top:   # top: the Label of the first body instruction
                ...body...

        On entry: ``ldi counter, count`` (``mov counter, count`` for a register; nothing
        if ``count`` is None: the counter is already set), then the loop label.  On exit:
        ``sub.setf counter, counter, 1 ; brr.anynz label`` and three nop delay slots.  The
        body must not change ``counter``; the flags are overwritten each iteration.  The
        arguments are checked here, so a bad counter fails at this line.
        """
        where = kernel_location()
        text = f"loop({operand_name(counter)}, {count!r})"
        # Check the decrement now, so that an unusable counter fails here.
        decrement = AluInstruction(self._half(ADD_OPS_BY_DSL["isub"], counter, (counter, 1), None, where, text),
                                   setf=True)
        try:
            self._check(decrement, where)
        except AssemblyError as exc:
            hint = (" (the loop counter must be an accumulator r0..r3 or ra0..ra31: the decrement reads it "
                    "next to the small immediate 1)")
            raise AssemblyError(exc.message + hint, where, exc.instruction) from None
        if isinstance(count, bool) or not (count is None or isinstance(count, (int, Register))):
            raise AssemblyError(f"loop count {count!r}: use an int, a register or None", where, text)
        if isinstance(count, int) and count < 1:
            raise AssemblyError(f"loop count {count}: the body runs at least once; use a count >= 1", where, text)
        return CountedLoop(self, counter, count, name)

    # ---------------------------------------------------------------------------------------
    # Macros (qpu.macros has the details)
    # ---------------------------------------------------------------------------------------

    def setup_vpm_read(self, nrows: int, *, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True,
                       laned: bool = False, stride: int = 1, byte: int = 0, half: int = 0) -> None:
        """Program the next ``nrows`` VPM reads (Table 33); see :func:`qpu.macros.vpm_read_setup`."""
        _macros.setup_vpm_read(self, nrows, y=y, x=x, size=size, horizontal=horizontal, laned=laned,
                               stride=stride, byte=byte, half=half)

    def setup_vpm_write(self, *, y: int = 0, x: int = 0, size: int = 32, horizontal: bool = True,
                        laned: bool = False, stride: int = 1, byte: int = 0, half: int = 0) -> None:
        """Program where VPM writes go (Table 32); see :func:`qpu.macros.vpm_write_setup`."""
        _macros.setup_vpm_write(self, y=y, x=x, size=size, horizontal=horizontal, laned=laned, stride=stride,
                                byte=byte, half=half)

    def setup_dma_load(self, nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32,
                       offset: int = 0, horizontal: bool = True, vpitch: int = 1, mpitch: int = 3) -> None:
        """Set up a DMA load memory -> VPM (Table 36); see :func:`qpu.macros.dma_load_setup`."""
        _macros.setup_dma_load(self, nrows, ncols, y=y, x=x, size=size, offset=offset, horizontal=horizontal,
                               vpitch=vpitch, mpitch=mpitch)

    def setup_dma_load_stride(self, stride: Union[int, Register], *, tmp: Optional[Register] = None) -> None:
        """Set the DMA load memory pitch in bytes (Table 37); see :func:`qpu.macros.setup_dma_load_stride`."""
        _macros.setup_dma_load_stride(self, stride, tmp=tmp)

    def start_dma_load(self, addr: Register) -> Issued:
        """``mov vr_addr, addr``: start the DMA load."""
        return _macros.start_dma_load(self, addr)

    def wait_dma_load(self) -> Issued:
        """``mov -, vr_wait``: wait for the DMA load."""
        return _macros.wait_dma_load(self)

    def setup_dma_store(self, nrows: int = 1, ncols: int = 16, *, y: int = 0, x: int = 0, size: int = 32,
                        offset: int = 0, horizontal: bool = True) -> None:
        """Set up a DMA store VPM -> memory (Table 34); see :func:`qpu.macros.dma_store_setup`."""
        _macros.setup_dma_store(self, nrows, ncols, y=y, x=x, size=size, offset=offset, horizontal=horizontal)

    def setup_dma_store_stride(self, stride: Union[int, Register], blockmode: bool = False, *,
                               tmp: Optional[Register] = None) -> None:
        """Set the DMA store stride and block mode (Table 35); see :func:`qpu.macros.setup_dma_store_stride`."""
        _macros.setup_dma_store_stride(self, stride, blockmode, tmp=tmp)

    def start_dma_store(self, addr: Register) -> Issued:
        """``mov vw_addr, addr``: start the DMA store."""
        return _macros.start_dma_store(self, addr)

    def wait_dma_store(self) -> Issued:
        """``mov -, vw_wait``: wait for the DMA store."""
        return _macros.wait_dma_store(self)

    def tmu_load(self, addr: Register, *, tmu: int = 0, dst: Optional[Register] = None) -> None:
        """Per-element 32-bit load through a TMU; see :func:`qpu.macros.tmu_load`."""
        _macros.tmu_load(self, addr, tmu=tmu, dst=dst)

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


def assemble(kernel_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Program:
    """Run ``kernel_fn(Kernel(name=kernel_fn.__name__), *args, **kwargs)`` and build the Program."""
    k = Kernel(name=getattr(kernel_fn, "__name__", "kernel"))
    kernel_fn(k, *args, **kwargs)
    return k.build()


__all__ = ["Kernel", "Issued", "Label", "CountedLoop", "assemble"]
