"""The package installs under the one import namespace ``qpu`` (issue 2)."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent


def test_setup_maps_every_folder_under_qpu() -> None:
    with mock.patch("setuptools.setup") as setup:
        runpy.run_path(str(ROOT / "setup.py"), run_name="setup")
    kwargs = setup.call_args.kwargs
    packages, dirs = kwargs["packages"], kwargs["package_dir"]
    assert all(p == "qpu" or p.startswith("qpu.") for p in packages), packages
    assert dirs["qpu.runtime"] == "runtime"
    assert dirs["qpu.emulator"] == "emulator"
    assert dirs["qpu.kernels"] == "asm_kernels"
    assert "qpu.isa" in packages and "qpu.checker" in packages
    for name, folder in dirs.items():
        assert (ROOT / folder / "__init__.py").is_file(), (name, folder)


def test_no_generic_top_level_names_are_importable() -> None:
    # run outside the repository so its folders are not on sys.path
    code = ("import importlib.util as u, qpu.runtime, qpu.emulator, qpu.kernels; "
            "print([n for n in ('runtime', 'emulator', 'asm_kernels', 'tests', 'benchmarks') if u.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
