"""Static checker: the hardware's programming rules, checked on the machine words.

``check(program)`` decodes every word, follows the program's control flow and
reports each violated rule of ``qpu.isa.rules`` (rule id, level, instruction
index and byte address, the instruction's disassembly, the kernel source line
when the Program knows it, a specific message, and the guide / addendum citation).

Control flow
------------
The QPU executes the three instructions after a branch before the jump takes
effect, and the two after a program end (thrend/ldcend) before it stops (guide
p.34, p.21).  So the successor of an instruction depends on what is pending: the
analysis works on nodes ``(index, pending events)``, where an event is a branch
or a program end (or a thread switch, which only matters for its own rule) still
waiting for its delay slots.  A conditional branch has both successors, an
unconditional one only its target; a branch through a register or an absolute
branch (its target depends on the load address) is not followed: an info-level
``branch-target-unknown`` note says so.  The instruction after a branch with link
(a call) is where the callee returns: it is checked with unknown state.
Instructions no path reaches (code reached only through register branches) are
checked too, with unknown state.

Rules on neighbouring instructions (read after write, r4 after an SFU write,
rotation after a write, uniforms after unif_addr, tmu_noswap distance, the thread
end's delay slots) look along these edges, so a loop's last instruction precedes
its first.  Counting rules (outstanding TMU requests, VPM reads set up, VPM write
set up) run a small data-flow analysis over the same graph: each node holds the
set of counts possible on the paths reaching it.  A problem on every path is
reported at the rule's level; one that only some paths have (possibly paths that
cannot happen at run time: the analysis does not know the flags) is reported as
a warning and says "on some paths".

Conservative choices (values are unknown statically)
----------------------------------------------------
* A write counts when its condition is not ``never``: conditional writes may
  happen.  A read counts when the raddr field names it (whether or not an ALU
  uses the value: the hardware reads it, as vc4asm's ``read`` does).
* A value written to vr_setup / vw_setup is known when it comes from a
  load-immediate, directly or through a ``mov`` from a register that a
  load-immediate set on every path (searched up to 32 instructions back).  An
  unknown vr_setup value stops the VPM-read counting on that path (it may be a
  read setup or a DMA setup); an unknown vw_setup value is taken as a write setup.
* TMU requests are counted per register name (tmu0_s writes against ldtmu0
  signals, tmu1_s against ldtmu1); the automatic TMU swap on QPUs 2 and 3 (guide
  p.40) is assumed to apply to requests and loads alike.  A request counts as one
  FIFO entry whatever t/r/b coordinates it also wrote (exact for direct memory
  lookups, which write s only).
* Accumulators written by both ALUs under opposite conditions (zs/zc, ns/nc,
  cs/cc) are not reported: Broadcom's GPU_FFT shaders rely on it.
* Each program entry point starts with no TMU request outstanding, no VPM read
  set up and no VPM write set up.
"""

from __future__ import annotations

from typing import Sequence

from ..program import ProgramLike, as_program
from .dataflow import DataflowRules
from .report import _LEVEL_ORDER, CheckError, CheckReport, Finding

__all__ = ["check", "CheckReport", "Finding", "CheckError"]


class _Checker(DataflowRules):
    """All the rule passes over one program."""

    def run(self) -> CheckReport:
        for ins in self.ins:
            self.local_rules(ins)
        if self.n:
            self.build_graph()
            self.neighbour_rules()
            self.dataflow()
        findings = sorted(self.found.values(), key=lambda f: (f.index, _LEVEL_ORDER[f.level], f.rule))
        return CheckReport(findings, self.program)




def check(program: ProgramLike, *, threaded: bool = False, entry_points: Sequence[int] = (0,)) -> CheckReport:
    """Check a program against the hardware's programming rules (``qpu.isa.rules``).

    ``program``: a Program (its labels and source locations make the messages better),
    bytes, or a sequence of 64-bit words.  ``threaded``: the program runs as one of two
    threads on a QPU (halves the TMU FIFO budget).  ``entry_points``: instruction indices
    where the QPU starts the program.

    Returns a CheckReport; ``report.raise_for_errors()`` raises CheckError if any
    error-level rule is violated.
    """
    prog = as_program(program)
    return _Checker(prog, threaded, entry_points).run()
