"""The ``qpu`` command line: files in, files out, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from qpu.cli import main, parse_hex

KERNEL = textwrap.dedent("""
    from qpu.dsl import Kernel, r0, r4, ra0, ra1, uniform, vpm, element_number, tmu0_s

    def square(k: Kernel) -> None:
        k.mov(ra0, uniform)
        k.mov(ra1, uniform)
        k.shl(r0, element_number, 2)
        k.iadd(tmu0_s, ra0, r0)
        k.ldtmu0()
        k.setup_vpm_write(y=0)
        k.fmul(vpm, r4, r4)
        k.setup_dma_store(nrows=1, ncols=16, y=0)
        k.start_dma_store(ra1)
        k.wait_dma_store()
        k.exit()

    def _helper():
        pass
    """)

BAD_KERNEL = textwrap.dedent("""
    from qpu.dsl import Kernel, r0, ra1, ra2

    def bad(k: Kernel) -> None:
        k.iadd(r0, ra1, ra2)
    """)

HAZARD_TEXT = "mov ra2, r0\nadd r1, ra2, 1\nnop ; thrend\nnop\nnop\n"


@pytest.fixture
def kernel_file(tmp_path: Path) -> Path:
    path = tmp_path / "square.py"
    path.write_text(KERNEL)
    return path


def test_asm_dis_asm_text_round_trip(kernel_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "square.bin"
    assert main(["asm", str(kernel_file), "-o", str(out)]) == 0   # the only public function is found
    code = out.read_bytes()
    assert len(code) == 14 * 8
    capsys.readouterr()
    assert main(["dis", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "mov ra0, unif"
    qasm = tmp_path / "square.qasm"
    qasm.write_text(text)
    back = tmp_path / "back.bin"
    assert main(["asm", "--text", str(qasm), "-o", str(back)]) == 0
    assert back.read_bytes() == code


def test_hex_output_is_gpu_fft_style_and_reads_back(kernel_file: Path, tmp_path: Path, capsys) -> None:
    hexfile = tmp_path / "square.hex"
    assert main(["asm", f"{kernel_file}:square", "--hex", "-o", str(hexfile)]) == 0
    lines = hexfile.read_text().splitlines()
    # "0xLOW, 0xHIGH, // text": nop is 0x009e7000, 0x100009e7 (GPU_FFT shader_256.hex)
    assert lines[-1] == "0x009e7000, 0x100009e7, // nop"
    words = parse_hex(hexfile.read_text())
    binfile = tmp_path / "square.bin"
    assert main(["asm", f"{kernel_file}:square", "-o", str(binfile)]) == 0
    assert b"".join(w.to_bytes(8, "little") for w in words) == binfile.read_bytes()
    capsys.readouterr()
    assert main(["dis", "--hex", str(hexfile)]) == 0
    assert capsys.readouterr().out.splitlines()[-3] == "nop ; thrend"


def test_parse_hex_accepts_whole_words() -> None:
    assert parse_hex("0x100009e7009e7000  # nop\n100009e7009e7000\n") == [0x100009E7009E7000] * 2


def test_check_exit_codes(kernel_file: Path, tmp_path: Path, capsys) -> None:
    assert main(["check", f"{kernel_file}:square"]) == 0
    bad = tmp_path / "hazard.qasm"
    bad.write_text(HAZARD_TEXT)
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "regfile-read-after-write" in out and "hazard.qasm:2" in out


def test_errors_are_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(BAD_KERNEL)
    assert main(["asm", str(bad), "-o", str(tmp_path / "x.bin")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("qpu: error:") and "bad.py:5" in err and "regfile-A" in err
    assert main(["dis", str(tmp_path / "missing.bin")]) == 1
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "odd.bin").write_bytes(b"\0" * 12)
    assert main(["dis", str(tmp_path / "odd.bin")]) == 1
    assert "not a whole number" in capsys.readouterr().err


def test_kernel_choice_must_be_named_when_ambiguous(tmp_path: Path, capsys) -> None:
    two = tmp_path / "two.py"
    two.write_text(KERNEL + "\ndef other(k):\n    k.nop()\n")
    assert main(["asm", str(two), "-o", str(tmp_path / "o.bin")]) == 1
    assert "square" in capsys.readouterr().err


def test_run_on_emulator(kernel_file: Path, tmp_path: Path, capsys) -> None:
    saved = tmp_path / "y.npy"
    assert main(["run", f"{kernel_file}:square", "--array", "x=arange:16:float32", "--array",
                 "y=zeros:16:float32", "--uniforms", "@x,@y", "--save", f"y={saved}"]) == 0
    out = capsys.readouterr().out
    assert "backend: emulator" in out
    np.testing.assert_array_equal(np.load(saved), np.arange(16, dtype=np.float32) ** 2)


def test_console_script_entry_point(tmp_path: Path) -> None:
    # python -m qpu.cli behaves like the installed `qpu` script
    res = subprocess.run([sys.executable, "-m", "qpu.cli", "dis", str(tmp_path / "none.bin")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("qpu: error:")


def test_info_through_the_cli(capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend:" in out and "emulator" in out


def test_selftest_through_the_cli(capsys) -> None:
    assert main(["selftest", "--backend", "emulator"]) == 0
    out = capsys.readouterr().out
    assert "qpu selftest: PASSED" in out and "integer add of 16 lanes: ok" in out


def test_run_with_profile_and_trace(kernel_file: Path, tmp_path: Path, capsys) -> None:
    import json

    trace = tmp_path / "job.json"
    assert main(["run", f"{kernel_file}:square", "--array", "x=arange:16:float32", "--array",
                 "y=zeros:16:float32", "--uniforms", "@x,@y", "--profile", "3", "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "hot spots" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("0x")]
    assert len(rows) == 3
    # each row names the instruction and the kernel line it came from
    assert all(f"{kernel_file.name}:" in line for line in rows)
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e.get("ph") == "X" for e in events)


def test_trace_needs_the_emulator() -> None:
    from qpu.runtime import Driver, DriverConfigError

    class NoV3D:
        name = "mailbox"

    with Driver(backend="emulator") as drv:
        real = drv.backend
        drv.backend = NoV3D()          # what a mailbox Driver looks like to execute_control_list
        try:
            with pytest.raises(DriverConfigError, match="trace= needs the emulator backend"):
                drv.execute_control_list([(0, 0)], trace=True)
        finally:
            drv.backend = real
