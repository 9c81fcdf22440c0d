"""py-videocore compatibility: kernels written for py-videocore's ``@qpu`` DSL, unchanged.

Replace ``from videocore.assembler import qpu`` (and ``assemble``...) by::

    from qpu.compat.videocore import *

and the kernel assembles to the same bytes py-videocore emits.  ``assemble(kernel)``
returns bytes as py-videocore's does; ``program(kernel)`` returns a
:class:`qpu.program.Program` with the kernel's file:line for every instruction, so the
checker and the emulator can point at the source.  ``get_label_positions`` and
``print_qbin`` (which py-videocore's SGEMM examples import) behave as py-videocore's.

py-videocore's encoding conventions are reproduced (they come from its documented
behaviour and its encoder, read as facts; none of its code is used):

* add-ALU ops set the flags unless ``set_flags=False``; ``mov`` and ``nop`` do not;
* every ALU op writes with condition ``'always'`` unless ``cond=`` says otherwise,
  even to ``null``; ``ldi`` uses its condition for both ALUs; semaphore instructions
  are written with both conditions ``always``;
* ``nop()`` is py-videocore's ``nop r0, r0, r0``: add nop, destination r0, condition
  always (the mul nop of ``nop().nop()`` likewise);
* the unary ops (``itof ftoi bnot clz``) read r0 through their unused b mux;
* ``uniforms_address`` is writable through regfile A only;
* the setup macros compute their words with py-videocore's arithmetic (its field
  masks included) and load them with ``ldi``;
* branch offsets are ``8*(target - (branch + 4))``; a branch through an odd register
  sets the flags (raddr_a bit 0, vc4asm addendum), silently as in py-videocore.

Injected names: like py-videocore, ``@qpu`` writes the register names, ``ra``/``rb``,
the instruction functions of the current Assembler, ``L`` and ``namespace`` into the
decorated function's module globals each time it runs.  That is this module's only
magic, kept here for compatibility; two kernels of one module must therefore not be
assembled concurrently from different threads.  New code should use ``qpu.dsl``.
"""

from __future__ import annotations

import inspect
import numbers
import sys
from dataclasses import replace
from functools import wraps
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

from .. import registers as _regs
from ..builder import Kernel, Label
from ..encoding import encode
from ..errors import AssemblyError, EncodingError, SourceLocation
from ..instruction import (
    ADD_NOP,
    FILE_A,
    MUL_NOP,
    NO_DEST,
    Accumulator,
    AluHalf,
    AluInstruction,
    BranchInstruction,
    Dest,
    Instruction,
    LoadImmInstruction,
    RegisterRead,
    SemaphoreInstruction,
    Source,
)
from ..instruction import Label as _ModelLabel
from ..isa.formats import LoadImmMode, decode_fields
from ..isa.ops import ADD_OPS, ADD_OPS_BY_DSL, MOV_ADD, MOV_MUL, MUL_OPS, OpInfo
from ..isa.signals import BranchCond, Cond, Signal
from ..isa.small_imm import float_bits
from ..program import Program
from ..registers import Register, kernel_location

AssembleError = AssemblyError
"""py-videocore's exception name."""

# py-videocore's names for the pack / unpack / signal / condition codes, mapped to ours.
_PACK_NAMES = {"16a": "16a", "16b": "16b", "rep 8": "8888", "8a": "8a", "8b": "8b", "8c": "8c", "8d": "8d",
               "32 sat": "32s", "16a sat": "16as", "16b sat": "16bs", "rep 8 sat": "8888s", "8a sat": "8as",
               "8b sat": "8bs", "8c sat": "8cs", "8d sat": "8ds"}
_UNPACK_NAMES = {"16a": "16a", "16b": "16b", "rep 8d": "8dr", "8a": "8a", "8b": "8b", "8c": "8c", "8d": "8d"}
_MUL_PACK = {"nop": 0, "rep 8": 3, "8a": 4, "8b": 5, "8c": 6, "8d": 7}  # guide Table 9 codes
_SIGNALS = {"breakpoint": Signal.BREAKPOINT, "no signal": Signal.NONE, "thread switch": Signal.THREAD_SWITCH,
            "thread end": Signal.PROGRAM_END, "wait scoreboard": Signal.WAIT_SCOREBOARD,
            "unlock scoreboard": Signal.SCOREBOARD_UNLOCK, "last thread switch": Signal.LAST_THREAD_SWITCH,
            "load coverage": Signal.LOAD_COVERAGE, "load color": Signal.LOAD_COLOR,
            "load color and thread end": Signal.LOAD_COLOR_END, "load tmu0": Signal.LOAD_TMU0,
            "load tmu1": Signal.LOAD_TMU1, "load alpha": Signal.LOAD_ALPHA_MASK,
            # a small immediate sets this signal by itself
            "alu small imm": Signal.NONE}
_CONDS = {c.name.lower(): c for c in Cond}
_BRANCHES = {"jzs": BranchCond.ALL_ZS, "jzc": BranchCond.ALL_ZC, "jzs_any": BranchCond.ANY_ZS,
             "jzc_any": BranchCond.ANY_ZC, "jns": BranchCond.ALL_NS, "jnc": BranchCond.ALL_NC,
             "jns_any": BranchCond.ANY_NS, "jnc_any": BranchCond.ANY_NC, "jcs": BranchCond.ALL_CS,
             "jcc": BranchCond.ALL_CC, "jcs_any": BranchCond.ANY_CS, "jcc_any": BranchCond.ANY_CC,
             "jmp": BranchCond.ALWAYS}


# --------------------------------------------------------------------------------------------
# Registers with py-videocore's names and pack/unpack spellings
# --------------------------------------------------------------------------------------------

class VCRegister(Register):
    """A register whose ``pack``/``unpack`` take py-videocore's mode names ('rep 8', '16a sat'...)."""

    def pack(self, mode: str) -> Register:
        where = kernel_location()
        if self.write is None or FILE_A not in self.write.files or self.is_accumulator:
            raise AssemblyError(f"{self.name}: packing is only available for regfile-A write locations", where)
        if mode == "nop":
            return Register(self.name, None, Dest(self.write.addr, (FILE_A,)), self.unit, self.doc)
        if mode not in _PACK_NAMES:
            raise AssemblyError(f"unknown pack {mode!r}; valid: nop, {', '.join(_PACK_NAMES)}", where)
        return super().pack(_PACK_NAMES[mode])

    def unpack(self, mode: str) -> Register:
        where = kernel_location()
        src = self.read
        is_r4 = isinstance(src, Accumulator) and src.index == 4
        if not is_r4 and not (isinstance(src, RegisterRead) and FILE_A in src.files):
            raise AssemblyError(f"{self.name}: unpacking is only available for regfile-A read locations and "
                                "accumulator r4", where)
        if mode == "nop":
            new: Optional[Source] = src if is_r4 else RegisterRead(src.addr, (FILE_A,))  # type: ignore[union-attr]
            return Register(self.name, new, None, self.unit, self.doc)
        if mode not in _UNPACK_NAMES:
            raise AssemblyError(f"unknown unpack {mode!r}; valid: nop, {', '.join(_UNPACK_NAMES)}", where)
        return super().unpack(_UNPACK_NAMES[mode])


def _vc(name: str, base: Register, write: Optional[Dest] = None) -> VCRegister:
    return VCRegister(name, base.read, write if write is not None else base.write, base.unit, base.doc)


def _build_registers() -> Dict[str, VCRegister]:
    regs: Dict[str, VCRegister] = {}
    for i in range(32):
        regs[f"ra{i}"] = _vc(f"ra{i}", _regs.ra[i])
        regs[f"rb{i}"] = _vc(f"rb{i}", _regs.rb[i])
    io = {
        "uniform": _regs.uniform, "varying_read": _regs.varying, "tmu_noswap": _regs.tmu_noswap,
        "r5_pix0": _regs.r5quad, "broadcast": _regs.r5rep, "host_interrupt": _regs.host_interrupt,
        "element_number": _regs.element_number, "qpu_number": _regs.qpu_number, "null": _regs.null,
        "x_pixel_coord": _regs.x_pixel_coord, "y_pixel_coord": _regs.y_pixel_coord, "quad_x": _regs.quad_x,
        "quad_y": _regs.quad_y, "ms_flags": _regs.ms_flags, "rev_flag": _regs.rev_flag,
        "tlb_stencil_setup": _regs.tlb_stencil_setup, "tlb_z": _regs.tlb_z, "tlb_color_ms": _regs.tlb_color_ms,
        "tlb_color_all": _regs.tlb_color_all, "tlb_alpha_mask": _regs.tlb_alpha_mask, "vpm": _regs.vpm,
        "vpm_ld_busy": _regs.vpm_ld_busy, "vpm_st_busy": _regs.vpm_st_busy,
        "vpmvcd_rd_setup": _regs.vpmvcd_rd_setup, "vpmvcd_wr_setup": _regs.vpmvcd_wr_setup,
        "vpm_ld_wait": _regs.vpm_ld_wait, "vpm_st_wait": _regs.vpm_st_wait, "vpm_ld_addr": _regs.vpm_ld_addr,
        "vpm_st_addr": _regs.vpm_st_addr, "mutex": _regs.mutex, "sfu_recip": _regs.sfu_recip,
        "sfu_recipsqrt": _regs.sfu_recipsqrt, "sfu_exp2": _regs.sfu_exp2, "sfu_log2": _regs.sfu_log2,
        "tmu0_s": _regs.tmu0_s, "tmu0_t": _regs.tmu0_t, "tmu0_r": _regs.tmu0_r, "tmu0_b": _regs.tmu0_b,
        "tmu1_s": _regs.tmu1_s, "tmu1_t": _regs.tmu1_t, "tmu1_r": _regs.tmu1_r, "tmu1_b": _regs.tmu1_b,
    }
    for name, base in io.items():
        regs[name] = _vc(name, base)
    # py-videocore's register table makes uniforms_address writable through regfile A only,
    # which decides the write swap of a dual issue; the guide's Table 14 lists it for both.
    base = _regs.uniforms_address
    assert base.write is not None
    regs["uniforms_address"] = _vc("uniforms_address", base, Dest(base.write.addr, (FILE_A,)))
    for i, acc in enumerate((_regs.r0, _regs.r1, _regs.r2, _regs.r3, _regs.r4, _regs.r5)):
        regs[f"r{i}"] = _vc(f"r{i}", acc)
    return regs


REGISTERS: Dict[str, VCRegister] = _build_registers()
_R0 = REGISTERS["r0"]
_NULL = REGISTERS["null"]


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------

class _VCLabel:
    """py-videocore's label: ``L.name`` as a statement marks the current position; the same
    expression used as a branch target refers to the name instead."""

    __slots__ = ("name", "index", "pinned", "location")

    def __init__(self, name: str, index: int, location: Optional[SourceLocation]) -> None:
        self.name = name
        self.index = index
        self.pinned = True
        self.location = location

    def __repr__(self) -> str:
        return f"L.{self.name}"


class _LabelEmitter:
    """``L.loop`` / ``L['loop']``."""

    def __init__(self, asm: Assembler) -> None:
        self._asm = asm

    def __getitem__(self, name: object) -> _VCLabel:
        return self._asm._new_label(str(name))

    def __getattr__(self, name: str) -> _VCLabel:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]


class _Namespace:
    def __init__(self, asm: Assembler, name: str) -> None:
        self._asm = asm
        self._name = name

    def __enter__(self) -> _Namespace:
        self._asm._spaces.append(self._name)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._asm._spaces.pop()


# --------------------------------------------------------------------------------------------
# The assembler
# --------------------------------------------------------------------------------------------

def _cond(name: object, where: Optional[SourceLocation]) -> Cond:
    if isinstance(name, str) and name in _CONDS:
        return _CONDS[name]
    raise AssemblyError(f"unknown condition {name!r}; valid: {', '.join(_CONDS)}", where)


def _signal(name: object, where: Optional[SourceLocation]) -> Signal:
    if isinstance(name, str) and name in _SIGNALS:
        return _SIGNALS[name]
    raise AssemblyError(f"unknown signal {name!r}; valid: {', '.join(_SIGNALS)}", where)


def _acc_mux(value: object, where: Optional[SourceLocation]) -> int:
    src = value.read if isinstance(value, Register) else None
    if not isinstance(src, Accumulator):
        raise AssemblyError(f"qpu.compat.videocore: the unused operand of a unary op must be an accumulator, "
                            f"not {value!r}", where)
    return src.index


class MulEmitter:
    """What an add op returns: its methods put a mul op into the same instruction."""

    def __init__(self, asm: Assembler, index: int) -> None:
        self._asm = asm
        self._index = index

    def mov(self, dst: Any, src: Any, **kwargs: Any) -> None:
        self._asm._mul(MOV_MUL, (dst, src, src), kwargs, self)

    def rotate(self, dst: Any, src: Any, shift: Any, **kwargs: Any) -> None:
        self._asm._mul(MOV_MUL, (dst, src, src), dict(kwargs, rotate=shift), self)


class Assembler:
    """py-videocore's ``asm`` object: one method per instruction, labels ``L``, ``namespace``."""

    def __init__(self, name: str = "kernel") -> None:
        self._kernel = Kernel(name)
        self._spaces: List[str] = []
        self._labels: List[_VCLabel] = []
        self._targets: Dict[str, Label] = {}
        self.L = _LabelEmitter(self)

    # ---- plumbing ---------------------------------------------------------------------------

    def _emit(self, ins: Instruction, where: Optional[SourceLocation], label: Optional[Label] = None) -> int:
        return self._kernel._append(ins, where, label)

    @staticmethod
    def _word(ins: Instruction, where: Optional[SourceLocation], text: str) -> int:
        try:
            return encode(replace(ins, target=0) if isinstance(ins, BranchInstruction) else ins)
        except EncodingError as exc:
            raise AssemblyError(str(exc), where, text) from None

    def _new_label(self, name: str) -> _VCLabel:
        lbl = _VCLabel(".".join(self._spaces + [name]), len(self._kernel), kernel_location())
        self._labels.append(lbl)
        return lbl

    def _target(self, name: str) -> Label:
        if name not in self._targets:
            self._targets[name] = self._kernel.label(name)
        return self._targets[name]

    def namespace(self, name: str) -> _Namespace:
        """Prefix the labels created inside ``with namespace('ns'):`` with ``ns.``."""
        return _Namespace(self, name)

    def program(self) -> Program:
        """Resolve labels and encode: the Program with source locations."""
        seen: Dict[str, _VCLabel] = {}
        for lbl in self._labels:
            if not lbl.pinned:
                continue
            if lbl.name in seen:
                raise AssemblyError(f"Duplicated label: {lbl.name} (first at {seen[lbl.name].location})",
                                    lbl.location, f"L.{lbl.name}")
            seen[lbl.name] = lbl
            target = self._target(lbl.name)
            target.index = lbl.index
            target.bound_at = lbl.location
        return self._kernel.build()

    # ---- ALU --------------------------------------------------------------------------------

    def _add(self, op: OpInfo, args: Sequence[Any], kwargs: Dict[str, Any]) -> MulEmitter:
        where = kernel_location()
        text = op.dsl_name
        # py-videocore's default operands: nop r0, r0, r0; a unary op's b operand is r0.
        defaults: List[Any] = [_R0, _R0, _R0] if op.is_nop else [_R0] if op.arity == 1 else []
        full = list(args) + defaults
        if len(full) < 3:
            raise TypeError(f"{op.dsl_name}() needs a destination and {op.arity} operand(s)")
        dst, a, b = full[:3]
        rest = full[3:]
        sig = rest[0] if len(rest) > 0 else kwargs.get("sig", "no signal")
        set_flags = rest[1] if len(rest) > 1 else kwargs.get("set_flags", True)
        cond = _cond(kwargs.get("cond", "always"), where)
        if op.is_nop:
            set_flags = False
        d = Kernel._dest(dst, where, text)
        overrides: Tuple[Tuple[str, int], ...] = ()
        if op.is_nop:
            half = AluHalf(op, d, None, None, cond)
        elif op.arity == 1:
            half = AluHalf(op, d, Kernel._source(a, where, text), None, cond)
            overrides = (("add_b", _acc_mux(b, where)),)
        else:
            half = AluHalf(op, d, Kernel._source(a, where, text), Kernel._source(b, where, text), cond)
        ins = AluInstruction(add=half, mul=MUL_NOP, signal=_signal(sig, where), setf=bool(set_flags),
                             overrides=overrides)
        return MulEmitter(self, self._emit(ins, where))

    def _mul(self, op: OpInfo, args: Sequence[Any], kwargs: Dict[str, Any], handle: Optional[MulEmitter]) -> None:
        where = kernel_location()
        text = op.dsl_name
        full = list(args) + ([_R0, _R0, _R0] if op.is_nop else [])
        if len(full) < 3:
            raise TypeError(f"{op.dsl_name}() needs a destination and two operands")
        dst, a, b = full[:3]
        rest = full[3:]
        rotate = rest[0] if len(rest) > 0 else kwargs.get("rotate", 0)
        pack = rest[1] if len(rest) > 1 else kwargs.get("pack", "nop")
        cond = _cond(kwargs.get("cond", "always"), where)
        sig = _signal(kwargs.get("sig", "no signal"), where)
        d = Kernel._dest(dst, where, text)
        if pack not in _MUL_PACK:
            raise AssemblyError(f"unknown mul pack {pack!r}; valid: {', '.join(_MUL_PACK)}", where, text)
        if _MUL_PACK[pack]:
            if d.pack:
                raise AssemblyError("Multiple pack operations", where, text)
            d = replace(d, pack=_MUL_PACK[pack], mul_pack=True)
        if op.is_nop:
            half = AluHalf(op, d, None, None, cond)
        else:
            half = AluHalf(op, d, Kernel._source(a, where, text), Kernel._source(b, where, text), cond)
        rotation: Optional[int] = None
        if isinstance(rotate, Register) and rotate.read == _regs.r5.read:
            rotation = 0  # code 48
        elif isinstance(rotate, int) and not isinstance(rotate, bool):
            if rotate:
                rotation = rotate % 16  # py-videocore's code 48 + rotate % 16 (0 is the r5 code 48)
        else:
            raise AssemblyError(f"rotate={rotate!r}: an int or r5", where, text)
        if handle is None:
            ins = AluInstruction(add=ADD_NOP, mul=half, signal=sig, rotation=rotation)
        else:
            slots = self._kernel._slots
            base = slots[handle._index].ins if handle._index < len(slots) else None
            if handle._index != len(slots) - 1 or not isinstance(base, AluInstruction) \
                    or not base.mul.op.is_nop or base.mul != MUL_NOP:
                raise AssemblyError("a mul op can only join the add op emitted just before", where, text)
            if sig is not Signal.NONE and base.signal is not Signal.NONE:
                raise AssemblyError("Conflict of signals", where, text)
            ins = replace(base, mul=half, signal=base.signal if sig is Signal.NONE else sig, rotation=rotation)
        word = self._word(ins, where, text)
        if rotation is not None:
            fields = decode_fields(word)[1]
            if {fields["mul_a"], fields["mul_b"]} & {5, 7}:
                raise AssemblyError("Rotate operation is only available when inputs are taken from r0-r4 or ra",
                                    where, text)
        if handle is None:
            self._emit(ins, where)
        else:
            self._kernel._replace_last(ins, where)

    def mov(self, dst: Any, src: Any, **kwargs: Any) -> MulEmitter:
        """``bor dst, src, src`` without setting flags unless ``set_flags=True``."""
        set_flags = kwargs.pop("set_flags", False)
        return self._add(MOV_ADD, (dst, src, src), dict(kwargs, set_flags=set_flags))

    def rotate(self, dst: Any, src: Any, shift: Any, **kwargs: Any) -> None:
        """``v8min dst, src, src`` on the mul ALU, output rotated by ``shift``."""
        self._mul(MOV_MUL, (dst, src, src), dict(kwargs, rotate=shift), None)

    # ---- load immediate, semaphores, branches, raw -------------------------------------------

    def ldi(self, *args: Any, **kwargs: Any) -> None:
        """``ldi(dst, value)`` or ``ldi(dst, dst2, value)``; a list gives per-element 2-bit values."""
        where = kernel_location()
        if len(args) == 2:
            dst, dst2, value = args[0], _NULL, args[1]
        elif len(args) == 3:
            dst, dst2, value = args
        else:
            raise TypeError("ldi(dst, value) or ldi(dst, dst2, value)")
        if kwargs.get("sig", "load") != "load":
            raise AssemblyError("Conflict of signals", where, "ldi")
        cond = _cond(kwargs.get("cond", "always"), where)
        bits, mode = self._immediate(value, where)
        ins = LoadImmInstruction(bits, mode, Kernel._dest(dst, where, "ldi"), Kernel._dest(dst2, where, "ldi"),
                                 cond, bool(kwargs.get("set_flags", False)),
                                 overrides=(("cond_add", int(cond)), ("cond_mul", int(cond))))
        self._emit(ins, where)

    @staticmethod
    def _immediate(value: Any, where: Optional[SourceLocation]) -> Tuple[int, LoadImmMode]:
        if isinstance(value, float):
            return float_bits(value), LoadImmMode.U32
        if isinstance(value, numbers.Integral):
            return int(value) & 0xFFFFFFFF, LoadImmMode.U32  # py-videocore keeps the low 32 bits
        if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
            values = list(value.tolist() if hasattr(value, "tolist") else value)
            if len(values) > 16:
                raise AssemblyError(f"Too many immediate values {values}", where, "ldi")
            values += [0] * (16 - len(values))
            unsigned = all(v >= 0 for v in values)
            high = low = 0
            for i, v in enumerate(values):
                if (unsigned and v >= 4) or (not unsigned and not -2 <= v < 2):
                    raise AssemblyError(f"{v} is not a 2-bit {'un' if unsigned else ''}signed value", where, "ldi")
                high |= ((v & 2) >> 1) << i
                low |= (v & 1) << i
            return high << 16 | low, (LoadImmMode.PER_ELEMENT_UNSIGNED if unsigned
                                      else LoadImmMode.PER_ELEMENT_SIGNED)
        raise AssemblyError(f"Unsupported immediate value {value!r}", where, "ldi")

    def _semaphore(self, acquire: bool, sema_id: int) -> None:
        where = kernel_location()
        if not (isinstance(sema_id, int) and 0 <= sema_id <= 15):
            raise AssemblyError("Semaphore id must be in range (0..15)", where)
        # py-videocore writes both conditions as "always".
        self._emit(SemaphoreInstruction(acquire, sema_id, overrides=(("cond_add", 1), ("cond_mul", 1))), where)

    def sema_up(self, sema_id: int) -> None:
        self._semaphore(False, sema_id)

    def sema_down(self, sema_id: int) -> None:
        self._semaphore(True, sema_id)

    def _branch(self, cond: BranchCond, target: Any = None, reg: Any = None, absolute: bool = False,
                link: Any = None) -> None:
        where = kernel_location()
        text = f"branch {target!r}"
        label: Optional[Label] = None
        model_target: Any
        if target is None:
            model_target = 0
        elif isinstance(target, _VCLabel):
            target.pinned = False
            if absolute:
                raise AssemblyError("an absolute branch to a label is not supported", where, text)
            label = self._target(target.name)
            model_target = _ModelLabel(target.name)
        elif isinstance(target, int) and not isinstance(target, bool):
            model_target = target
        else:
            raise AssemblyError(f"Invalid branch target: {target!r}", where, text)
        reg_addr = None
        if reg is not None:
            src = reg.read if isinstance(reg, Register) else None
            if not (isinstance(src, RegisterRead) and src.files == (FILE_A,) and src.addr < 32):
                raise AssemblyError(f"Must be general purpose regfile A register {reg!r}", where, text)
            reg_addr = src.addr
        link_dst = Kernel._dest(_NULL if link is None else link, where, text)
        ins = BranchInstruction(model_target, cond, not absolute, reg_addr, link_dst, NO_DEST,
                                bool(reg_addr is not None and reg_addr & 1))
        self._emit(ins, where, label)

    def raw(self, val1: int, val2: int) -> None:
        """A raw word: ``val1`` its low 32 bits, ``val2`` its high 32 bits."""
        self._kernel.word((val2 & 0xFFFFFFFF) << 32 | (val1 & 0xFFFFFFFF))

    def raw_program(self, val: bytes) -> None:
        if len(val) % 8:
            raise AssemblyError("raw_program needs a whole number of 8-byte instructions", kernel_location())
        for i in range(0, len(val), 8):
            self._kernel.word(int.from_bytes(val[i:i + 8], "little"))

    # ---- helpers ------------------------------------------------------------------------------

    def mutex_acquire(self) -> MulEmitter:
        return self.mov(_NULL, REGISTERS["mutex"])

    def mutex_release(self) -> MulEmitter:
        return self.mov(REGISTERS["mutex"], _NULL)

    def interrupt(self) -> MulEmitter:
        return self.mov(REGISTERS["host_interrupt"], 1)

    def exit(self, interrupt: bool = True) -> None:
        if interrupt:
            self.interrupt()
        # The program-end instruction writes accumulators only (guide p.22).
        self.mov(_R0, _R0, sig="thread end").mov(_R0, _R0)
        self._add(ADD_OPS[0], (), {})
        self._add(ADD_OPS[0], (), {})

    @staticmethod
    def _mode(mode: str) -> Tuple[int, int, int]:
        """(size code, laned, horizontal) of py-videocore's mode strings such as '16bit packed vertical'."""
        words = mode.split()
        size = {"8bit": 0, "16bit": 1, "32bit": 2}[words.pop(0)]
        laned = {"packed": 0, "laned": 1}[words.pop(0)] if size != 2 else 0
        horizontal = {"vertical": 0, "horizontal": 1}[words.pop(0)]
        return size, laned, horizontal

    @staticmethod
    def _vpm_addr(size: int, horizontal: int, y: int, kwargs: Dict[str, Any], x_default: Optional[int]) -> int:
        # Tables 32/33 ADDR layouts, with py-videocore's defaults for B, H and X.
        if horizontal:
            return (y << 2 | kwargs.get("B", 0) if size == 0 else y << 1 | kwargs.get("H", 0) if size == 1 else y)
        x = kwargs["X"] if x_default is None else kwargs.get("X", x_default)
        return ((y & 0x30) << 2 | x << 2 | kwargs.get("B", 0) if size == 0
                else (y & 0x30) << 1 | x << 1 | kwargs.get("H", 0) if size == 1 else (y & 0x30) | x)

    def setup_vpm_read(self, nrows: int, mode: str = "32bit horizontal", Y: int = 0, stride: int = 1,
                       **kwargs: Any) -> None:
        size, laned, horizontal = self._mode(mode)
        addr = self._vpm_addr(size, horizontal, Y, kwargs, None)
        self.ldi(REGISTERS["vpmvcd_rd_setup"],
                 (nrows & 0xF) << 20 | stride << 12 | horizontal << 11 | laned << 10 | size << 8 | addr)

    def setup_vpm_write(self, mode: str = "32bit horizontal", stride: int = 1, Y: int = 0, **kwargs: Any) -> None:
        size, laned, horizontal = self._mode(mode)
        addr = self._vpm_addr(size, horizontal, Y, kwargs, 0)
        self.ldi(REGISTERS["vpmvcd_wr_setup"], stride << 12 | horizontal << 11 | laned << 10 | size << 8 | addr)

    @staticmethod
    def _modew(mode: str, offset: int) -> int:
        width = mode.split()[0]
        return 0x4 | offset if width == "8bit" else 0x2 | offset if width == "16bit" else 0

    def setup_dma_load(self, nrows: int = 1, ncols: int = 16, mode: str = "32bit horizontal", Y: int = 0,
                       X: int = 0, offset: int = 0, vpitch: int = 1, mpitch: int = 3) -> None:
        vertical = {"horizontal": 0, "vertical": 1}[mode.split()[1]]
        self.ldi(REGISTERS["vpmvcd_rd_setup"],
                 0x80000000 | self._modew(mode, offset) << 28 | mpitch << 24 | (ncols & 0xF) << 20
                 | (nrows & 0xF) << 16 | vpitch << 12 | vertical << 11 | Y << 4 | X)

    def setup_dma_store(self, nrows: int = 1, ncols: int = 16, mode: str = "32bit horizontal", Y: int = 0,
                        X: int = 0, offset: int = 0) -> None:
        horizontal = {"horizontal": 1, "vertical": 0}[mode.split()[1]]
        self.ldi(REGISTERS["vpmvcd_wr_setup"],
                 0x80000000 | (nrows & 0x7F) << 23 | (ncols & 0x7F) << 16 | horizontal << 14 | Y << 7 | X << 3
                 | self._modew(mode, offset))

    def _stride(self, setup: VCRegister, base: int, val: Any, tmp_reg: Any, name: str) -> Optional[MulEmitter]:
        if not isinstance(val, int) and getattr(val, "name", None) == tmp_reg.name:
            raise AssemblyError(f"{name} uses {tmp_reg.name!r} internally", kernel_location())
        if isinstance(val, int):
            self.ldi(setup, base | val)
            return None
        self.ldi(tmp_reg, base)
        return self._add(ADD_OPS_BY_DSL["bor"], (setup, tmp_reg, val), {})  # sets flags, as py-videocore

    def setup_dma_load_stride(self, val: Any, tmp_reg: Any = _R0) -> Optional[MulEmitter]:
        return self._stride(REGISTERS["vpmvcd_rd_setup"], 9 << 28, val, tmp_reg, "setup_dma_load_stride")

    def setup_dma_store_stride(self, val: Any, blockmode: bool = False, tmp_reg: Any = _R0) -> None:
        self._stride(REGISTERS["vpmvcd_wr_setup"], 3 << 30 | int(blockmode) << 16, val, tmp_reg,
                     "setup_dma_store_stride")

    def start_dma_load(self, reg: Any, rot: int = 0) -> Optional[MulEmitter]:
        if rot == 0:
            return self.mov(REGISTERS["vpm_ld_addr"], reg)
        self.rotate(REGISTERS["vpm_ld_addr"], reg, rot)
        return None

    def wait_dma_load(self) -> MulEmitter:
        return self.mov(_NULL, REGISTERS["vpm_ld_wait"])

    def start_dma_store(self, reg: Any, rot: int = 0) -> Optional[MulEmitter]:
        if rot == 0:
            return self.mov(REGISTERS["vpm_st_addr"], reg)
        self.rotate(REGISTERS["vpm_st_addr"], reg, rot)
        return None

    def wait_dma_store(self) -> MulEmitter:
        return self.mov(_NULL, REGISTERS["vpm_st_wait"])



# The instruction methods, generated from the opcode tables as py-videocore generates them.
def _add_method(op: OpInfo) -> Callable[..., MulEmitter]:
    def method(self: Assembler, *args: Any, **kwargs: Any) -> MulEmitter:
        return self._add(op, args, kwargs)
    method.__name__ = op.dsl_name
    method.__doc__ = f"{op.doc} (add ALU); returns the emitter of the mul op to dual-issue"
    return method


def _mul_method(op: OpInfo, on_handle: bool) -> Callable[..., None]:
    if on_handle:
        def handle_method(self: MulEmitter, *args: Any, **kwargs: Any) -> None:
            self._asm._mul(op, args, kwargs, self)
        handle_method.__name__ = op.dsl_name
        return handle_method

    def method(self: Assembler, *args: Any, **kwargs: Any) -> None:
        self._mul(op, args, kwargs, None)
    method.__name__ = op.dsl_name
    method.__doc__ = f"{op.doc} (mul ALU, with an add nop)"
    return method


def _branch_method(cond: BranchCond, name: str) -> Callable[..., None]:
    def method(self: Assembler, target: Any = None, reg: Any = None, absolute: bool = False,
               link: Any = None) -> None:
        self._branch(cond, target, reg, absolute, link)
    method.__name__ = name
    return method


for _op in ADD_OPS.values():
    setattr(Assembler, _op.dsl_name, _add_method(_op))
for _op in MUL_OPS.values():
    setattr(MulEmitter, _op.dsl_name, _mul_method(_op, True))
    if _op.dsl_name not in ADD_OPS_BY_DSL:
        setattr(Assembler, _op.dsl_name, _mul_method(_op, False))
for _name, _bc in _BRANCHES.items():
    setattr(Assembler, _name, _branch_method(_bc, _name))

INSTRUCTIONS: Tuple[str, ...] = tuple(sorted(
    {op.dsl_name for op in ADD_OPS.values()} | {op.dsl_name for op in MUL_OPS.values()} | set(_BRANCHES)
    | {"ldi", "rotate", "mov", "mutex_acquire", "mutex_release", "setup_vpm_read", "setup_vpm_write",
       "setup_dma_load_stride", "setup_dma_load", "start_dma_load", "wait_dma_load", "setup_dma_store",
       "setup_dma_store_stride", "start_dma_store", "wait_dma_store", "interrupt", "exit", "sema_up",
       "sema_down", "raw", "raw_program"}))
"""The names ``@qpu`` injects as functions bound to the current Assembler."""


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------

def qpu(f: Callable[..., Any]) -> Callable[..., Any]:
    """py-videocore's decorator: the function takes ``asm`` first and uses bare names.

    Each call writes the register names, ``ra``, ``rb``, the instruction functions of
    ``asm``, ``L`` and ``namespace`` into ``f``'s module globals, then runs ``f``.
    """
    if "asm" not in inspect.signature(f).parameters:
        raise AssemblyError("Argument named 'asm' is necessary", kernel_location())

    @wraps(f)
    def decorated(asm: Assembler, *args: Any, **kwargs: Any) -> Any:
        g = f.__globals__
        g.update(REGISTERS)
        g["ra"] = [REGISTERS[f"ra{i}"] for i in range(32)]
        g["rb"] = [REGISTERS[f"rb{i}"] for i in range(32)]
        for name in INSTRUCTIONS:
            g[name] = getattr(asm, name)
        g["L"] = asm.L
        g["namespace"] = asm.namespace
        return f(asm, *args, **kwargs)

    # lets Driver.program (qpu.runtime) assemble it with this module, as py-videocore's did
    decorated.__qpu_compat_videocore__ = True  # type: ignore[attr-defined]
    return decorated


def _run(f: Callable[..., Any], args: Sequence[Any], kwargs: Dict[str, Any]) -> Assembler:
    kwargs = dict(kwargs)
    kwargs.pop("sanity_check", None)  # py-videocore's optional checker: see qpu.checker
    asm = Assembler(getattr(f, "__name__", "kernel"))
    f(asm, *args, **kwargs)
    return asm


def program(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Program:
    """Assemble a py-videocore kernel into a Program (with the kernel's source lines)."""
    return _run(f, args, kwargs).program()


def assemble(f: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
    """Assemble a py-videocore kernel to bytes, as py-videocore's ``assemble`` does."""
    return program(f, *args, **kwargs).to_bytes()


def print_qbin(program: Any, file: Optional[TextIO] = None, *args: Any, **kwargs: Any) -> None:
    """Print a program as py-videocore's .qbin text: one line per instruction, its 8 bytes
    from the most significant down, each as 8 binary digits, separated by spaces.

    ``program`` is a kernel (assembled with ``args``/``kwargs``) or machine-code bytes;
    ``file`` defaults to sys.stdout (looked up at call time).
    """
    code = assemble(program, *args, **kwargs) if callable(program) else bytes(memoryview(program))
    if len(code) % 8:
        raise AssemblyError("print_qbin needs a whole number of 8-byte instructions", None)
    out = sys.stdout if file is None else file
    for i in range(0, len(code), 8):
        print(" ".join(f"{b:08b}" for b in reversed(code[i:i + 8])), file=out)


def get_label_positions(f: Callable[..., Any], *args: Any, **kwargs: Any) -> List[Tuple[Any, int]]:
    """(label, byte offset) of every label mark, as py-videocore's function of the same name."""
    asm = _run(f, args, kwargs)
    asm.program()
    return [(lbl, 8 * lbl.index) for lbl in asm._labels if lbl.pinned]


__all__ = ["qpu", "assemble", "program", "get_label_positions", "print_qbin", "Assembler", "AssembleError",
           "REGISTERS"]
