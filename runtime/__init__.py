"""qpu.runtime: the Driver that runs QPU programs on a Raspberry Pi (mailbox) or on the emulator."""
