"""Board detection: model files, revision codes, peripheral base (qpu.runtime.pi).

References: revision codes and their fields from the Raspberry Pi documentation
("Raspberry Pi revision codes": a02082 = 3B Sony 1GB rev 1.2, 9000c1 = Zero W,
a01041 = 2B, a22042 = 2B with BCM2837, c03111 = 4B, d04170 = 5, old-style 0010 = B+);
model strings as /proc/device-tree/model prints them; device-tree soc/ranges words.
"""

from __future__ import annotations

import struct

import pytest

from qpu.runtime.errors import DriverConfigError
from qpu.runtime.pi import (
    board_type_of_revision,
    detect_pi,
    peripheral_base,
    pi_from_name,
    pi_from_revision,
    soc_of_revision,
)


@pytest.mark.parametrize("code, soc, board", [
    (0xA02082, "BCM2837", "3B"), (0xA22082, "BCM2837", "3B"), (0x9000C1, "BCM2835", "Zero W"),
    (0x900092, "BCM2835", "Zero"), (0xA01041, "BCM2836", "2B"), (0xA22042, "BCM2837", "2B"),
    (0xA020D3, "BCM2837", "3B+"), (0x902120, "BCM2837", "Zero 2 W"), (0xC03111, "BCM2711", "4B"),
    (0xD04170, "BCM2712", "5"), (0x0010, "BCM2835", None), (0x1000002, "BCM2835", None),
])
def test_revision_codes(code, soc, board):
    assert soc_of_revision(code) == soc
    if board is not None:
        assert board_type_of_revision(code) == board


def write(tmp_path, model=None, revision=None):
    if model is not None:
        (tmp_path / "model").write_bytes(model.encode() + b"\x00")
    text = "processor\t: 0\n"
    if revision is not None:
        text += f"Revision\t: {revision}\nSerial\t\t: 00000000deadbeef\n"
    (tmp_path / "cpuinfo").write_text(text)
    return str(tmp_path / "model"), str(tmp_path / "cpuinfo")


@pytest.mark.parametrize("model, revision, soc, supported", [
    ("Raspberry Pi 3 Model B Rev 1.2", "a02082", "BCM2837", True),
    ("Raspberry Pi Zero W Rev 1.1", "9000c1", "BCM2835", True),
    ("Raspberry Pi Model B Plus Rev 1.2", "0010", "BCM2835", True),
    ("Raspberry Pi 2 Model B Rev 1.1", "a01041", "BCM2836", True),
    ("Raspberry Pi Zero 2 W Rev 1.0", "902120", "BCM2837", True),
    ("Raspberry Pi 4 Model B Rev 1.1", "c03111", "BCM2711", False),
    ("Raspberry Pi 5 Model B Rev 1.0", "d04170", "BCM2712", False),
    ("Raspberry Pi 3 Model B Rev 1.2", None, "BCM2837", True),      # no Revision line: from the name
    ("Raspberry Pi 400 Rev 1.0", None, "BCM2711", False),
    ("Raspberry Pi Compute Module 3 Plus Rev 1.0", None, "BCM2837", True),
    ("Raspberry Pi Model B Rev 2", None, "BCM2835", True),
])
def test_detect_pi_from_device_tree(tmp_path, model, revision, soc, supported):
    pi = detect_pi(*write(tmp_path, model, revision))
    assert pi is not None
    assert pi.model == model and pi.soc == soc and pi.supported is supported
    assert pi.ram_is_l2_coherent is (soc == "BCM2835")


def test_detect_pi_falls_back_to_cpuinfo_model(tmp_path):
    (tmp_path / "cpuinfo").write_text("Hardware\t: BCM2835\nRevision\t: a02082\nModel\t\t: Raspberry Pi 3 Model B "
                                      "Rev 1.2\n")
    pi = detect_pi(str(tmp_path / "missing"), str(tmp_path / "cpuinfo"))
    assert pi is not None and pi.soc == "BCM2837" and pi.revision == 0xA02082


def test_not_a_pi(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n")
    (tmp_path / "model").write_text("Generic x86 board")
    assert detect_pi(str(tmp_path / "model"), str(tmp_path / "cpuinfo")) is None
    assert detect_pi(str(tmp_path / "nope"), str(tmp_path / "nope2")) is None


@pytest.mark.parametrize("name, soc", [("zero", "BCM2835"), ("ZeroW", "BCM2835"), ("1", "BCM2835"),
                                       ("2", "BCM2836"), ("Pi 3", "BCM2837"), ("3b+", "BCM2837"),
                                       ("zero2w", "BCM2837"), ("4", "BCM2711"), ("5", "BCM2712")])
def test_pi_from_name(name, soc):
    assert pi_from_name(name).soc == soc


def test_pi_from_name_unknown():
    with pytest.raises(DriverConfigError, match="unknown pi_model"):
        pi_from_name("banana")


def test_pi_from_revision_names_the_board():
    assert "3B" in pi_from_revision(0xA02082).model


def test_peripheral_base_from_ranges(tmp_path):
    p = tmp_path / "ranges"
    p.write_bytes(struct.pack(">III", 0x7E000000, 0x20000000, 0x01000000))        # BCM2835
    assert peripheral_base(str(p)) == 0x20000000
    p.write_bytes(struct.pack(">III", 0x7E000000, 0x3F000000, 0x01000000))        # BCM2836/7
    assert peripheral_base(str(p)) == 0x3F000000
    p.write_bytes(struct.pack(">IIII", 0x7E000000, 0, 0xFE000000, 0x01800000))    # BCM2711, 2 address cells
    assert peripheral_base(str(p)) == 0xFE000000
    assert peripheral_base(str(tmp_path / "none"), "BCM2835") == 0x20000000
    assert peripheral_base(str(tmp_path / "none")) is None
