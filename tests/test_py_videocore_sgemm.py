"""benchmarks/py_videocore_sgemm.py: py-videocore's SGEMM example on the emulator.

The pieces that need no third-party file are tested always, against hand-computed
values: the source reader (a checkout and a bare git repository made here), loading a
py-videocore-style example written here through the stand-in modules (its words checked
against the guide's Table 1 field layout, p.26-27), the thread grid and uniforms (example's layout),
the GFLOPS formula and the error check.  The end-to-end run needs py-videocore itself,
never part of this repository: set QPU_PY_VIDEOCORE to a checkout or bare git mirror
(e.g. /work/.mirror/Idein+py-videocore/repo); it is skipped otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from bench_modules import load_benchmark

pvs = load_benchmark("py_videocore_sgemm")

SOURCE = pvs.PyVideocoreSource.open(os.environ.get("QPU_PY_VIDEOCORE"))

# Guide Figure 3 / Table 1 (p.26-27) fields of an ALU word
NOP_ADDR, ALWAYS, NEVER = 39, 1, 0


def alu(*, sig: int = 1, cond_add: int = NEVER, waddr_add: int = NOP_ADDR, op_add: int = 0, raddr_a: int = 39,
        add_a: int = 0, add_b: int = 0) -> int:
    return (sig << 60 | cond_add << 49 | waddr_add << 38 | NOP_ADDR << 32 | op_add << 24 | raddr_a << 18
            | 39 << 12 | add_a << 9 | add_b << 6)


# A py-videocore-style example written for this test: same imports as examples/sgemm.py,
# and a main() that must not run.
EXAMPLE_TEXT = '''
import rpi_vcsm
from videocore.assembler import qpu, assemble, print_qbin
from videocore.driver import Driver

@qpu
def sgemm_gpu_code(asm):
    mov(r1, uniform)
    nop()
    exit(interrupt=False)

def main(cache_mode=rpi_vcsm.CACHE_NONE):
    raise AssertionError("main must not run")

if __name__ == '__main__':
    main()
'''


def test_source_reader_checkout_and_bare_git(tmp_path: Any) -> None:
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    (work / "examples" / "sgemm.py").write_text(EXAMPLE_TEXT)
    src = pvs.PyVideocoreSource(str(work))
    assert not src.bare and src.read("examples/sgemm.py") == EXAMPLE_TEXT
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "examples/sgemm.py"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "x"], check=True)
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    src = pvs.PyVideocoreSource.open(str(bare))
    assert src is not None and src.bare and src.read("examples/sgemm.py") == EXAMPLE_TEXT
    # missing or empty paths, and directories without the example
    assert pvs.PyVideocoreSource.open(None) is None
    assert pvs.PyVideocoreSource.open(str(tmp_path / "nothing")) is None
    assert pvs.PyVideocoreSource.open(str(tmp_path)) is None


def test_skips_without_a_source(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.delenv(pvs.ENV, raising=False)
    res = pvs.run(True)
    assert res["summary"].startswith("skipped") and "skipped" in res
    assert pvs.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0]


def test_load_kernel_through_the_compat_layer() -> None:
    from qpu.compat.videocore import program

    before = {name: sys.modules.get(name) for name in ("videocore", "videocore.assembler", "rpi_vcsm")}
    kernel = pvs.load_kernel(EXAMPLE_TEXT, "example.py")
    # stand-ins are gone again
    assert {name: sys.modules.get(name) for name in before} == before
    words = program(kernel).words
    # mov r1, unif (bor, op 21, both muxes regfile A = 6, waddr r1 = 33, raddr_a uniform = 32);
    # py-videocore's nop r0 (waddr 32, condition always); the thread end and two nops of exit()
    assert words[0] == alu(cond_add=ALWAYS, waddr_add=33, op_add=21, raddr_a=32, add_a=6, add_b=6)
    assert words[1] == alu(cond_add=ALWAYS, waddr_add=32)
    assert len(words) == 5 and words[2] >> 60 == 3   # program end signal (Table 2 code 3)


def test_thread_grid_and_uniforms() -> None:
    from qpu.runtime import Driver

    blocks = pvs.thread_blocks(96, 3072)
    # 2 x 6 blocks: 3 strips of 16 rows, 8 strips of 64 columns each
    assert blocks == [(r0, 3, c0, 8) for r0 in (0, 48) for c0 in range(0, 3072, 512)]
    covered = np.zeros((96, 3072), dtype=int)
    for row, strips, col, col_strips in blocks:
        covered[row:row + 16 * strips, col:col + 64 * col_strips] += 1
    assert (covered == 1).all()
    # uneven split: the last block takes what is left
    assert [b[1] for b in pvs.thread_blocks(80, 768)][::6] == [3, 2]
    with Driver(backend="emulator") as drv:
        a = drv.alloc((96, 363), np.float32)
        b = drv.alloc((363, 3072), np.float32)
        c = drv.alloc((96, 3072), np.float32)
        unif = drv.alloc((12, 14), np.uint32)
        pvs.fill_uniforms(unif, a, b, c, 1.0, 0.5)
        t = 7   # second row block, second column block
        assert list(unif[t]) == [unif.address + 14 * 4 * t, 3, 363, 8,
                                 a.address + 48 * 363 * 4, b.address + 512 * 4, c.address + (48 * 3072 + 512) * 4,
                                 363 * 4, 3072 * 4, 3072 * 4, 0x3F800000, 0x3F000000, 7, 12]


def test_gflops_and_pitch() -> None:
    # (2*96*363*3072 + 3*96*3072) = 214990848 operations
    assert pvs.gflops(1.0) == pytest.approx(0.214990848)
    assert pvs.mpitchb_max() == 8191            # guide Table 37: bits 12:0
    assert not pvs.c_pitch_fits(3072) and pvs.c_pitch_fits(1536) and pvs.c_pitch_fits(2047)


def test_check_result() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((16, 363)).astype(np.float32)
    b = rng.standard_normal((363, 64)).astype(np.float32)
    c0 = rng.standard_normal((16, 64)).astype(np.float32)
    good = (a @ b + c0).astype(np.float32)     # float32 arithmetic
    assert pvs.check_result(a, b, c0, good, 1.0, 1.0)["correct"]
    bad = good.copy()
    bad[3, 5] += 0.1                           # ~10x the bound: sum|terms| is ~230 here
    assert not pvs.check_result(a, b, c0, bad, 1.0, 1.0)["correct"]
    assert not pvs.check_result(a, b, c0, (a @ b).astype(np.float32), 1.0, 1.0)["correct"]   # beta term lost


@pytest.mark.skipif(SOURCE is None, reason="set QPU_PY_VIDEOCORE to a py-videocore checkout or mirror")
def test_example_on_the_emulator() -> None:
    res = pvs.run_example(SOURCE)
    assert res["instructions"] > 0 and res["cycles"] > 0
    by_case = {(c["shape"], c["beta"]): c for c in res["checks"]}
    # the runs whose C does not depend on the 13-bit load pitch are right
    assert by_case[("96x363 @ 363x3072", 0.0)]["correct"]
    assert by_case[("96x363 @ 363x1536", 1.0)]["correct"]
