"""qpu.kernels: hand-written QPU kernels in the qpu DSL."""
