"""The documentation's code runs: the tutorial's blocks, executed in order, give x**2."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(markdown: str) -> list:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_tutorial_code_runs_and_squares(capsys) -> None:
    blocks = python_blocks((DOCS / "tutorial.md").read_text())
    assert len(blocks) >= 2
    namespace: dict = {"__name__": "tutorial"}
    for block in blocks:
        exec(compile(block, str(DOCS / "tutorial.md"), "exec"), namespace)
    x = np.linspace(-2, 2, 16, dtype=np.float32)
    np.testing.assert_allclose(np.array(namespace["y"]), x * x, rtol=1e-6)
    report = namespace["report"]
    assert report.instructions == len(namespace["program"])   # straight-line code: each runs once


def test_readme_snippet_assembles() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    namespace: dict = {}
    for block in python_blocks(readme):
        exec(compile(block, "README.md", "exec"), namespace)
    assert len(namespace["program"]) > 0
