"""Shared pytest configuration."""

import os

import pytest
from hypothesis import HealthCheck, settings

# CI machines are shared and noisy: no deadlines; a fixed budget of examples.
settings.register_profile("ci", deadline=None, max_examples=300,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=20000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption("--run-hw", action="store_true", default=False,
                     help="run tests that need a real Raspberry Pi (/dev/vcio)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-hw") and os.path.exists("/dev/vcio"):
        return
    reason = "needs a Raspberry Pi with /dev/vcio (make test-hw)"
    for item in items:
        if "hw" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
