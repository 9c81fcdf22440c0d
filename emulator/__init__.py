"""qpu.emulator: a strict, cycle-approximate emulator of the VideoCore IV V3D QPUs and its firmware mailbox."""
