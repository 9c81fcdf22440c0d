"""Program flow and synchronisation in the DSL: labels, branches, counted loops, semaphores,
the mutex, host interrupt, program end, thread switches and TMU load signals.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from .builder_alu import AluOps
from .builder_base import _LABEL_NAME, _RESERVED_LABEL_NAMES, Issued, Label, Target
from .errors import AssemblyError
from .instruction import (
    NO_DEST,
    AluInstruction,
    BranchInstruction,
    RegisterRead,
    SemaphoreInstruction,
)
from .instruction import Label as _ModelLabel
from .isa.ops import ADD_OPS_BY_DSL
from .isa.signals import BranchCond, Signal
from .registers import (
    Register,
    host_interrupt,
    kernel_location,
    mutex,
    null,
    operand_name,
)


class CountedLoop:
    """The context manager returned by :meth:`Kernel.loop`."""

    __slots__ = ("_kernel", "_counter", "_count", "_name", "_top")

    def __init__(self, kernel: ControlFlow, counter: Register, count: Union[int, Register, None],
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




class ControlFlow(AluOps):
    """Labels, branches, loops, synchronisation and program end."""

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

