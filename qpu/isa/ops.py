"""The add-ALU and mul-ALU opcodes with their arity and operand kinds.

Source: Reference Guide, "QPU Instruction Set", Table 12 (op_add, p.35-36) and
Table 13 (op_mul, p.36).  Add opcodes 9-11 and 25-29 are reserved.

``name`` is the guide's mnemonic, used by the text syntax (``add``, ``and``,
``mul24`` ...).  ``dsl_name`` is the Python builder method: Python keywords and
the integer/float ambiguity make py-videocore's names the better fit there
(``iadd``, ``band``, ``imul24``); docs/tutorial.md has the table.

``in_kind``/``out_kind`` say whether an operand / the result is a float or an
integer.  The hardware needs them: regfile-A unpack converts to float "if any ALU
consuming data executes float instruction", and the regfile-A pack converts to a
16-bit float "if input was float result" (Tables 6 and 7, p.31).
"""

from __future__ import annotations

import enum
from typing import Dict, NamedTuple, Optional


class Kind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    NONE = "none"  # nop


class Alu(enum.Enum):
    ADD = "add"
    MUL = "mul"


class OpInfo(NamedTuple):
    alu: Alu
    code: int
    name: str          # text-syntax mnemonic (the guide's)
    dsl_name: str      # Python builder method
    arity: int         # number of source operands actually used
    in_kind: Kind
    out_kind: Kind
    doc: str

    @property
    def is_nop(self) -> bool:
        return self.code == 0


def _op(alu: Alu, code: int, name: str, dsl: str, arity: int, kin: Kind, kout: Kind, doc: str) -> OpInfo:
    return OpInfo(alu, code, name, dsl, arity, kin, kout, doc)


_A, _M = Alu.ADD, Alu.MUL
_I, _F, _N = Kind.INT, Kind.FLOAT, Kind.NONE

ADD_OPS: Dict[int, OpInfo] = {o.code: o for o in (
    _op(_A, 0, "nop", "nop", 0, _N, _N, "no operation"),
    _op(_A, 1, "fadd", "fadd", 2, _F, _F, "float add"),
    _op(_A, 2, "fsub", "fsub", 2, _F, _F, "float subtract"),
    _op(_A, 3, "fmin", "fmin", 2, _F, _F, "float minimum"),
    _op(_A, 4, "fmax", "fmax", 2, _F, _F, "float maximum"),
    _op(_A, 5, "fminabs", "fminabs", 2, _F, _F, "float minimum of absolute values"),
    _op(_A, 6, "fmaxabs", "fmaxabs", 2, _F, _F, "float maximum of absolute values"),
    _op(_A, 7, "ftoi", "ftoi", 1, _F, _I, "float to signed integer"),
    _op(_A, 8, "itof", "itof", 1, _I, _F, "signed integer to float"),
    _op(_A, 12, "add", "iadd", 2, _I, _I, "integer add"),
    _op(_A, 13, "sub", "isub", 2, _I, _I, "integer subtract"),
    _op(_A, 14, "shr", "shr", 2, _I, _I, "logical shift right (by the low 5 bits of b)"),
    _op(_A, 15, "asr", "asr", 2, _I, _I, "arithmetic shift right (by the low 5 bits of b)"),
    _op(_A, 16, "ror", "ror", 2, _I, _I, "rotate right (by the low 5 bits of b)"),
    _op(_A, 17, "shl", "shl", 2, _I, _I, "shift left (by the low 5 bits of b)"),
    _op(_A, 18, "min", "imin", 2, _I, _I, "signed integer minimum"),
    _op(_A, 19, "max", "imax", 2, _I, _I, "signed integer maximum"),
    _op(_A, 20, "and", "band", 2, _I, _I, "bitwise and"),
    _op(_A, 21, "or", "bor", 2, _I, _I, "bitwise or"),
    _op(_A, 22, "xor", "bxor", 2, _I, _I, "bitwise exclusive or"),
    _op(_A, 23, "not", "bnot", 1, _I, _I, "bitwise not"),
    _op(_A, 24, "clz", "clz", 1, _I, _I, "count leading zeros"),
    _op(_A, 30, "v8adds", "v8adds", 2, _I, _I, "per-byte unsigned add with saturation"),
    _op(_A, 31, "v8subs", "v8subs", 2, _I, _I, "per-byte unsigned subtract with saturation"),
)}

MUL_OPS: Dict[int, OpInfo] = {o.code: o for o in (
    _op(_M, 0, "nop", "nop", 0, _N, _N, "no operation"),
    _op(_M, 1, "fmul", "fmul", 2, _F, _F, "float multiply"),
    _op(_M, 2, "mul24", "imul24", 2, _I, _I, "multiply of the low 24 bits, low 32 bits of the product"),
    _op(_M, 3, "v8muld", "v8muld", 2, _I, _I, "per-byte multiply of values in [0, 1.0]"),
    _op(_M, 4, "v8min", "v8min", 2, _I, _I, "per-byte unsigned minimum"),
    _op(_M, 5, "v8max", "v8max", 2, _I, _I, "per-byte unsigned maximum"),
    _op(_M, 6, "v8adds", "v8adds", 2, _I, _I, "per-byte unsigned add with saturation"),
    _op(_M, 7, "v8subs", "v8subs", 2, _I, _I, "per-byte unsigned subtract with saturation"),
)}

RESERVED_ADD_CODES = frozenset(range(32)) - frozenset(ADD_OPS)
RESERVED_MUL_CODES = frozenset(range(8)) - frozenset(MUL_OPS)

ADD_OPS_BY_NAME: Dict[str, OpInfo] = {o.name: o for o in ADD_OPS.values()}
MUL_OPS_BY_NAME: Dict[str, OpInfo] = {o.name: o for o in MUL_OPS.values()}
ADD_OPS_BY_DSL: Dict[str, OpInfo] = {o.dsl_name: o for o in ADD_OPS.values()}
MUL_OPS_BY_DSL: Dict[str, OpInfo] = {o.dsl_name: o for o in MUL_OPS.values()}

# Text-syntax aliases accepted on input (py-videocore's names, Mesa's upper case is folded).
ADD_ALIASES: Dict[str, str] = {o.dsl_name: o.name for o in ADD_OPS.values() if o.dsl_name != o.name}
MUL_ALIASES: Dict[str, str] = {o.dsl_name: o.name for o in MUL_OPS.values() if o.dsl_name != o.name}

# "mov" is not an opcode: or/v8min with both operands the same source (vc4asm, py-videocore).
MOV_ADD = ADD_OPS_BY_NAME["or"]
MOV_MUL = MUL_OPS_BY_NAME["v8min"]


def add_op(name: str) -> Optional[OpInfo]:
    name = name.lower()
    return ADD_OPS_BY_NAME.get(ADD_ALIASES.get(name, name))


def mul_op(name: str) -> Optional[OpInfo]:
    name = name.lower()
    return MUL_OPS_BY_NAME.get(MUL_ALIASES.get(name, name))
