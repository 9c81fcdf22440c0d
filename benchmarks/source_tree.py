"""Reading a third-party project's files at run time, from a checkout or a bare git mirror.

The calibration benchmarks read programs this repository never holds (GPU_FFT from
raspberrypi/userland, py-videocore's SGEMM example).  Their path may be a plain checkout
or a bare git repository (no work tree, as the mirrors this project reads), whose files
are read with ``git show <rev>:<path>``.  The callers keep their own checks of what the
tree must hold and raise their own exception types.
"""

from __future__ import annotations

import os
import subprocess
from typing import Type


def is_bare_git(root: str) -> bool:
    """Whether ``root`` is a bare git repository (git answers; a plain directory is not asked)."""
    if not (os.path.isfile(os.path.join(root, "HEAD")) and os.path.isdir(os.path.join(root, "objects"))):
        return False
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "--is-bare-repository"],
                             capture_output=True, text=True, check=False)
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == "true"


def read_text(root: str, rel: str, *, bare: bool, rev: str, error: Type[Exception]) -> str:
    """Text of ``rel`` (relative to the top of the tree at ``root``), from revision ``rev`` of a
    bare repository or from the directory; ``error`` (with the reason) when it cannot be read."""
    if bare:
        out = subprocess.run(["git", "-C", root, "show", f"{rev}:{rel}"], capture_output=True, check=False)
        if out.returncode != 0:
            raise error(f"{root}: cannot read {rel} at {rev}: {out.stderr.decode(errors='replace').strip()}")
        return out.stdout.decode("utf-8", errors="replace")
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
        raise error(f"{path}: no such file")
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
