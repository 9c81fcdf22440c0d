"""Example kernel: out[i] = a[i] + b[i] for n vectors of 16 floats, on one QPU.

It shows the usual shape of a general-purpose QPU program written with the DSL:

1. read the arguments from the uniform stream (one ``uniform`` read per value);
2. move data memory -> VPM with a DMA load, VPM -> registers with a VPM read;
3. compute (here one ``fadd`` per vector);
4. registers -> VPM with a VPM write, VPM -> memory with a DMA store;
5. interrupt the host and end the program.

Uniforms, in order: address of a, address of b, address of out (bus addresses,
64-byte rows of 16 float32), number of vectors n (>= 1).

Run ``python examples/vector_add_kernel.py`` to print the assembled program.
"""

from __future__ import annotations

from qpu.disassembler import disassemble
from qpu.dsl import Kernel, assemble, r0, r1, ra0, ra1, ra2, ra3, rb0, uniform, vpm

ROW_BYTES = 16 * 4  # one vector of 16 float32 in memory


def vector_add(k: Kernel) -> None:
    # 1. Arguments.  Each read of `uniform` pops the next value of the uniform stream.
    k.mov(ra0, uniform)  # address of the next a vector
    k.mov(ra1, uniform)  # address of the next b vector
    k.mov(ra2, uniform)  # address of the next out vector
    k.mov(ra3, uniform)  # n: the loop counter
    k.ldi(rb0, ROW_BYTES)  # address increment (64 does not fit a small immediate: ldi)

    # The body runs n times: k.loop emits the label at the top, and at the bottom
    # "sub.setf ra3, ra3, 1 ; brr.anynz top" plus three nop delay slots.
    with k.loop(ra3):
        # 2. DMA load a -> VPM row 0 and b -> VPM row 1 (one row of 16 words each).
        #    A new DMA load may only start once the previous one has finished.
        k.setup_dma_load(nrows=1, ncols=16, y=0)
        k.start_dma_load(ra0)
        k.wait_dma_load()
        k.setup_dma_load(nrows=1, ncols=16, y=1)
        k.start_dma_load(ra1)
        k.wait_dma_load()

        #    VPM read of rows 0 and 1 (32-bit, horizontal); VPM writes will go to row 2.
        #    The guide (p.56) asks for three instructions between a read setup and the
        #    first read: the write setup and the two pointer increments fill them.
        k.setup_vpm_read(nrows=2, y=0)
        k.setup_vpm_write(y=2)
        k.iadd(ra0, ra0, rb0)  # a += 64 (regfile A and regfile B read in one instruction)
        k.iadd(ra1, ra1, rb0)  # b += 64
        k.mov(r0, vpm)  # a
        k.mov(r1, vpm)  # b

        # 3. The computation, written straight into the VPM write FIFO.
        k.fadd(vpm, r0, r1)

        # 4. DMA store VPM row 2 -> out, then advance the out pointer.
        k.setup_dma_store(nrows=1, ncols=16, y=2)
        k.start_dma_store(ra2)
        k.wait_dma_store()
        k.iadd(ra2, ra2, rb0)  # out += 64

    # 5. Host interrupt, program end (thrend) and its two delay slots.
    k.exit()


if __name__ == "__main__":
    program = assemble(vector_add)
    for index, (word, text) in enumerate(zip(program.words, disassemble(program))):
        print(f"{index:3d}  {word:016x}  {text}")
