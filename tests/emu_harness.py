"""Small harness for the emulator tests: GPU memory, programs, uniforms, control list, run.

Kept independent of qpu.runtime so the core can be tested on its own.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from qpu.emulator.memory import MEM_FLAG_DIRECT, GPUMemory
from qpu.emulator.report import JobReport
from qpu.emulator.v3d import V3D
from qpu.program import Program
from qpu.text_assembler import assemble_text

Code = Union[str, Program, Sequence[int]]


class Harness:
    def __init__(self, mem_size: int = 4 << 20, strict: bool = True, **kwargs) -> None:
        self.mem = GPUMemory(mem_size)
        self.v3d = V3D(self.mem, strict=strict, **kwargs)

    def alloc(self, shape, dtype=np.uint32, fill=None) -> Tuple[int, np.ndarray]:
        """Allocate and lock a buffer; returns (bus address, numpy view)."""
        dt = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        nbytes = max(4, int(np.prod(shape)) * dt.itemsize)
        handle = self.mem.alloc(nbytes, 4096, MEM_FLAG_DIRECT)
        assert handle, "out of emulated GPU memory"
        bus = self.mem.lock(handle)
        arr = self.mem.array(bus, shape, dt)
        if fill is not None:
            arr[...] = fill
        return bus, arr

    def load(self, code: Code, name: str = "kernel") -> Tuple[int, Program]:
        if isinstance(code, str):
            program = assemble_text(code, name)
        elif isinstance(code, Program):
            program = code
        else:
            program = Program(list(code), name=name)
        nbytes = 8 * len(program.words)
        bus, arr = self.alloc(nbytes, np.uint8)
        arr[:] = np.frombuffer(program.to_bytes(), dtype=np.uint8)
        self.v3d.register_program(bus, program)
        return bus, program

    def run(self, code: Union[Code, List[Tuple[int, Sequence[int]]]], uniforms: Sequence[int] = (),
            num: int = 1, per_qpu_uniforms: Optional[List[Sequence[int]]] = None, threads: int = 1,
            timeout_ms: int = 1000) -> JobReport:
        """Run ``num`` copies of one program (uniforms shared, or one list per program)."""
        code_bus, _ = self.load(code)
        lists = per_qpu_uniforms if per_qpu_uniforms is not None else [list(uniforms)] * num
        entries = []
        for unifs in lists:
            ubus, uarr = self.alloc(max(1, len(unifs)), np.uint32)
            uarr[:len(unifs)] = np.array([u & 0xFFFFFFFF for u in unifs], dtype=np.uint32)
            entries.append((ubus, code_bus))
        cbus, carr = self.alloc((len(entries), 2), np.uint32)
        carr[:] = np.array(entries, dtype=np.uint32)
        return self.v3d.execute(len(entries), cbus, timeout_ms, threads_per_qpu=threads)


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def bits(values) -> np.ndarray:
    """uint32 bit patterns of float32 values."""
    return np.asarray(values, dtype=np.float32).view(np.uint32)


# Program end with its two delay slots, appended to test kernels.
END = """
    nop ; nop ; thrend
    nop
    nop
"""
