"""Disassembler: machine words to the text syntax that ``qpu.text_assembler`` reads back.

``assemble_text(disassemble(code)) == code`` for every byte string of whole words.

The syntax (docs/syntax.md has the full description), one instruction per line::

    [LABEL:] add-half [; mul-half] [; signal] [; read SRC]... [{field=value, ...}] [# comment]

    fadd.setf ra1, r0, ra2.16a ; fmul r3, r1, 2.0 ; ldtmu0
    nop ; mov r1, r0 >> 3               # mul output rotated up by 3 elements
    ldi ra3, rb3, 0x3f800000            # add and mul both write the immediate
    ldi r0, unsigned[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]
    sacq 3  /  srel -, 3
    brr.anynz ra31, L12                 # link in ra31; relative to a label
    bra.setf ra1 + 0x40                 # absolute: ra1 (element 15) + immediate
    .word 0x0123456789abcdef            # reserved encoding, kept bit for bit

Conditions are suffixes (``.zs .zc .ns .nc .cs .cc .never .always``), shown only
when they differ from the canonical default (``qpu.encoding``).  Pack modes are
destination suffixes (``ra1.16a``, mul colour pack ``r0.8ac``), unpack modes source
suffixes (``ra1.16a``, ``r4.8b``).  ``{...}`` sets raw fields that the readable
part leaves open (unused muxes, don't-care bits, an unusual write swap).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Union

from .encoding import decode, words_from_bytes
from .instruction import (
    BOTH_FILES,
    FILE_A,
    Accumulator,
    AluHalf,
    AluInstruction,
    BranchInstruction,
    Dest,
    Immediate,
    Instruction,
    Label,
    LoadImmInstruction,
    RawWord,
    SemaphoreInstruction,
    Source,
)
from .isa.formats import LoadImmMode
from .isa.ops import MOV_ADD, MOV_MUL
from .isa.packing import PACK_A_MODES, PACK_MUL_MODES, UNPACK_MODES
from .isa.registers import NOP_ADDR, NOP_READ_NAME, REGISTERS, Space, raw_name
from .isa.signals import BRANCH_COND_TEXT, COND_TEXT, SIGNALS, BranchCond, Signal
from .isa.small_imm import imm_text
from .program import Program, ProgramLike, as_program
from .text_assembler import is_label_name


def _dual(addr: int, read: bool) -> bool:
    a = REGISTERS[Space.READ_A if read else Space.WRITE_A].get(addr)
    b = REGISTERS[Space.READ_B if read else Space.WRITE_B].get(addr)
    return a is not None and b is not None and a.text == b.text and addr >= 32


def source_text(src: Source) -> str:
    if isinstance(src, Accumulator):
        text = f"r{src.index}"
        unpack = src.unpack
    elif isinstance(src, Immediate):
        return imm_text(src.bits, src.kind)
    else:
        unpack = src.unpack
        if len(src.files) == 2:
            text = NOP_READ_NAME if src.addr == NOP_ADDR else REGISTERS[Space.READ_A][src.addr].text
        else:
            space = Space.READ_A if src.files == (FILE_A,) else Space.READ_B
            info = REGISTERS[space].get(src.addr)
            if info is None or _dual(src.addr, True) or src.addr == NOP_ADDR:
                text = raw_name(space, src.addr)
            else:
                text = info.text
    if unpack:
        text += "." + UNPACK_MODES[unpack].text
    return text


def dest_text(dst: Dest) -> str:
    if len(dst.files) == 2:
        text = REGISTERS[Space.WRITE_A][dst.addr].text
    else:
        space = Space.WRITE_A if dst.files == (FILE_A,) else Space.WRITE_B
        info = REGISTERS[space][dst.addr]
        text = raw_name(space, dst.addr) if _dual(dst.addr, False) else info.text
    if dst.pack:
        modes = PACK_MUL_MODES if dst.mul_pack else PACK_A_MODES
        text += "." + modes[dst.pack].text
    return text


def _is_mov(half: AluHalf) -> bool:
    return half.op in (MOV_ADD, MOV_MUL) and half.a is not None and half.a == half.b


def _half_text(half: AluHalf, setf: bool, rotation: Optional[int]) -> str:
    mov = _is_mov(half)
    text = "mov" if mov else half.op.name
    if half.cond is not None:
        text += "." + COND_TEXT[half.cond]
    if setf:
        text += ".setf"
    operands: List[str] = []
    if half.op.is_nop:
        if not half.dst.is_nop:
            operands.append(dest_text(half.dst))
    else:
        operands.append(dest_text(half.dst))
        if mov:
            assert half.a is not None
            operands.append(source_text(half.a))
        else:
            operands += [source_text(s) for s in half.sources()]
    if operands:
        text += " " + ", ".join(operands)
    if rotation is not None:
        text += " " + rotation_text(rotation)
    return text


def rotation_text(rotation: int) -> str:
    """``>> n`` moves element i to element i+n (guide Table 5 "rotated by n upwards");
    ``<< n`` is the same as ``>> 16-n``, used for n > 8 as vc4asm sources do."""
    if rotation == 0:
        return ">> r5"
    return f">> {rotation}" if rotation <= 8 else f"<< {16 - rotation}"


def _overrides_text(ins: Instruction) -> str:
    overrides = getattr(ins, "overrides", ())
    if not overrides:
        return ""
    parts = [f"{k}={v}" if v < 10 else f"{k}={v:#x}" for k, v in overrides]
    return " {" + ", ".join(parts) + "}"


def _dests_text(add_dst: Dest, mul_dst: Dest) -> List[str]:
    if mul_dst.is_nop:
        return [] if add_dst.is_nop else [dest_text(add_dst)]
    return [dest_text(add_dst), dest_text(mul_dst)]


def _per_element_values(ins: LoadImmInstruction) -> List[int]:
    v = ins.value
    signed = ins.mode == LoadImmMode.PER_ELEMENT_SIGNED
    out = []
    for i in range(16):
        x = ((v >> (16 + i)) & 1) << 1 | ((v >> i) & 1)
        out.append(x - 4 if signed and x >= 2 else x)
    return out


def format_instruction(ins: Instruction, index: Optional[int] = None,
                       label_of: Optional[Callable[[int], Optional[str]]] = None) -> str:
    """One instruction as text.  ``index`` and ``label_of`` let relative branches name
    their target label (``label_of(target_index)`` returns a name or None)."""
    if isinstance(ins, RawWord):
        text = f".word {ins.word:#018x}"
        return text + (f"  # {ins.reason}" if ins.reason else "")
    if isinstance(ins, AluInstruction):
        add, mul = ins.add, ins.mul
        setf_on_add = ins.setf and not add.op.is_nop
        setf_on_mul = ins.setf and add.op.is_nop
        mul_shown = mul != AluHalf(mul.op) or ins.rotation is not None or setf_on_mul
        parts = [_half_text(add, setf_on_add, None)]
        if mul_shown:
            parts.append(_half_text(mul, setf_on_mul, ins.rotation))
        if ins.signal is not Signal.NONE:
            parts.append(SIGNALS[ins.signal].text)
        parts += ["read " + source_text(r) for r in ins.reads]
        return " ; ".join(parts) + _overrides_text(ins)
    if isinstance(ins, LoadImmInstruction):
        text = "ldi" + ("" if ins.cond is None else "." + COND_TEXT[ins.cond]) + (".setf" if ins.setf else "")
        if ins.mode == LoadImmMode.U32:
            value = f"{ins.value:#010x}"
        else:
            kind = "signed" if ins.mode == LoadImmMode.PER_ELEMENT_SIGNED else "unsigned"
            value = kind + "[" + ", ".join(str(x) for x in _per_element_values(ins)) + "]"
        dests = _dests_text(ins.add_dst, ins.mul_dst) or ["-"]
        return f"{text} {', '.join(dests + [value])}" + _overrides_text(ins)
    if isinstance(ins, SemaphoreInstruction):
        text = ("sacq" if ins.acquire else "srel") + ("" if ins.cond is None else "." + COND_TEXT[ins.cond])
        text += ".setf" if ins.setf else ""
        return f"{text} {', '.join(_dests_text(ins.add_dst, ins.mul_dst) + [str(ins.semaphore)])}" \
            + _overrides_text(ins)
    if isinstance(ins, BranchInstruction):
        text = "brr" if ins.relative else "bra"
        if ins.cond is not BranchCond.ALWAYS:
            text += "." + BRANCH_COND_TEXT[ins.cond]
        if ins.setf:
            text += ".setf"
        target: str
        if isinstance(ins.target, Label):
            target = ins.target.name
        else:
            imm = ins.target
            target = _imm_target_text(imm)
            if ins.relative and ins.reg is None and index is not None and label_of is not None \
                    and imm % 8 == 0:
                name = label_of(index + 4 + imm // 8)
                if name is not None:
                    target = name
        if ins.reg is not None:
            target = f"ra{ins.reg}" + ("" if target == "0" else f" + {target}")
        return f"{text} {', '.join(_dests_text(ins.add_dst, ins.mul_dst) + [target])}" + _overrides_text(ins)
    raise TypeError(f"not an instruction: {ins!r}")


def _imm_target_text(imm: int) -> str:
    return str(imm) if -4096 <= imm <= 4096 else (f"{imm:#x}" if imm >= 0 else f"-{-imm:#x}")


def branch_targets(instructions: Sequence[Instruction]) -> Dict[int, str]:
    """Instruction indices that relative branches of the program land on, with label names."""
    targets: Dict[int, str] = {}
    for i, ins in enumerate(instructions):
        if isinstance(ins, BranchInstruction) and ins.relative and ins.reg is None \
                and isinstance(ins.target, int) and ins.target % 8 == 0:
            t = i + 4 + ins.target // 8
            if 0 <= t < len(instructions):
                targets[t] = f"L{t}"
    return targets


def disassemble(code: Union[ProgramLike, Program], labels: bool = True) -> List[str]:
    """One line of text per instruction.

    Branch targets inside the program get labels (``L12:`` prefixes, or the program's
    own label names when it has them).  The text assembles back to the same bytes.
    """
    program = as_program(code)
    instructions = [decode(w) for w in program.words]
    names: Dict[int, str] = {}
    if labels:
        # Only names the text assembler accepts as labels are printed (a DSL may use others).
        own = {idx: name for name, idx in program.labels.items()
               if 0 <= idx < len(instructions) and is_label_name(name)}
        taken = set(program.labels)
        for idx, name in branch_targets(instructions).items():
            if idx not in own:
                # A generated name must not repeat one of the program's own labels placed
                # elsewhere (a label "L9" at index 5 and a branch to index 9).
                while name in taken:
                    name += "_"
                taken.add(name)
                names[idx] = name
        names.update(own)
    lines = []
    for i, ins in enumerate(instructions):
        text = format_instruction(ins, i, names.get)
        if i in names:
            text = f"{names[i]}: {text}"
        lines.append(text)
    return lines


def disassemble_word(word: int) -> str:
    return format_instruction(decode(word))


def disassemble_bytes(data: bytes) -> List[str]:
    return disassemble(words_from_bytes(data))


__all__ = ["disassemble", "disassemble_word", "format_instruction", "source_text", "dest_text",
           "BOTH_FILES"]
