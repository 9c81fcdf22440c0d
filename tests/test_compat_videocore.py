"""qpu.compat.videocore: py-videocore kernels assemble unchanged, to py-videocore's bits.

Golden words are computed here by hand from py-videocore's documented encoding rules
(read from its source as facts, see qpu/compat/videocore.py's docstring: flags set by
default on add ops except mov, conditions "always" unless given, ldi's condition on
both ALUs, semaphores always/always, nop = "nop r0" with condition always, unary ops
read r0 through b) and the guide's field layout (Figure 3 / Table 1, p.26-27).
py-videocore's code is not run.

Kernels are compiled from source strings into their own namespace, because @qpu
writes names into the kernel module's globals (py-videocore's behaviour).
"""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List

import pytest

from qpu.compat.videocore import AssembleError, Assembler, assemble, get_label_positions, program
from qpu.errors import AssemblyError

# Table 2 (p.28), Table 3 (p.28), Table 14 (p.37-38)
NEVER, ALWAYS, ZS = 0, 1, 2
MUX_A, MUX_B = 6, 7
W_R0, W_R1, W_R5, HOST_INT, NOP, UNIF, VPM, VR_SETUP, VW_SETUP, VR_ADDR, VW_ADDR = (
    32, 33, 37, 38, 39, 32, 48, 49, 49, 50, 50)


def alu(*, sig: int = 1, unpack: int = 0, pm: int = 0, pack: int = 0, cond_add: int = NEVER,
        cond_mul: int = NEVER, sf: int = 0, ws: int = 0, waddr_add: int = NOP, waddr_mul: int = NOP,
        op_mul: int = 0, op_add: int = 0, raddr_a: int = NOP, raddr_b: int = NOP, add_a: int = 0,
        add_b: int = 0, mul_a: int = 0, mul_b: int = 0) -> int:
    """ALU word, Figure 3 / Table 1 (p.26-27)."""
    return (sig << 60 | unpack << 57 | pm << 56 | pack << 52 | cond_add << 49 | cond_mul << 46 | sf << 45
            | ws << 44 | waddr_add << 38 | waddr_mul << 32 | op_mul << 29 | op_add << 24 | raddr_a << 18
            | raddr_b << 12 | add_a << 9 | add_b << 6 | mul_a << 3 | mul_b)


def ldi_word(imm: int, *, mode: int = 0, cond: int = ALWAYS, sf: int = 0, ws: int = 0, waddr_add: int = NOP,
             waddr_mul: int = NOP) -> int:
    """Load immediate (Figure 5, p.33); py-videocore writes one condition to both ALUs."""
    return (14 << 60 | mode << 57 | cond << 49 | cond << 46 | sf << 45 | ws << 44 | waddr_add << 38
            | waddr_mul << 32 | (imm & 0xFFFFFFFF))


def branch_word(imm: int, *, cond_br: int = 15, rel: int = 1, reg: int = 0, raddr_a: int = 0) -> int:
    """Branch (Figure 7 / Table 10, p.34) with no link."""
    return (15 << 60 | cond_br << 52 | rel << 51 | reg << 50 | raddr_a << 45 | NOP << 38 | NOP << 32
            | (imm & 0xFFFFFFFF))


VC_NOP = alu(cond_add=ALWAYS, waddr_add=W_R0)  # py-videocore's nop: "nop r0, r0, r0", condition always


def mov(waddr: int, *, raddr_a: int = NOP, raddr_b: int = NOP, mux: int = MUX_A, ws: int = 0,
        cond: int = ALWAYS) -> int:
    return alu(op_add=21, cond_add=cond, ws=ws, waddr_add=waddr, raddr_a=raddr_a, raddr_b=raddr_b,
               add_a=mux, add_b=mux)


def build(body: str, name: str = "kernel", **kwargs: Any) -> List[int]:
    """Compile a py-videocore kernel whose body is ``body`` and assemble it."""
    ns = compile_kernels(f"@qpu\ndef {name}(asm):\n" + textwrap.indent(textwrap.dedent(body), "    "))
    return program(ns[name], **kwargs).words


def compile_kernels(source: str, filename: str = "vc_kernels.py") -> Dict[str, Any]:
    ns: Dict[str, Any] = {}
    exec(compile("from qpu.compat.videocore import *\n" + source, filename, "exec"), ns)
    return ns


# ------------------------------------------------------------------------------------------
# Conventions
# ------------------------------------------------------------------------------------------

def test_nop_and_flags_defaults() -> None:
    assert build("nop()") == [VC_NOP]
    # add ops set the flags unless told not to
    assert build("iadd(r0, r1, r2)") == [alu(op_add=12, cond_add=ALWAYS, sf=1, waddr_add=W_R0, add_a=1, add_b=2)]
    assert build("iadd(r0, r1, r2, set_flags=False)") == [alu(op_add=12, cond_add=ALWAYS, waddr_add=W_R0,
                                                              add_a=1, add_b=2)]
    # mov does not; its result to null still has condition always
    assert build("mov(r0, uniform)") == [mov(W_R0, raddr_a=UNIF)]
    assert build("mov(null, vpm_st_wait)") == [mov(NOP, raddr_b=50, mux=MUX_B)]
    assert build("mov(r0, r1, set_flags=True)") == [alu(op_add=21, cond_add=ALWAYS, sf=1, waddr_add=W_R0,
                                                        add_a=1, add_b=1)]
    # conditions by name
    assert build("mov(r2, r5, cond='zs')") == [alu(op_add=21, cond_add=ZS, waddr_add=34, add_a=5, add_b=5)]


def test_unary_ops_read_r0_through_b() -> None:
    for name, code in (("ftoi", 7), ("itof", 8), ("bnot", 23), ("clz", 24)):
        assert build(f"{name}(r0, r3)") == [alu(op_add=code, cond_add=ALWAYS, sf=1, waddr_add=W_R0, add_a=3,
                                                add_b=0)]


def test_mul_ops() -> None:
    assert build("fmul(r0, r1, r2)") == [alu(op_mul=1, cond_mul=ALWAYS, waddr_mul=W_R0, mul_a=1, mul_b=2)]
    assert build("iadd(ra0, ra0, 1).fmul(rb1, r1, r2)") == [alu(
        sig=13, op_add=12, cond_add=ALWAYS, sf=1, waddr_add=0, raddr_a=0, raddr_b=1, add_a=MUX_A, add_b=MUX_B,
        op_mul=1, cond_mul=ALWAYS, waddr_mul=1, mul_a=1, mul_b=2)]
    assert build("nop().nop()") == [alu(cond_add=ALWAYS, waddr_add=W_R0, cond_mul=ALWAYS, waddr_mul=W_R0)]
    assert build("nop(sig='load tmu0')") == [alu(sig=10, cond_add=ALWAYS, waddr_add=W_R0)]
    assert build("fmul(r0, r1, r2, pack='rep 8')") == [alu(pm=1, pack=3, op_mul=1, cond_mul=ALWAYS,
                                                          waddr_mul=W_R0, mul_a=1, mul_b=2)]


def test_rotations() -> None:
    # rotate = v8min (mul op 4) with small-immediate code 48 + shift % 16
    assert build("rotate(r1, r0, -1)") == [alu(sig=13, raddr_b=63, op_mul=4, cond_mul=ALWAYS, waddr_mul=W_R1)]
    # sgemm.py: rotate(broadcast, r2, -COEF_ADDR_IDX): broadcast = r5rep (write B 37)
    assert build("rotate(broadcast, r2, -3)") == [alu(sig=13, raddr_b=61, op_mul=4, cond_mul=ALWAYS,
                                                      waddr_mul=W_R5, mul_a=2, mul_b=2)]
    assert build("rotate(r1, r0, r5)") == [alu(sig=13, raddr_b=48, op_mul=4, cond_mul=ALWAYS, waddr_mul=W_R1)]
    assert build("rotate(r1, ra0, 2)") == [alu(sig=13, raddr_a=0, raddr_b=50, op_mul=4, cond_mul=ALWAYS,
                                               waddr_mul=W_R1, mul_a=MUX_A, mul_b=MUX_A)]
    assert build("rotate(r1, r0, 0)") == [alu(op_mul=4, cond_mul=ALWAYS, waddr_mul=W_R1)]


def test_pack_unpack_names() -> None:
    assert build("iadd(ra0.pack('16a sat'), r0, r1)") == [alu(pack=9, op_add=12, cond_add=ALWAYS, sf=1,
                                                             waddr_add=0, add_a=0, add_b=1)]
    assert build("mov(ra0.pack('rep 8'), r1)") == [alu(pack=3, op_add=21, cond_add=ALWAYS, waddr_add=0,
                                                      add_a=1, add_b=1)]
    assert build("fmul(r0, ra0.unpack('rep 8d'), r1)") == [alu(unpack=3, op_mul=1, cond_mul=ALWAYS,
                                                              waddr_mul=W_R0, raddr_a=0, mul_a=MUX_A, mul_b=1)]
    assert build("fmul(r0, r4.unpack('8a'), r1)") == [alu(unpack=4, pm=1, op_mul=1, cond_mul=ALWAYS,
                                                         waddr_mul=W_R0, mul_a=4, mul_b=1)]


def test_uniforms_address_is_a_regfile_a_write() -> None:
    # py-videocore lists uniforms_address as writable through A only: the mul writes it with ws = 1
    assert build("iadd(r0, r1, r2).mov(uniforms_address, r3)") == [alu(
        ws=1, op_add=12, cond_add=ALWAYS, sf=1, waddr_add=W_R0, add_a=1, add_b=2,
        op_mul=4, cond_mul=ALWAYS, waddr_mul=40, mul_a=3, mul_b=3)]


def test_ldi_and_semaphores() -> None:
    assert build("ldi(r0, 5)") == [ldi_word(5, waddr_add=W_R0)]
    assert build("ldi(r0, -1)") == [ldi_word(0xFFFFFFFF, waddr_add=W_R0)]
    assert build("ldi(r0, 1.0)") == [ldi_word(0x3F800000, waddr_add=W_R0)]
    assert build("ldi(ra1, rb2, 7)") == [ldi_word(7, waddr_add=1, waddr_mul=2)]
    assert build("ldi(null, 3, set_flags=True)") == [ldi_word(3, sf=1)]
    assert build("ldi(r1, 9, cond='zs')") == [ldi_word(9, cond=ZS, waddr_add=W_R1)]
    # short per-element lists are padded with 0; any negative value makes them signed (mode 1)
    assert build("ldi(r0, [-1, -1, -1])") == [ldi_word(0x00070007, mode=1, waddr_add=W_R0)]
    assert build("ldi(r0, [3, 2, 1])") == [ldi_word(0x00030005, mode=3, waddr_add=W_R0)]
    # semaphores: both conditions always (Figure 6: mode 4, sa bit 4)
    assert build("sema_up(3)") == [ldi_word(3, mode=4)]
    assert build("sema_down(9)") == [ldi_word(1 << 4 | 9, mode=4)]


def test_branches_and_labels() -> None:
    words = build("""
        L.top
        nop()
        jzc(L.top)
        nop(); nop(); nop()
        jmp(L.end)
        nop(); nop(); nop()
        with namespace('ns'):
            L.end
            jzs_any(L.end)
        L.end
        jmp(reg=ra1)
        jmp(reg=ra2, absolute=True)
        jmp(64)
    """)
    assert words[1] == branch_word(8 * (0 - (1 + 4)), cond_br=1)          # jzc = all Z clear
    assert words[5] == branch_word(8 * (10 - (5 + 4)))                      # to the outer L.end
    assert words[9] == branch_word(8 * (9 - (9 + 4)), cond_br=2)          # ns.end, any Z set
    assert words[10] == branch_word(0, reg=1, raddr_a=1)                   # odd register: flags implied
    assert words[11] == branch_word(0, rel=0, reg=1, raddr_a=2)
    assert words[12] == branch_word(64)


def test_raw_words() -> None:
    # py-videocore tests/test_raw.py: raw(0xDEADBEEF, 0xFEEDFACE) prints as "0xDEADBEEF, 0xFEEDFACE,"
    assert build("raw(0xDEADBEEF, 0xFEEDFACE)") == [0xFEEDFACE_DEADBEEF]
    assert build("raw_program(b'\\xEF\\xBE\\xAD\\xDE\\xCE\\xFA\\xED\\xFE\\xBE\\xBE\\xFE\\xCA\\x0D\\xF0\\xDD\\xBA')") \
        == [0xFEEDFACE_DEADBEEF, 0xBADDF00D_CAFEBEBE]


# ------------------------------------------------------------------------------------------
# A whole py-videocore kernel, unchanged (examples/hello_world.py's GPU side)
# ------------------------------------------------------------------------------------------

HELLO_WORLD = '''
@qpu
def hello_world(asm):
    # Load two vectors of length 16 from the host memory (address=uniforms[0]) to VPM
    setup_dma_load(nrows=2)
    start_dma_load(uniform)
    wait_dma_load()

    # Setup VPM read/write operations
    setup_vpm_read(nrows=2)
    setup_vpm_write()

    # Compute a + b
    mov(r0, vpm)
    mov(r1, vpm)
    fadd(vpm, r0, r1)

    # Store the result vector from VPM to the host memory (address=uniforms[1])
    setup_dma_store(nrows=1)
    start_dma_store(uniform)
    wait_dma_store()

    # Finish the thread
    exit()
'''


def test_hello_world_bits() -> None:
    ns = compile_kernels(HELLO_WORLD)
    code = assemble(ns["hello_world"])
    words = [int.from_bytes(code[i:i + 8], "little") for i in range(0, len(code), 8)]
    assert words == [
        # setup_dma_load(nrows=2): Table 36 with mpitch 3, rowlen 16 (0), nrows 2, vpitch 1
        ldi_word(1 << 31 | 3 << 24 | 0 << 20 | 2 << 16 | 1 << 12, waddr_add=VR_SETUP),
        mov(VR_ADDR, raddr_a=UNIF),                        # start_dma_load(uniform)
        mov(NOP, raddr_a=50),                              # wait_dma_load(): read vr_wait (A 50)
        ldi_word(2 << 20 | 1 << 12 | 1 << 11 | 2 << 8, waddr_add=VR_SETUP),   # setup_vpm_read(nrows=2)
        ldi_word(1 << 12 | 1 << 11 | 2 << 8, waddr_add=VW_SETUP, ws=1),      # setup_vpm_write()
        mov(W_R0, raddr_a=VPM),
        mov(W_R1, raddr_a=VPM),
        alu(op_add=1, cond_add=ALWAYS, sf=1, waddr_add=VPM, add_a=0, add_b=1),  # fadd sets flags
        # setup_dma_store(nrows=1): Table 34 units 1, depth 16, horizontal
        ldi_word(2 << 30 | 1 << 23 | 16 << 16 | 1 << 14, waddr_add=VW_SETUP, ws=1),
        mov(VW_ADDR, raddr_a=UNIF, ws=1),                  # vw_addr is the B-side write 50
        mov(NOP, raddr_b=50, mux=MUX_B),                   # wait_dma_store(): read vw_wait (B 50)
        # exit(): host interrupt 1, "mov r0, r0 ; thread end" with a mul mov r0, r0, then 2 nops
        alu(sig=13, op_add=21, cond_add=ALWAYS, waddr_add=HOST_INT, raddr_b=1, add_a=MUX_B, add_b=MUX_B),
        alu(sig=3, op_add=21, cond_add=ALWAYS, waddr_add=W_R0, op_mul=4, cond_mul=ALWAYS, waddr_mul=W_R0),
        VC_NOP,
        VC_NOP,
    ]
    # the Program knows where each instruction came from
    p = program(ns["hello_world"])
    assert [s.line for s in p.source if s is not None][:3] == [6, 7, 8]
    assert all(s is not None and s.file == "vc_kernels.py" for s in p.source)


def test_names_are_injected_into_the_kernel_module() -> None:
    ns = compile_kernels(HELLO_WORLD)
    assert "iadd" not in ns
    program(ns["hello_world"])
    assert callable(ns["iadd"]) and "r0" in ns and len(ns["ra"]) == 32 and "L" in ns


def test_nested_kernels_and_arguments() -> None:
    ns = compile_kernels('''
def body(asm, n):
    for i in range(n):
        iadd(ra[i], ra[i], 1)

@qpu
def outer(asm, n):
    body(asm, n)
    nop()
''')
    assert program(ns["outer"], 2).words == [
        alu(sig=13, op_add=12, cond_add=ALWAYS, sf=1, waddr_add=i, raddr_a=i, raddr_b=1, add_a=MUX_A,
            add_b=MUX_B) for i in range(2)] + [VC_NOP]


def test_label_positions() -> None:
    ns = compile_kernels("@qpu\ndef k(asm):\n    nop()\n    L.entry\n    nop()\n    jmp(L.entry)\n")
    assert [(lbl.name, pc) for lbl, pc in get_label_positions(ns["k"])] == [("entry", 8)]


# ------------------------------------------------------------------------------------------
# py-videocore's error cases (tests/test_assemble_errors.py), with our locations
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "iadd(ra0, r0, r1).fmul(ra1, r2, r3)",
    "iadd(r0, ra0, ra1)",
    "iadd(r0, rb0, rb1)",
    "iadd(r0, 1, 2)",
    "iadd(r0, rb0, 1)",
    "iadd(r0, r0, vpm_ld_addr)",
    "iadd(r0, uniform, varying_read).fmul(r1, element_number, qpu_number)",
    "iadd(r0, r0, 1, sig='thread switch')",
    "fmul(r0, r0, 2.0, sig='thread switch')",
    "fmul(r0, r0, 2.0, rotate=1)",
    "iadd(r0, r0, r0, sig='thread switch').fmul(r0, r0, r0, sig='breakpoint')",
    "iadd(ra0.pack('16a'), r0, r1).fmul(ra1.pack('16a'), r2, r3)",
    "iadd(ra0.pack('16a'), r0, r1).fmul(rb0, r2, r3, pack='rep 8')",
    "iadd(r0, ra0.unpack('16a'), r4.unpack('16a'))",
    "iadd(ra0.pack('16a'), r4.unpack('16a'), r0)",
    "fmul(r0, ra0.unpack('16a'), r0, pack='8a')",
    "fmul(r0, ra0, r5, rotate=2)",
    "iadd(r0, r0, -2).mov(r1, r1, rotate=-3)",
    "ldi(r0, 'Hello')",
    "ldi(r0, [1] * 17)",
    "ldi(r0, [1, 1, 1, 1, 1, 4])",
    "ldi(r0, [1, -1, 1, 2])",
    "ldi(r0, [1, -3])",
    "jmp('hello')",
    "jmp(reg=rb0)",
    "jmp(link=ra0.pack('16a'))",
    "L._1\nL._1",
    "jmp(L._1)",
    "sema_up(17)",
    "rb0.pack('16a')",
    "rb0.unpack('16a')",
])
def test_py_videocore_error_cases(body: str) -> None:
    with pytest.raises(AssembleError) as info:
        build(body)
    assert isinstance(info.value, AssemblyError)
    assert info.value.location is not None and info.value.location.file == "vc_kernels.py"
    assert info.value.location.line >= 4  # a line of the kernel body (line 4 on), not of the library


def test_accepted_pack_unpack_combinations() -> None:
    # py-videocore's pack_unpack_not_conflict_1/2 assemble
    build("iadd(ra0.pack('16a'), ra1.unpack('16b'), r0)")
    build("fmul(r0, r4.unpack('16a'), r0, pack='rep 8')")
    assert Assembler().program().words == []


# ------------------------------------------------------------------------------------------
# print_qbin (py-videocore's SGEMM examples import it)
# ------------------------------------------------------------------------------------------

def test_print_qbin() -> None:
    import io

    from qpu.compat.videocore import print_qbin

    ns = compile_kernels("@qpu\ndef k(asm, n):\n    nop()\n    mov(r1, uniform)\n    for _ in range(n):\n"
                         "        nop(sig='load tmu0')\n")
    out = io.StringIO()
    print_qbin(ns["k"], out, 1)   # a kernel with its argument, like py-videocore's
    # nop = 0x10020827_009E7000 (sig 1, cond_add always, waddr_add r0 = 32, waddr_mul/raddr_a/raddr_b 39),
    # each byte from the most significant down as 8 binary digits
    lines = out.getvalue().splitlines()
    assert lines[0] == "00010000 00000010 00001000 00100111 00000000 10011110 01110000 00000000"
    expected = [mov(W_R1, raddr_a=UNIF), alu(sig=10, cond_add=ALWAYS, waddr_add=W_R0)]
    assert lines[1:] == [" ".join(f"{w:064b}"[i:i + 8] for i in range(0, 64, 8)) for w in expected]
    # machine code as bytes (little-endian words) prints the same
    raw = io.StringIO()
    print_qbin((0x10020827_009E7000).to_bytes(8, "little"), raw)
    assert raw.getvalue().splitlines() == lines[:1]
    # the import line of py-videocore's examples works against the compat layer
    assert "print_qbin" in compile_kernels("")


def test_driver_runs_a_py_videocore_kernel_as_py_videocore_users_write_it() -> None:
    # py-videocore's usage: drv.program(kernel) with the @qpu function, uniforms as addresses
    import numpy as np

    from qpu.runtime import Driver

    ns = compile_kernels(HELLO_WORLD)
    a = np.arange(16, dtype=np.float32)
    b = np.full(16, 0.5, dtype=np.float32)
    with Driver(backend="emulator") as drv:
        inp = drv.copy(np.r_[a, b])
        out = drv.alloc(16, np.float32)
        out[:] = 0.0
        prog = drv.program(ns["hello_world"])
        assert prog.program.words == program(ns["hello_world"]).words
        drv.execute(n_threads=1, program=prog, uniforms=[inp.address, out.address])
        np.testing.assert_array_equal(np.asarray(out), a + b)
