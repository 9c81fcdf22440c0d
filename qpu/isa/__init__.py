"""The VideoCore IV QPU instruction set as data: the one source of truth.

The assembler DSL, the text assembler, the disassembler, the checker and the
emulator all read these tables; none keeps a copy.

* ``formats``    instruction layouts (field name, high bit, low bit) and format detection
* ``ops``        add/mul ALU opcodes with arity and operand kinds
* ``signals``    signals, write conditions, branch conditions, input muxes
* ``registers``  the register address map for read A/B and write A/B, with units
* ``small_imm``  the 64 small-immediate codes as 32-bit patterns and rotations
* ``packing``    pack and unpack modes (regfile A, r4, mul colour pack)
* ``vpm``        VPM / VCD / VDW setup-word layouts
* ``rules``      the programming restrictions, with ids, levels and citations
"""
