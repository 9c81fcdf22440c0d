"""The emulated firmware's mailbox property interface, at the message-buffer level.

Messages are built here by hand with ``struct`` in the layout GPU_FFT's mailbox.c
uses (size, request code 0, tag id, value buffer size, request size, values, end
tag 0), and the answers are checked against the raspberrypi/firmware wiki
("Mailbox property interface"): status 0x80000000 / 0x80000001, response bit 31 plus
length in the tag's third word, unknown tags left alone, truncation to the value
buffer.  The V3D is the stub from tests/fakepi.py.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from fakepi import FAULT_MARK, TIMEOUT_MARK, StubFault, StubV3D

from qpu.emulator.firmware import Firmware, FirmwareError
from qpu.emulator.memory import GPUMemory

SUCCESS, ERROR = 0x80000000, 0x80000001


def message(*tags):
    """A property message from (tag, value_buffer_bytes, [request words]) triples, GPU_FFT style."""
    words = [0, 0]
    for tag, vsize, values in tags:
        padded = list(values) + [0] * (vsize // 4 - len(values))
        words += [tag, vsize, 4 * len(values)] + padded
    words.append(0)
    words[0] = 4 * len(words)
    return bytearray(struct.pack(f"<{len(words)}I", *words))


def words(buf, n=None):
    n = len(buf) // 4 if n is None else n
    return list(struct.unpack_from(f"<{n}I", buf, 0))


@pytest.fixture
def fw():
    memory = GPUMemory(16 << 20, phys_base=0x3F000000 - (16 << 20))
    return Firmware(memory, StubV3D(memory))


def call(fw, tag, request, response_words):
    buf = message((tag, 4 * max(len(request), response_words), request))
    fw.property(buf)
    w = words(buf)
    assert w[1] == SUCCESS
    return w[4], w[5:5 + response_words]


def alloc_lock(fw, size=4096, flags=0x4):
    code, (handle,) = call(fw, 0x3000C, [size, 4096, flags], 1)
    assert code == 0x80000004 and handle != 0
    code, (bus,) = call(fw, 0x3000D, [handle], 1)
    return handle, bus


# --- information tags ----------------------------------------------------------------------------

def test_board_revision_and_firmware_revision():
    memory = GPUMemory(4 << 20)
    fw = Firmware(memory, board_revision=0x9000C1, firmware_revision=0x12345678)
    buf = message((0x10002, 4, []), (0x1, 4, []))
    fw.property(buf)
    w = words(buf)
    assert w[1] == SUCCESS
    assert w[2:6] == [0x10002, 4, 0x80000004, 0x9000C1]
    assert w[6:10] == [0x1, 4, 0x80000004, 0x12345678]
    assert w[10] == 0


def test_vc_memory_is_the_emulated_share(fw):
    code, (base, size) = call(fw, 0x10006, [], 2)
    assert code == 0x80000008
    assert (base, size) == (0x3F000000 - (16 << 20), 16 << 20)


def test_clock_rates_v3d_core_and_missing_clock(fw):
    assert call(fw, 0x30002, [5], 2) == (0x80000008, [5, 250_000_000])     # V3D
    assert call(fw, 0x30002, [4], 2) == (0x80000008, [4, 250_000_000])     # CORE
    assert call(fw, 0x30002, [0x77], 2) == (0x80000008, [0x77, 0])         # "rate 0: does not exist"


def test_clock_rate_follows_configuration():
    memory = GPUMemory(4 << 20)
    fw = Firmware(memory, StubV3D(memory, clock_hz=300_000_000))
    assert call(fw, 0x30002, [5], 2)[1] == [5, 300_000_000]


# --- memory tags ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, alias", [(0x4, 0xC), (0xC, 0x4), (0x8, 0x8), (0x0, 0x0)])
def test_lock_returns_bus_address_in_the_alias_of_the_flags(fw, flags, alias):
    # MEM_FLAG_DIRECT (0x4) -> 0xC alias, COHERENT (0x8) -> 0x8, L1_NONALLOCATING (0xC) -> 0x4 (wiki)
    handle, bus = alloc_lock(fw, 8192, flags)
    assert bus & 0xC0000000 == alias << 28
    phys = bus & ~0xC0000000
    assert phys % 4096 == 0
    assert fw.memory.phys_base <= phys < fw.memory.phys_base + fw.memory.size


def test_allocation_is_initialised_per_flags(fw):
    _, bus = alloc_lock(fw, 4096, 0x4)                    # default: all ones
    off = fw.memory.offset_of_bus(bus)
    assert (fw.memory.data[off:off + 4096] == 0xFF).all()
    _, bus = alloc_lock(fw, 4096, 0x4 | 0x10)             # MEM_FLAG_ZERO
    off = fw.memory.offset_of_bus(bus)
    assert (fw.memory.data[off:off + 4096] == 0).all()


def test_unlock_release_statuses(fw):
    handle, _ = alloc_lock(fw)
    assert call(fw, 0x3000E, [handle], 1) == (0x80000004, [0])       # unlock: success
    assert call(fw, 0x3000F, [handle], 1) == (0x80000004, [0])       # release: success
    assert call(fw, 0x3000F, [handle], 1)[1][0] != 0                 # released twice: failure
    assert call(fw, 0x3000D, [handle], 1)[1] == [0]                  # lock a dead handle: 0
    assert fw.memory.allocations() == ()


def test_allocation_failure_answers_handle_zero(fw):
    assert call(fw, 0x3000C, [32 << 20, 4096, 4], 1) == (0x80000004, [0])
    assert call(fw, 0x3000C, [0, 4096, 4], 1)[1] == [0]


def test_gpu_fft_mem_alloc_message_byte_for_byte(fw):
    # GPU_FFT mailbox.c mem_alloc: p = {size, 0, 0x3000c, 12, 12, size, align, flags, 0}, p[0] = 36
    buf = bytearray(struct.pack("<9I", 36, 0, 0x3000C, 12, 12, 1 << 16, 4096, 0xC, 0))
    fw.property(buf)
    w = words(buf)
    assert w[:5] == [36, SUCCESS, 0x3000C, 12, 0x80000004]
    assert w[5] != 0
    assert w[6:] == [4096, 0xC, 0]     # the rest of the value buffer and the end tag are untouched


# --- generic message rules -----------------------------------------------------------------------

def test_unknown_tag_is_ignored_and_later_tags_answered(fw):
    buf = message((0x00099999, 8, [1, 2]), (0x10002, 4, []))
    before = words(buf)
    fw.property(buf)
    w = words(buf)
    assert w[1] == SUCCESS
    assert w[2:7] == before[2:7]                # unknown tag: response bit clear, values untouched
    assert not w[4] & 0x80000000
    assert w[7:11] == [0x10002, 4, 0x80000004, fw.board_revision]


def test_response_truncated_to_value_buffer_with_full_length(fw):
    # get clock rate answers 8 bytes; with a 4-byte value buffer only 4 are written (wiki)
    buf = message((0x30002, 4, [5]), (0x10002, 4, []))
    fw.property(buf)
    w = words(buf)
    assert w[2:6] == [0x30002, 4, 0x80000008, 5]
    assert w[6:10] == [0x10002, 4, 0x80000004, fw.board_revision]


def test_value_buffer_padding_to_32_bits(fw):
    # a 5-byte value buffer occupies 8 bytes: the next tag starts 8 bytes later
    words_ = [0, 0, 0x00099999, 5, 0, 0, 0, 0x10002, 4, 0, 0, 0]
    words_[0] = 4 * len(words_)
    buf = bytearray(struct.pack(f"<{len(words_)}I", *words_))
    fw.property(buf)
    w = words(buf)
    assert w[1] == SUCCESS and w[10] == fw.board_revision


def test_request_shorter_than_the_tag_needs_is_left_unanswered(fw):
    buf = message((0x3000C, 4, [4096]))       # allocate needs 12 bytes of request
    fw.property(buf)
    assert words(buf)[4] == 4
    assert fw.memory.allocations() == ()


@pytest.mark.parametrize("mutate", ["size_too_big", "size_unaligned", "request_code", "no_end_tag", "tag_overrun"])
def test_malformed_buffers_answer_parse_error(fw, mutate):
    buf = message((0x10002, 4, []), (0x3000C, 12, [4096, 4096, 4]))
    if mutate == "size_too_big":
        struct.pack_into("<I", buf, 0, len(buf) + 4)
    elif mutate == "size_unaligned":
        struct.pack_into("<I", buf, 0, len(buf) - 2)
    elif mutate == "request_code":
        struct.pack_into("<I", buf, 4, 1)
    elif mutate == "no_end_tag":
        struct.pack_into("<I", buf, len(buf) - 4, 0x10002)
    elif mutate == "tag_overrun":
        struct.pack_into("<I", buf, 28, 4096)     # second tag claims a 4096-byte value buffer
    fw.property(buf)
    assert words(buf)[1] == ERROR
    if mutate == "tag_overrun":
        assert words(buf)[4] == 0x80000004        # the first tag was answered: a partial response
        assert fw.memory.allocations() == ()


def test_numpy_uint32_buffer_is_processed_in_place(fw):
    arr = np.frombuffer(bytes(message((0x10002, 4, []))), dtype=np.uint32).copy()
    fw.property(arr)
    assert arr[1] == SUCCESS and arr[5] == fw.board_revision


def test_readonly_buffer_is_refused(fw):
    with pytest.raises(FirmwareError):
        fw.property(bytes(message((0x10002, 4, []))))


# --- QPU tags ------------------------------------------------------------------------------------

def setup_job(fw, num_qpus, count=4, code_words=2):
    """Control list + uniforms + code + data in emulated memory; returns (control bus, src, dst)."""
    assert call(fw, 0x30012, [1], 1)[1] == [0]
    _, ctl = alloc_lock(fw, 4096)
    _, data = alloc_lock(fw, 4096)
    mem = fw.memory
    ctl_off, data_off = mem.offset_of_bus(ctl), mem.offset_of_bus(data)
    w = mem.data[ctl_off:ctl_off + 4096].view("<u4")
    d = mem.data[data_off:data_off + 4096].view("<u4")
    code = ctl + 1024
    for q in range(num_qpus):
        unif = ctl + 512 + 16 * q
        w[2 * q], w[2 * q + 1] = unif, code
        w[(512 + 16 * q) // 4: (512 + 16 * q) // 4 + 3] = [data, data + 2048 + 64 * q, count]
    d[:16] = np.arange(16)
    return ctl, data, d


def test_execute_runs_the_control_list(fw):
    ctl, data, d = setup_job(fw, 3)
    assert call(fw, 0x30011, [3, ctl, 1, 500], 1) == (0x80000004, [0])
    (job,) = fw.v3d.calls
    assert job["num_qpus"] == 3 and job["control"] == ctl and job["timeout_ms"] == 500
    assert fw.last_control_list == job["pairs"]
    assert [p[1] for p in job["pairs"]] == [ctl + 1024] * 3
    for q in range(3):
        np.testing.assert_array_equal(d[(2048 + 64 * q) // 4:(2048 + 64 * q) // 4 + 4], np.arange(4) + q)
    assert fw.last_report.instructions == 30


def test_execute_timeout_answers_0x80000000(fw):
    ctl, _, _ = setup_job(fw, 1, count=TIMEOUT_MARK)
    assert call(fw, 0x30011, [1, ctl, 0, 100], 1) == (0x80000004, [0x80000000])
    assert "QPU 0 at PC" in str(fw.last_error)


def test_execute_emulator_errors_propagate(fw):
    ctl, _, _ = setup_job(fw, 1, count=FAULT_MARK)
    with pytest.raises(StubFault, match="outside GPU memory"):
        fw.property(message((0x30011, 16, [1, ctl, 0, 100])))


def test_execute_before_enable_is_refused(fw):
    ctl, _, _ = setup_job(fw, 1)
    call(fw, 0x30012, [0], 1)
    with pytest.raises(FirmwareError, match="enable QPU"):
        fw.property(message((0x30011, 16, [1, ctl, 0, 100])))


@pytest.mark.parametrize("n", [0, 13])
def test_execute_qpu_count_out_of_range(fw, n):
    ctl, _, _ = setup_job(fw, 1)
    with pytest.raises(FirmwareError, match="1..12"):
        fw.property(message((0x30011, 16, [n, ctl, 0, 100])))


def test_execute_control_list_outside_locked_memory(fw):
    handle, ctl = alloc_lock(fw)
    call(fw, 0x30012, [1], 1)
    call(fw, 0x3000E, [handle], 1)                  # unlocked: not GPU-usable any more
    with pytest.raises(FirmwareError, match="not in allocated, locked GPU memory"):
        fw.property(message((0x30011, 16, [1, ctl, 0, 100])))
    with pytest.raises(FirmwareError):
        fw.property(message((0x30011, 16, [1, 0x12345678, 0, 100])))


@pytest.mark.parametrize("option", ["kms_owns_v3d", "cut_down"])
def test_refusals_when_the_firmware_does_not_own_the_v3d(option):
    memory = GPUMemory(4 << 20)
    fw = Firmware(memory, StubV3D(memory), **{option: True})
    code, (value,) = call(fw, 0x30012, [1], 1)
    assert code == 0x80000004 and value != 0
    assert call(fw, 0x30012, [0], 1)[1] == [0]          # disabling is always fine
    assert call(fw, 0x30011, [1, 0, 0, 100], 1)[1] == [0x80000000]
    assert fw.v3d.calls == []
