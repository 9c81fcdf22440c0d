"""Several QPUs and threads: semaphores, the mutex, a shared VPM, deadlock, timeout, 2 threads."""

from __future__ import annotations

import numpy as np
import pytest
from emu_harness import END, Harness

from qpu.emulator.errors import DeadlockError, JobTimeoutError
from qpu.isa.vpm import SetupFormat, encode_setup


def vw_row(y: int) -> int:
    return encode_setup(SetupFormat.VPM_WRITE, stride=1, horiz=1, laned=0, size=2, addr=y)


def vdw_rows(n: int) -> int:
    return encode_setup(SetupFormat.VDW_BASIC, units=n, depth=16, laned=0, horiz=1, vpmbase=0, modew=0)


def test_twelve_qpus_semaphore_and_shared_vpm():
    # Every program writes VPM row <index>; the master (index 0) waits for all twelve with a
    # counting semaphore and stores the twelve rows with one DMA.
    h = Harness()
    out_bus, out = h.alloc((12, 16), fill=0)
    src = f"""
        mov ra0, unif                     # index
        mov ra31, unif                    # output address
        ldi r1, {vw_row(0):#x}
        add vw_setup, ra0, r1             # VPM write setup for row <index>
        ldi r2, 100
        nop ; mul24 r3, ra0, r2
        add vpm, elem_num, r3
        srel -, 0
        mov.setf -, ra0
        brr.anynz -, done
        nop
        nop
        nop
    """ + "\n".join(["sacq -, 0"] * 12) + f"""
        ldi vw_setup, {vdw_rows(12):#x}
        mov vw_addr, ra31
        mov -, vw_wait
    done:
    """
    report = h.run(src + END, per_qpu_uniforms=[[i, out_bus] for i in range(12)])
    lane = np.arange(16)
    np.testing.assert_array_equal(out, np.array([lane + 100 * i for i in range(12)]))
    assert len(report.per_qpu) == 12
    assert report.semaphores[0] == 0


def test_mutex_serialises_read_modify_write():
    # twelve QPUs increment one counter in memory (TMU read, VPM + DMA write) under the mutex
    h = Harness()
    cnt_bus, cnt = h.alloc(16, fill=0)
    src = f"""
        mov ra0, unif
        mov ra1, unif                     # VPM row of this QPU
        ldi r1, {vw_row(0):#x}
        add ra2, ra1, r1
        ldi r2, {vdw_rows(1):#x}
        shl r3, ra1, 7                    # vpmbase = row << 4, field at bit 3
        add ra3, r2, r3
        mov -, mutex                      # acquire (stalls while another QPU holds it)
        mov tmu0_s, ra0
        nop ; ldtmu0
        add r0, r4, 1
        mov vw_setup, ra2
        mov vpm, r0
        mov vw_setup, ra3
        mov vw_addr, ra0
        mov -, vw_wait
        mov mutex, 0                      # release
    """
    report = h.run(src + END, per_qpu_uniforms=[[cnt_bus, i] for i in range(12)])
    assert (cnt == 12).all()
    assert report.stalls["mutex"] > 0


def test_deadlock_reports_who_waits_on_what():
    h = Harness()
    src = """
        sacq -, 5
    """
    with pytest.raises(DeadlockError) as info:
        h.run(src + END, num=2)
    msg = str(info.value)
    assert "deadlock" in msg and "semaphore 5" in msg and "QPU 0" in msg and "QPU 1" in msg


def test_mutex_deadlock_names_the_holder():
    # QPU 0 takes the mutex and ends without releasing it; QPU 1 waits for it forever
    h = Harness()
    src = """
        mov.setf -, qpu_num
        brr.anynz -, other
        nop
        nop
        nop
        mov -, mutex
        brr -, done
        nop
        nop
        nop
    other:
        ldi r0, 100
    spin:
        sub.setf r0, r0, 1
        brr.anynz -, spin
        nop
        nop
        nop
        mov -, mutex
    done:
    """
    with pytest.raises(DeadlockError) as info:
        h.run(src + END, num=2)
    msg = str(info.value)
    assert "mutex" in msg and "held by QPU 0" in msg and "QPU 1" in msg


def test_semaphore_release_blocks_at_15_and_resumes():
    # QPU 0 releases 20 times (stalls at 15); QPU 1 acquires 20 times
    h = Harness()
    src = """
        mov.setf -, unif
        brr.anynz -, consumer
        nop
        nop
        nop
    """ + "\n".join(["srel -, 2"] * 20) + """
        brr -, done
        nop
        nop
        nop
    consumer:
    """ + "\n".join(["sacq -, 2"] * 20) + """
    done:
    """
    report = h.run(src + END, per_qpu_uniforms=[[0], [1]])
    assert report.semaphores[2] == 0


def test_timeout_reports_each_qpu_pc():
    h = Harness()
    src = """
    loop:
        brr -, loop
        nop
        nop
        nop
    """
    with pytest.raises(JobTimeoutError) as info:
        h.run(src + END, num=2, timeout_ms=0)
    msg = str(info.value)
    assert "timeout" in msg and "QPU 0: running at" in msg and "QPU 1: running at" in msg


def test_lenient_deadlock_returns_incomplete_report():
    h = Harness(strict=False)
    with pytest.warns(Warning, match="deadlock"):
        report = h.run("sacq -, 7" + END)
    assert not report.completed
    h.v3d.reset()


def test_two_threads_split_register_file_and_thread_switch():
    # Two programs on QPU 0 (threads 0 and 1).  Thread 1 sees the regfile with address bit 4
    # inverted (guide p.20), so both can use ra1-ra4: thread 1 runs between thread 0's switch
    # and its ldtmu, and would otherwise overwrite thread 0's index and addresses.
    h = Harness()
    data_bus, data = h.alloc(32, fill=np.arange(32) * 10)
    out_bus, out = h.alloc((2, 16), fill=0)
    src = f"""
        mov ra1, unif                     # thread index (0 or 1)
        mov ra2, unif                     # data address
        mov ra3, unif                     # output address
        shl r1, elem_num, 2
        shl r2, ra1, 6
        add r1, r1, r2
        add tmu0_s, ra2, r1
        nop ; thrsw
        nop
        nop
        nop ; ldtmu0
        mov ra4, r4
        ldi r1, {vw_row(0):#x}
        add vw_setup, ra1, r1
        mov vpm, ra4
        ldi r2, {vdw_rows(1):#x}
        shl r3, ra1, 7
        add vw_setup, r2, r3
        shl r1, ra1, 6
        add r1, ra3, r1
        mov vw_addr, r1
        mov -, vw_wait
    """
    report = h.run(src + END, per_qpu_uniforms=[[0, data_bus, out_bus], [1, data_bus, out_bus]], threads=2)
    np.testing.assert_array_equal(out[0], np.arange(16) * 10)
    np.testing.assert_array_equal(out[1], np.arange(16, 32) * 10)
    assert len(report.per_qpu) == 1 and report.per_qpu[0]["programs"] == [0, 1]


def test_semaphores_and_vpm_persist_between_jobs_and_reset_after_an_abort():
    h = Harness()
    h.run("srel -, 3\nsrel -, 3" + END)
    assert h.v3d.semaphores[3] == 2
    report = h.run("sacq -, 3" + END)              # the count left by the previous job
    assert report.semaphores[3] == 1
    with pytest.raises(DeadlockError):
        h.run("sacq -, 3\nsacq -, 3" + END)
    assert h.v3d.semaphores[3] == 0                # an aborted job leaves no semaphore state


def test_execute_rejects_bad_jobs():
    from qpu.emulator.errors import EmulatorError
    h = Harness()
    with pytest.raises(EmulatorError, match="num_qpus"):
        h.v3d.execute(13, 0)
    with pytest.raises(EmulatorError, match="control list"):
        h.v3d.execute(1, 0x12345678)
    with pytest.raises(EmulatorError, match="threads_per_qpu"):
        h.v3d.execute(1, 0, threads_per_qpu=3)
