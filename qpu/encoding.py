"""Encode instruction-model objects to 64-bit words, and decode words back.

Encoding makes every choice the model leaves open by one set of canonical rules,
shared by the DSL and the text assembler so that both emit the same bits:

* reads: accumulators use muxes 0-5; reads that exist in one file only go to
  that file; reads that exist in both (unif, vary, vpm, mutex, the nop address)
  go to regfile A if raddr_a is free or already reads the same address,
  otherwise to B; a small immediate takes raddr_b; unused raddr fields hold 39
  (no read); a unary op's second mux repeats the first; a nop's muxes are r0.
* write swap: ws = 0 unless a destination needs the other file.
* conditions: an op with no condition given writes always, a nop never; a
  load-immediate / semaphore half writes always when it has a destination,
  never otherwise.
* small immediates: the code without rotation side effect for the value, unless
  a rotation is requested, whose code must then also deliver that value.

Decoding is the inverse: it builds the model a person would write for the word,
then records in ``overrides`` every field whose value the canonical rules would
not reproduce, so that ``encode(decode(w)) == w`` for every 64-bit word.
Reserved encodings decode to ``RawWord``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, cast

from .errors import EncodingError
from .instruction import (
    BOTH_FILES,
    FILE_A,
    FILE_B,
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
    RegisterRead,
    SemaphoreInstruction,
    Source,
)
from .isa.formats import (
    FIELDS,
    LOAD_IMM_MODES,
    SIG_BRANCH,
    SIG_LOAD_IMM,
    SIG_SMALL_IMM,
    Format,
    LoadImmMode,
    decode_fields,
    encode_fields,
)
from .isa.ops import ADD_OPS, MUL_OPS, Alu
from .isa.packing import PACK_A_MODES, PACK_MUL_MODES, UNPACK_MODES
from .isa.registers import NOP_ADDR, REGISTERS, Space
from .isa.signals import ALU_SIGNALS, RESERVED_BRANCH_CONDS, SIGNALS, BranchCond, Cond, Mux, Signal
from .isa.small_imm import CODE_BY_BITS, SMALL_IMMS, imm_text

Fields = Dict[str, int]


def _dual(space_a: Space, space_b: Space) -> frozenset:
    a, b = REGISTERS[space_a], REGISTERS[space_b]
    return frozenset(addr for addr in range(32, 64)
                     if addr in a and addr in b and a[addr].text == b[addr].text)


# Addresses whose function is the same through either file (so the name alone
# does not say which file the word uses).
DUAL_READ_ADDRS = _dual(Space.READ_A, Space.READ_B)
DUAL_WRITE_ADDRS = _dual(Space.WRITE_A, Space.WRITE_B)


def source_name(src: Source) -> str:
    """A short human name for error messages."""
    if isinstance(src, Accumulator):
        return f"r{src.index}"
    if isinstance(src, Immediate):
        return imm_text(src.bits, src.kind)
    space = Space.READ_A if src.files == (FILE_A,) else Space.READ_B
    info = REGISTERS[space].get(src.addr)
    if len(src.files) == 2 and info is not None:
        return info.text
    return info.text if info is not None else f"r{src.files[0]}{src.addr}"


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

class _ReadAllocation:
    """Assigns muxes and raddr fields for the sources of one ALU instruction."""

    def __init__(self) -> None:
        self.raddr_a: Optional[int] = None
        self.raddr_b: Optional[int] = None
        self.imm: Optional[Immediate] = None
        self.a_unpack: Optional[int] = None   # regfile-A unpack seen on mux-A sources
        self.r4_unpack: Optional[int] = None

    def _conflict(self, what: str) -> EncodingError:
        return EncodingError(what)

    def place_fixed(self, src: Source) -> Optional[int]:
        """First pass: accumulators, immediates and single-file reads.  None: decide later."""
        if isinstance(src, Accumulator):
            if not 0 <= src.index <= 5:
                raise EncodingError(f"there is no accumulator r{src.index}")
            if src.unpack:
                if src.index != 4:
                    raise EncodingError(
                        f"unpack on r{src.index}: only r4 and regfile-A reads can be unpacked")
                self._note_r4_unpack(src.unpack)
            elif src.index == 4:
                self._note_r4_unpack(0)
            return int(src.index)
        if isinstance(src, Immediate):
            if self.imm is not None and self.imm.bits != src.bits:
                raise EncodingError(
                    f"two different small immediates ({source_name(self.imm)} and {source_name(src)}) "
                    "in one instruction: there is one small-immediate field")
            if self.raddr_b is not None:
                raise EncodingError(
                    f"small immediate {source_name(src)} and a regfile-B read "
                    f"({self._b_name()}) both need the raddr_b field")
            self.imm = src
            return int(Mux.B)
        if not 0 <= src.addr <= 63:
            raise EncodingError(f"register address {src.addr} out of range 0..63")
        files = src.files
        if src.unpack:
            if FILE_A not in files:
                raise EncodingError(
                    f"unpack on {source_name(src)}: the regfile-A unpacker only converts reads of file A")
            files = (FILE_A,)
        if len(files) == 2:
            return None
        if files == (FILE_A,):
            return self._take_a(src)
        return self._take_b(src)

    def place_dual(self, src: RegisterRead) -> int:
        """Second pass: a read that exists in both files goes to A if possible, else B."""
        if self.raddr_a is None or self.raddr_a == src.addr:
            return self._take_a(src)
        if self.imm is None and (self.raddr_b is None or self.raddr_b == src.addr):
            return self._take_b(src)
        raise EncodingError(
            f"no read port left for {source_name(src)}: raddr_a reads {self._a_name()} and "
            f"raddr_b {'holds a small immediate' if self.imm is not None else 'reads ' + self._b_name()}")

    def _a_name(self) -> str:
        return source_name(RegisterRead(self.raddr_a or 0, (FILE_A,)))

    def _b_name(self) -> str:
        return source_name(RegisterRead(self.raddr_b or 0, (FILE_B,)))

    def _take_a(self, src: RegisterRead) -> int:
        if self.raddr_a is not None and self.raddr_a != src.addr:
            raise EncodingError(
                f"two different regfile-A reads ({self._a_name()} and {source_name(src)}) in one "
                "instruction: there is one raddr_a field; move one value to an accumulator first")
        self.raddr_a = src.addr
        self._note_a_unpack(src.unpack)
        return int(Mux.A)

    def _take_b(self, src: RegisterRead) -> int:
        if self.imm is not None:
            raise EncodingError(
                f"regfile-B read {source_name(src)} and small immediate {source_name(self.imm)} both "
                "need the raddr_b field")
        if self.raddr_b is not None and self.raddr_b != src.addr:
            raise EncodingError(
                f"two different regfile-B reads ({self._b_name()} and {source_name(src)}) in one "
                "instruction: there is one raddr_b field; move one value to an accumulator first")
        self.raddr_b = src.addr
        if src.unpack:
            raise EncodingError(f"unpack on {source_name(src)}: file B reads cannot be unpacked")
        return int(Mux.B)

    def _note_a_unpack(self, code: int) -> None:
        if self.a_unpack is None:
            self.a_unpack = code
        elif self.a_unpack != code:
            raise EncodingError(
                "the regfile-A unpack applies to every read of file A in the instruction: write the "
                "same unpack on each of them")

    def _note_r4_unpack(self, code: int) -> None:
        if self.r4_unpack is None:
            self.r4_unpack = code
        elif self.r4_unpack != code:
            raise EncodingError(
                "the r4 unpack applies to every read of r4 in the instruction: write the same unpack "
                "on each of them")


def _signal_name(signal: Signal) -> str:
    """The text-syntax name of a signal (``ldtmu0``), for messages."""
    info = SIGNALS.get(signal)
    return info.text if info is not None and info.text else signal.name.lower()


def _choose_ws(add_dst: Dest, mul_dst: Dest, add_pack_a: bool, mul_pack_a: bool) -> int:
    """Write swap: 0 = add writes file A, mul file B; 1 = the reverse."""
    add_files = set(add_dst.files)
    mul_files = set(mul_dst.files)
    if add_pack_a:
        add_files &= {FILE_A}
    if mul_pack_a:
        mul_files &= {FILE_A}
    if FILE_A in add_files and FILE_B in mul_files:
        return 0
    if FILE_B in add_files and FILE_A in mul_files:
        return 1
    for dst, packed in ((add_dst, add_pack_a), (mul_dst, mul_pack_a)):
        if packed and FILE_A not in dst.files:
            raise EncodingError(
                f"regfile-A pack .{PACK_A_MODES[dst.pack].text} on {_dest_name(dst, Space.WRITE_B)}: the pack unit "
                "only converts writes to regfile A (guide Table 7, pm=0); write an ra register, or use the mul "
                "colour pack (pm=1) on the mul destination")
    raise EncodingError(
        "the destinations need the same register file for both ALUs "
        f"(add writes {_dest_name(add_dst, Space.WRITE_A if FILE_A in add_dst.files else Space.WRITE_B)}, "
        f"mul writes {_dest_name(mul_dst, Space.WRITE_A if FILE_A in mul_dst.files else Space.WRITE_B)}): "
        "one ALU writes regfile A and the other regfile B; a regfile-A pack also needs file A")


def _dest_name(dst: Dest, space: Space) -> str:
    info = REGISTERS[space].get(dst.addr)
    return info.text if info is not None else f"r{space.file}{dst.addr}"


def _pack_fields(add_dst: Dest, mul_dst: Dest, allow_add_mul_pack: bool = False) -> Tuple[int, int, bool, bool]:
    """(pack code, pm, add has regfile-A pack, mul has regfile-A pack) from the destinations."""
    packs = []
    if add_dst.pack:
        if add_dst.mul_pack and not allow_add_mul_pack:
            raise EncodingError("the colour pack (pm=1) converts the mul ALU's result: use it on the mul "
                                "destination")
        packs.append(("add", add_dst))
    if mul_dst.pack:
        packs.append(("mul", mul_dst))
    if len(packs) > 1:
        raise EncodingError("both destinations have a pack mode: there is one pack field per instruction")
    if not packs:
        return 0, 0, False, False
    which, dst = packs[0]
    if dst.mul_pack:
        if dst.pack not in PACK_MUL_MODES:
            raise EncodingError(f"mul pack code {dst.pack} is reserved")
        return dst.pack, 1, False, False
    if dst.pack not in PACK_A_MODES:
        raise EncodingError(f"pack code {dst.pack} out of range")
    return dst.pack, 0, which == "add", which == "mul"


def _check_dest(dst: Dest) -> None:
    if not 0 <= dst.addr <= 63:
        raise EncodingError(f"write address {dst.addr} out of range 0..63")
    if not dst.files or any(f not in BOTH_FILES for f in dst.files):
        raise EncodingError(f"bad register files {dst.files!r}")


def _half_cond(cond: Optional[Cond], dst: Dest, provides_flags: bool) -> int:
    """Load-immediate/semaphore half: never when its output goes nowhere (and sets no flags)."""
    if dst.is_nop and not provides_flags:
        return int(Cond.NEVER)
    return int(Cond.ALWAYS if cond is None else cond)


def _apply_overrides(fmt: Format, fields: Fields, overrides: Sequence[Tuple[str, int]]) -> Fields:
    if not overrides:
        return fields
    names = {f.name: f for f in FIELDS[fmt]}
    out = dict(fields)
    for name, value in overrides:
        if name not in names:
            raise EncodingError(f"field {name!r} does not exist in a {fmt.value} instruction")
        if not 0 <= value <= names[name].mask:
            raise EncodingError(f"{name}={value} does not fit its {names[name].width}-bit field")
        out[name] = value
    return out


def _alu_fields(ins: AluInstruction) -> Tuple[Format, Fields]:
    add, mul = ins.add, ins.mul
    if add.op.alu is not Alu.ADD or ADD_OPS.get(add.op.code) != add.op:
        raise EncodingError(f"{add.op.name} is not an add-ALU operation")
    if mul.op.alu is not Alu.MUL or MUL_OPS.get(mul.op.code) != mul.op:
        raise EncodingError(f"{mul.op.name} is not a mul-ALU operation")
    _check_dest(add.dst)
    _check_dest(mul.dst)

    # (slot, source) for the four muxes; a unary op's b mux repeats a.
    slots: List[Tuple[str, Source]] = []
    for half, (sa, sb) in ((add, ("add_a", "add_b")), (mul, ("mul_a", "mul_b"))):
        try:
            srcs = half.sources()
        except ValueError as exc:
            raise EncodingError(str(exc)) from None
        if len(srcs) == 1:
            slots += [(sa, srcs[0]), (sb, srcs[0])]
        elif len(srcs) == 2:
            slots += [(sa, srcs[0]), (sb, srcs[1])]
    for r in ins.reads:
        if isinstance(r, RegisterRead) and r.unpack:
            raise EncodingError("a read that no ALU consumes cannot be unpacked")
        if isinstance(r, Accumulator):
            raise EncodingError("reading an accumulator needs no read field: only register-space "
                                "reads and small immediates can be a 'read'")
        slots.append(("", r))

    alloc = _ReadAllocation()
    muxes: Dict[str, int] = {"add_a": 0, "add_b": 0, "mul_a": 0, "mul_b": 0}
    pending: List[Tuple[str, RegisterRead]] = []
    for slot, src in slots:
        mux = alloc.place_fixed(src)
        if mux is None:
            assert isinstance(src, RegisterRead)
            pending.append((slot, src))
        elif slot:
            muxes[slot] = mux
    for slot, rsrc in pending:
        mux = alloc.place_dual(rsrc)
        if slot:
            muxes[slot] = mux
    # The regfile-A unpack converts everything read through mux A: a source without it next
    # to one with it would silently be converted too.
    if alloc.a_unpack and any(
            isinstance(s, RegisterRead) and muxes.get(slot) == Mux.A and s.unpack != alloc.a_unpack
            for slot, s in slots if slot):
        raise EncodingError("the regfile-A unpack applies to every read of file A in the instruction: "
                            "write the same unpack on each of them")

    # Small immediate / rotation.
    small_code: Optional[int] = None
    if ins.rotation is not None:
        if not 0 <= ins.rotation <= 15:
            raise EncodingError(f"rotation {ins.rotation} out of range (1..15, or r5)")
        small_code = 48 + ins.rotation
        if alloc.raddr_b is not None:
            raise EncodingError(f"a rotation uses the small-immediate field, so raddr_b cannot also "
                                f"read {alloc._b_name()}")
        if alloc.imm is not None and SMALL_IMMS[small_code].bits != alloc.imm.bits:
            rot = "r5" if ins.rotation == 0 else str(ins.rotation)
            raise EncodingError(
                f"small immediate {source_name(alloc.imm)} cannot be combined with rotation {rot}: that "
                f"rotation's code only delivers the value {SMALL_IMMS[small_code].text}")
    elif alloc.imm is not None:
        small_code = CODE_BY_BITS.get(alloc.imm.bits)
        if small_code is None:
            raise EncodingError(
                f"{source_name(alloc.imm)} is not a small immediate (those are the integers -16..15, "
                "and the powers of two 1/256..128 as floats); load it with ldi")

    # Pack / unpack share the pm bit.
    pack, pack_pm, add_pack_a, mul_pack_a = _pack_fields(add.dst, mul.dst)
    unpack, unpack_pm = 0, None
    if alloc.a_unpack:
        unpack, unpack_pm = alloc.a_unpack, 0
    if alloc.r4_unpack:
        if unpack_pm is not None:
            raise EncodingError("an instruction can unpack either regfile A or r4, not both")
        unpack, unpack_pm = alloc.r4_unpack, 1
    if unpack and unpack not in UNPACK_MODES:
        raise EncodingError(f"unpack code {unpack} out of range")
    pm = pack_pm if pack else 0
    if unpack_pm is not None:
        if pack and pack_pm != unpack_pm:
            raise EncodingError(
                "the pm bit selects regfile-A pack/unpack or r4 unpack/mul colour pack: this instruction "
                "asks for one of each")
        pm = unpack_pm

    if small_code is not None:
        if ins.signal is not Signal.NONE:
            raise EncodingError(
                f"signal {_signal_name(ins.signal)} cannot be combined with a small immediate or a rotation: "
                "both use the sig field")
        sig = SIG_SMALL_IMM
        fmt = Format.ALU_SMALL_IMM
    else:
        if ins.signal is not Signal.NONE and ins.signal not in ALU_SIGNALS:
            raise EncodingError(f"{ins.signal.name} is not a signal an ALU instruction can carry")
        sig = int(ins.signal)
        fmt = Format.ALU

    ws = _choose_ws(add.dst, mul.dst, add_pack_a, mul_pack_a)
    fields: Fields = {
        "sig": sig, "unpack": unpack, "pm": pm, "pack": pack,
        "cond_add": int(add.effective_cond(ins.setf and not add.op.is_nop)),
        "cond_mul": int(mul.effective_cond(ins.setf and add.op.is_nop)),
        "sf": int(bool(ins.setf)), "ws": ws,
        "waddr_add": add.dst.addr, "waddr_mul": mul.dst.addr,
        "op_mul": mul.op.code, "op_add": add.op.code,
        "raddr_a": NOP_ADDR if alloc.raddr_a is None else alloc.raddr_a,
        **muxes,
    }
    if fmt is Format.ALU_SMALL_IMM:
        fields["small_imm"] = small_code  # type: ignore[assignment]
    else:
        fields["raddr_b"] = NOP_ADDR if alloc.raddr_b is None else alloc.raddr_b
    return fmt, fields


def _imm_like_fields(add_dst: Dest, mul_dst: Dest, cond: Optional[Cond], setf: bool, mode: int) -> Fields:
    _check_dest(add_dst)
    _check_dest(mul_dst)
    pack, pm, add_pack_a, mul_pack_a = _pack_fields(add_dst, mul_dst)
    return {
        "sig": SIG_LOAD_IMM, "unpack": mode, "pm": pm, "pack": pack,
        # Flags come from the add ALU, which always "executes" a mov here (guide p.27, p.33).
        "cond_add": _half_cond(cond, add_dst, setf), "cond_mul": _half_cond(cond, mul_dst, False),
        "sf": int(bool(setf)), "ws": _choose_ws(add_dst, mul_dst, add_pack_a, mul_pack_a),
        "waddr_add": add_dst.addr, "waddr_mul": mul_dst.addr,
    }


def _branch_fields(ins: BranchInstruction, index: Optional[int], labels: Optional[Mapping[str, int]],
                   base_address: Optional[int]) -> Fields:
    if int(ins.cond) in RESERVED_BRANCH_CONDS:
        raise EncodingError(f"branch condition {int(ins.cond)} is reserved")
    for d in (ins.add_dst, ins.mul_dst):
        _check_dest(d)
        if d.pack:
            raise EncodingError("a branch's link destinations cannot be packed")
    if ins.reg is not None:
        if not 0 <= ins.reg <= 31:
            raise EncodingError(f"a branch adds a physical regfile-A register (ra0..ra31), not address {ins.reg}")
        if ins.setf != bool(ins.reg & 1):
            if ins.setf:
                raise EncodingError(
                    f"a branch sets the flags only through bit 0 of raddr_a: with ra{ins.reg} it cannot")
            raise EncodingError(
                f"branching through ra{ins.reg} also sets the flags (raddr_a bit 0 is the sf bit, vc4asm "
                "addendum): say so with .setf, or use an even register")
        raddr_a = ins.reg
    else:
        raddr_a = int(bool(ins.setf))
    target = ins.target
    if isinstance(target, Label):
        if labels is None or target.name not in labels:
            raise EncodingError(f"undefined label {target.name!r}")
        dest_index = labels[target.name]
        if ins.relative:
            if index is None:
                raise EncodingError("a relative branch to a label needs its own position")
            # Relative branches are relative to PC + 4 instructions (guide p.20 note; py-videocore).
            imm = 8 * (dest_index - (index + 4))
        else:
            if base_address is None:
                raise EncodingError(
                    f"an absolute branch (bra) to label {target.name!r} needs the program's bus address; "
                    "use brr, or bra with a register")
            imm = base_address + 8 * dest_index
    else:
        imm = target
    if not -(1 << 31) <= imm < (1 << 32):
        raise EncodingError(f"branch immediate {imm} does not fit in 32 bits")
    return {
        "sig": SIG_BRANCH, "dont_care": 0, "cond_br": int(ins.cond), "rel": int(ins.relative),
        "reg": int(ins.reg is not None), "raddr_a": raddr_a,
        "ws": _choose_ws(ins.add_dst, ins.mul_dst, False, False),
        "waddr_add": ins.add_dst.addr, "waddr_mul": ins.mul_dst.addr,
        "immediate": imm & 0xFFFFFFFF,
    }


def encode_fields_of(ins: Instruction, index: Optional[int] = None,
                     labels: Optional[Mapping[str, int]] = None,
                     base_address: Optional[int] = None) -> Tuple[Format, Fields]:
    """The format and field values of an instruction, overrides applied."""
    if isinstance(ins, RawWord):
        return decode_fields(ins.word)
    if isinstance(ins, AluInstruction):
        fmt, fields = _alu_fields(ins)
    elif isinstance(ins, LoadImmInstruction):
        if int(ins.mode) not in LOAD_IMM_MODES:
            raise EncodingError(f"load-immediate mode {int(ins.mode)} is reserved")
        if not -(1 << 31) <= ins.value < (1 << 32):
            raise EncodingError(f"immediate {ins.value} does not fit in 32 bits")
        fmt = Format.LOAD_IMM
        fields = _imm_like_fields(ins.add_dst, ins.mul_dst, ins.cond, ins.setf, int(ins.mode))
        fields["immediate"] = ins.value & 0xFFFFFFFF
    elif isinstance(ins, SemaphoreInstruction):
        if not 0 <= ins.semaphore <= 15:
            raise EncodingError(f"there are 16 semaphores (0..15), not {ins.semaphore}")
        fmt = Format.SEMAPHORE
        fields = _imm_like_fields(ins.add_dst, ins.mul_dst, ins.cond, ins.setf, int(LoadImmMode.SEMAPHORE))
        fields.update(dont_care=0, sa=int(bool(ins.acquire)), semaphore=ins.semaphore)
    elif isinstance(ins, BranchInstruction):
        fmt = Format.BRANCH
        fields = _branch_fields(ins, index, labels, base_address)
    else:
        raise TypeError(f"not an instruction: {ins!r}")
    return fmt, _apply_overrides(fmt, fields, ins.overrides)


def encode(ins: Instruction, index: Optional[int] = None, labels: Optional[Mapping[str, int]] = None,
           base_address: Optional[int] = None) -> int:
    """The 64-bit word of an instruction.

    ``index`` (the instruction's position in the program) and ``labels`` (label name ->
    instruction index) are needed for branches to labels; ``base_address`` only for
    absolute branches to labels.
    """
    if isinstance(ins, RawWord):
        if not 0 <= ins.word < 1 << 64:
            raise EncodingError(f"{ins.word!r} is not a 64-bit word")
        return ins.word
    fmt, fields = encode_fields_of(ins, index, labels, base_address)
    try:
        return encode_fields(fmt, fields)
    except ValueError as exc:
        raise EncodingError(str(exc)) from None


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

def _dest(addr: int, file: str) -> Dest:
    return Dest(addr, (file,))


def _cond_or_default(value: int, default: Cond) -> Optional[Cond]:
    c = Cond(value)
    return None if c == default else c


def _decode_alu(fmt: Format, f: Fields) -> Instruction:
    add_op = ADD_OPS.get(f["op_add"])
    if add_op is None:
        return RawWord(0, f"reserved add opcode {f['op_add']}")
    mul_op = MUL_OPS[f["op_mul"]]
    small = fmt is Format.ALU_SMALL_IMM
    pm, unpack, pack = f["pm"], f["unpack"], f["pack"]
    if pm and pack and pack not in PACK_MUL_MODES:
        return RawWord(0, f"reserved mul pack mode {pack}")

    def src(mux: int) -> Source:
        if mux < 6:
            return Accumulator(mux, unpack if (pm and mux == 4) else 0)
        if mux == Mux.A:
            return RegisterRead(f["raddr_a"], (FILE_A,), 0 if pm else unpack)
        if small:
            s = SMALL_IMMS[f["small_imm"]]
            return Immediate(s.bits, s.kind)
        return RegisterRead(f["raddr_b"], (FILE_B,))

    used_muxes: List[int] = []

    def half(op, sa: str, sb: str, waddr: int, file: str, cond: int, flags: bool) -> AluHalf:
        a = b = None
        if op.arity >= 1:
            a = src(f[sa])
            used_muxes.append(f[sa])
        if op.arity == 2:
            b = src(f[sb])
            used_muxes.append(f[sb])
        h = AluHalf(op, _dest(waddr, file), a, b, None)
        return replace(h, cond=_cond_or_default(cond, h.effective_cond(flags)))

    ws = f["ws"]
    sf = bool(f["sf"])
    add = half(add_op, "add_a", "add_b", f["waddr_add"], FILE_B if ws else FILE_A, f["cond_add"],
               sf and not add_op.is_nop)
    mul = half(mul_op, "mul_a", "mul_b", f["waddr_mul"], FILE_A if ws else FILE_B, f["cond_mul"],
               sf and add_op.is_nop)
    add, mul = _decode_packs(add, mul, pm, pack, ws)

    reads: List[Source] = []
    if Mux.A not in used_muxes and f["raddr_a"] != NOP_ADDR:
        reads.append(RegisterRead(f["raddr_a"], (FILE_A,)))
    rotation = None
    if small:
        code = f["small_imm"]
        if code >= 48:
            rotation = code - 48
        elif Mux.B not in used_muxes:
            s = SMALL_IMMS[code]
            reads.append(Immediate(s.bits, s.kind))
        signal = Signal.NONE
    else:
        if Mux.B not in used_muxes and f["raddr_b"] != NOP_ADDR:
            reads.append(RegisterRead(f["raddr_b"], (FILE_B,)))
        signal = Signal(f["sig"])
    return AluInstruction(add, mul, signal, bool(f["sf"]), rotation, tuple(reads))


def _decode_packs(add: AluHalf, mul: AluHalf, pm: int, pack: int, ws: int) -> Tuple[AluHalf, AluHalf]:
    """Put a pack mode on the destination it converts (left to overrides if that is nop)."""
    if not pack:
        return add, mul
    if pm:
        if not mul.dst.is_nop:
            mul = replace(mul, dst=replace(mul.dst, pack=pack, mul_pack=True))
        return add, mul
    if ws == 0 and not add.dst.is_nop:
        add = replace(add, dst=replace(add.dst, pack=pack))
    elif ws == 1 and not mul.dst.is_nop:
        mul = replace(mul, dst=replace(mul.dst, pack=pack))
    return add, mul


def _decode_imm_dests(f: Fields) -> Tuple[Dest, Dest, Optional[Cond]]:
    ws = f["ws"]
    add_dst = _dest(f["waddr_add"], FILE_B if ws else FILE_A)
    mul_dst = _dest(f["waddr_mul"], FILE_A if ws else FILE_B)
    pack, pm = f["pack"], f["pm"]
    if pack:
        if pm:
            if pack in PACK_MUL_MODES and not mul_dst.is_nop:
                mul_dst = replace(mul_dst, pack=pack, mul_pack=True)
        elif ws == 0 and not add_dst.is_nop:
            add_dst = replace(add_dst, pack=pack)
        elif ws == 1 and not mul_dst.is_nop:
            mul_dst = replace(mul_dst, pack=pack)
    # One condition for the halves that write; a differing one is left to the overrides.
    cond = None
    if not add_dst.is_nop or f["sf"]:
        cond = _cond_or_default(f["cond_add"], Cond.ALWAYS)
    elif not mul_dst.is_nop:
        cond = _cond_or_default(f["cond_mul"], Cond.ALWAYS)
    return add_dst, mul_dst, cond


def _decode_model(word: int) -> Instruction:
    fmt, f = decode_fields(word)
    if fmt in (Format.ALU, Format.ALU_SMALL_IMM):
        ins = _decode_alu(fmt, f)
    elif fmt is Format.LOAD_IMM:
        if f["unpack"] not in LOAD_IMM_MODES:
            return RawWord(word, f"reserved load-immediate mode {f['unpack']}")
        add_dst, mul_dst, cond = _decode_imm_dests(f)
        ins = LoadImmInstruction(f["immediate"], LoadImmMode(f["unpack"]), add_dst, mul_dst, cond, bool(f["sf"]))
    elif fmt is Format.SEMAPHORE:
        add_dst, mul_dst, cond = _decode_imm_dests(f)
        ins = SemaphoreInstruction(bool(f["sa"]), f["semaphore"], add_dst, mul_dst, cond, bool(f["sf"]))
    else:
        if f["cond_br"] in RESERVED_BRANCH_CONDS:
            return RawWord(word, f"reserved branch condition {f['cond_br']}")
        ws = f["ws"]
        imm = f["immediate"]
        if imm & 0x80000000:
            imm -= 1 << 32
        reg = f["raddr_a"] if f["reg"] else None
        ins = BranchInstruction(
            imm, BranchCond(f["cond_br"]), bool(f["rel"]), reg,
            _dest(f["waddr_add"], FILE_B if ws else FILE_A),
            _dest(f["waddr_mul"], FILE_A if ws else FILE_B),
            bool(f["raddr_a"] & 1))
    if isinstance(ins, RawWord):
        return RawWord(word, ins.reason)
    return ins


def _canonical(ins: Instruction) -> Optional[Fields]:
    bare: Any = ins
    try:
        return encode_fields_of(replace(bare, overrides=()))[1]
    except EncodingError:
        return None


def _generalize(ins: Instruction) -> Instruction:
    """Replace file-specific names of dual I/O registers by the plain names where the
    canonical encoding keeps the same bits (ws excepted for destinations: an unusual
    write swap is better shown as an override than as a raw name like rb32)."""
    ref = _canonical(ins)
    if ref is None:
        return ins

    def same(candidate: Instruction, ignore_ws: bool) -> bool:
        got = _canonical(candidate)
        if got is None:
            return False
        return all(got[k] == ref[k] for k in ref if not (ignore_ws and k == "ws"))

    def gen_src(s: Optional[Source]) -> Optional[Source]:
        if isinstance(s, RegisterRead) and len(s.files) == 1 and s.addr in DUAL_READ_ADDRS:
            return replace(s, files=BOTH_FILES)
        return s

    def gen_dst(d: Dest) -> Dest:
        if len(d.files) == 1 and d.addr in DUAL_WRITE_ADDRS:
            return replace(d, files=BOTH_FILES)
        return d

    # Candidate edits, tried in order: (ignore ws?, edited copy of the instruction).
    def candidates(cur: Any) -> List[Tuple[bool, Any]]:
        out: List[Tuple[bool, Any]] = []
        if isinstance(cur, AluInstruction):
            for hname in ("add", "mul"):
                h = getattr(cur, hname)
                for slot in ("a", "b"):
                    out.append((False, replace(cur, **{hname: replace(h, **{slot: gen_src(getattr(h, slot))})})))
            for k in range(len(cur.reads)):
                reads = tuple(cast(Source, gen_src(r)) if j == k else r for j, r in enumerate(cur.reads))
                out.append((False, replace(cur, reads=reads)))
            for hname in ("add", "mul"):
                h = getattr(cur, hname)
                out.append((True, replace(cur, **{hname: replace(h, dst=gen_dst(h.dst))})))
        else:
            for dname in ("add_dst", "mul_dst"):
                out.append((True, replace(cur, **{dname: gen_dst(getattr(cur, dname))})))
        return out

    n_edits = len(candidates(ins))
    for k in range(n_edits):
        ignore_ws, candidate = candidates(ins)[k]
        if candidate != ins and same(candidate, ignore_ws):
            ins = candidate
    return ins


def decode(word: int) -> Instruction:
    """The instruction model of a 64-bit word; ``encode(decode(word)) == word`` always."""
    if not 0 <= word < 1 << 64:
        raise ValueError(f"not a 64-bit instruction word: {word!r}")
    ins = _decode_model(word)
    if isinstance(ins, RawWord):
        return ins
    ins = _generalize(ins)
    canon = _canonical(ins)
    if canon is None:
        return RawWord(word, "no readable form reproduces this word")
    _, actual = decode_fields(word)
    diff = tuple((k, v) for k, v in actual.items() if canon.get(k) != v)
    full: Any = replace(cast(Any, ins), overrides=diff)
    ins = full
    if encode(ins) != word:  # pragma: no cover - would be a bug in the tables above
        return RawWord(word, "internal: decoded form does not re-encode")
    return ins


def decode_words(words: Sequence[int]) -> List[Instruction]:
    return [decode(w) for w in words]


def words_from_bytes(data: Union[bytes, bytearray, memoryview]) -> List[int]:
    """Little-endian 64-bit words of a code buffer (its length must be a multiple of 8)."""
    from .errors import DecodeError
    data = bytes(data)
    if len(data) % 8:
        raise DecodeError(f"code is {len(data)} bytes long: not a whole number of 8-byte instructions")
    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]


def bytes_from_words(words: Sequence[int]) -> bytes:
    return b"".join(int(w).to_bytes(8, "little") for w in words)
