"""The one import a kernel author needs: ``from qpu.dsl import *``.

Re-exports the builder (:class:`Kernel`, :func:`assemble`, :class:`Label`), every
register constant of ``qpu.registers``, the condition / signal / branch-condition
enums and the error type.  Nothing is injected anywhere: these are ordinary names
listed in ``__all__``, so IDEs complete them and mypy checks their use::

    from qpu.dsl import *

    def double(k: Kernel) -> None:
        k.mov(ra0, uniform)
        k.iadd(r0, ra0, ra0, set_flags=True)
        k.mov(r1, 1, cond=Cond.ZS)
        k.exit()

    program = assemble(double)
"""

from __future__ import annotations

from .builder import Issued, Kernel, Label, assemble
from .errors import AssemblyError, QPUError, SourceLocation
from .isa.signals import BranchCond, Cond, Signal
from .program import Program
from .registers import (
    Register,
    element_number,
    host_interrupt,
    ms_flags,
    mutex,
    null,
    qpu_number,
    quad_x,
    quad_y,
    r0,
    r1,
    r2,
    r3,
    r4,
    r5,
    r5quad,
    r5rep,
    ra,
    ra0,
    ra1,
    ra2,
    ra3,
    ra4,
    ra5,
    ra6,
    ra7,
    ra8,
    ra9,
    ra10,
    ra11,
    ra12,
    ra13,
    ra14,
    ra15,
    ra16,
    ra17,
    ra18,
    ra19,
    ra20,
    ra21,
    ra22,
    ra23,
    ra24,
    ra25,
    ra26,
    ra27,
    ra28,
    ra29,
    ra30,
    ra31,
    rb,
    rb0,
    rb1,
    rb2,
    rb3,
    rb4,
    rb5,
    rb6,
    rb7,
    rb8,
    rb9,
    rb10,
    rb11,
    rb12,
    rb13,
    rb14,
    rb15,
    rb16,
    rb17,
    rb18,
    rb19,
    rb20,
    rb21,
    rb22,
    rb23,
    rb24,
    rb25,
    rb26,
    rb27,
    rb28,
    rb29,
    rb30,
    rb31,
    rev_flag,
    sfu_exp2,
    sfu_log2,
    sfu_recip,
    sfu_recipsqrt,
    tlb_alpha_mask,
    tlb_color_all,
    tlb_color_ms,
    tlb_stencil_setup,
    tlb_z,
    tmu0_b,
    tmu0_r,
    tmu0_s,
    tmu0_t,
    tmu1_b,
    tmu1_r,
    tmu1_s,
    tmu1_t,
    tmu_noswap,
    uniform,
    uniforms_address,
    varying,
    vpm,
    vpm_ld_addr,
    vpm_ld_busy,
    vpm_ld_wait,
    vpm_st_addr,
    vpm_st_busy,
    vpm_st_wait,
    vpmvcd_rd_setup,
    vpmvcd_wr_setup,
    x_pixel_coord,
    y_pixel_coord,
)

__all__ = [
    # builder
    "Kernel", "Issued", "Label", "assemble", "Program",
    # enums and errors
    "Cond", "Signal", "BranchCond", "AssemblyError", "QPUError", "SourceLocation", "Register",
    # accumulators and register files
    "r0", "r1", "r2", "r3", "r4", "r5", "ra", "rb",
    "ra0", "ra1", "ra2", "ra3", "ra4", "ra5", "ra6", "ra7", "ra8", "ra9", "ra10", "ra11", "ra12",
    "ra13", "ra14", "ra15", "ra16", "ra17", "ra18", "ra19", "ra20", "ra21", "ra22", "ra23", "ra24",
    "ra25", "ra26", "ra27", "ra28", "ra29", "ra30", "ra31",
    "rb0", "rb1", "rb2", "rb3", "rb4", "rb5", "rb6", "rb7", "rb8", "rb9", "rb10", "rb11", "rb12",
    "rb13", "rb14", "rb15", "rb16", "rb17", "rb18", "rb19", "rb20", "rb21", "rb22", "rb23", "rb24",
    "rb25", "rb26", "rb27", "rb28", "rb29", "rb30", "rb31",
    # I/O registers
    "uniform", "varying", "element_number", "qpu_number", "null", "r5quad", "r5rep",
    "vpm", "vpm_ld_busy", "vpm_st_busy", "vpm_ld_wait", "vpm_st_wait", "vpmvcd_rd_setup",
    "vpmvcd_wr_setup", "vpm_ld_addr", "vpm_st_addr",
    "mutex", "host_interrupt", "uniforms_address", "tmu_noswap",
    "sfu_recip", "sfu_recipsqrt", "sfu_exp2", "sfu_log2",
    "tmu0_s", "tmu0_t", "tmu0_r", "tmu0_b", "tmu1_s", "tmu1_t", "tmu1_r", "tmu1_b",
    "tlb_stencil_setup", "tlb_z", "tlb_color_ms", "tlb_color_all", "tlb_alpha_mask",
    "x_pixel_coord", "y_pixel_coord", "quad_x", "quad_y", "ms_flags", "rev_flag",
]
