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

from typing import Any, Callable

from .builder_base import Issued, Label
from .builder_control import CountedLoop
from .builder_io import Peripherals
from .program import Program


class Kernel(Peripherals):
    """Builder of one QPU program; pass it to your kernel function, or use :func:`assemble`.

    ``name`` names the Program; ``base_address`` (the program's bus address) is only
    needed for absolute branches (``bra``) to labels.  The methods come from
    ``builder_alu`` (ALU ops, ldi), ``builder_control`` (labels, branches, loops,
    semaphores, exit) and ``builder_io`` (VPM/DMA/TMU); ``builder_base`` holds the
    machinery they share.
    """


def assemble(kernel_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Program:
    """Run ``kernel_fn(Kernel(name=kernel_fn.__name__), *args, **kwargs)`` and build the Program."""
    k = Kernel(name=getattr(kernel_fn, "__name__", "kernel"))
    kernel_fn(k, *args, **kwargs)
    return k.build()



__all__ = ["Kernel", "Issued", "Label", "CountedLoop", "assemble"]
