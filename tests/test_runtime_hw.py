"""On a real Raspberry Pi (``sudo make test-hw``): the mailbox backend end to end.

Skipped unless /dev/vcio exists and pytest runs with --run-hw (tests/conftest.py).
The reference is numpy: the self-test compares the QPUs' results with it.
"""

from __future__ import annotations

import numpy as np
import pytest

from qpu.runtime import Driver, info
from qpu.runtime.selftest import selftest

pytestmark = pytest.mark.hw


def test_info_says_the_mailbox_works():
    assert "backend: mailbox" in info()


def test_selftest_on_the_qpus():
    assert selftest(backend="mailbox", verbose=True)


def test_report_has_measured_time_clock_and_counters():
    with Driver("mailbox", data_area_size=1 << 20, code_area_size=1 << 16) as drv:
        assert drv.clock_hz > 0
        from qpu.runtime.selftest import selftest_program

        a, b = drv.copy(np.ones(16, np.float32)), drv.copy(np.ones(16, np.float32))
        out = drv.alloc((2, 16), np.uint32)
        report = drv.execute(1, drv.program(selftest_program()), uniforms=[a.address, b.address, out.address])
        assert report.measured and report.seconds > 0
        assert report.counters.get("qpu_instruction_cycles", 0) > 0
        np.testing.assert_array_equal(np.array(out[0]).view(np.float32), np.full(16, 2.0, np.float32))
