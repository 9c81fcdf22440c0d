"""Every example runs on this machine (the emulator backend, chosen by Driver() itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script: str) -> None:
    env = dict(os.environ)
    env.pop("QPU_REMOTE", None)   # Driver() must pick the emulator here by itself
    res = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                         timeout=600, env=env)
    assert res.returncode == 0, f"{script} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert "MISMATCH" not in res.stdout and "FAILURE" not in res.stdout
